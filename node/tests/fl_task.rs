//! A federated-learning task on the real node: publish, bid, submit 100 kB update blobs
//! (one malformed, refused), fetch a blob back from the block body with `chain_getBlock`
//! and check it against the on-chain hash, reveal seeds, agree on the aggregate, publish
//! it, and see the task settle, all read through the `FlTasksApi` runtime API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use blade_fl_primitives::{
	blob::{blob_hash, encode_f32, Codec},
	pn::{seed_commitment, Chips, Seed},
};
use blade_fl_runtime::{AccountId, Balance, RuntimeCall, RuntimeEvent, UncheckedExtrinsic, UNIT};
use codec::{Decode, Encode};
use common::*;
use pallet_fl_tasks::{AggregationRule, Call, Event, Phase, PhaseLengths, TaskSpec, TaskView};
use sp_core::H256;
use sp_keyring::Sr25519Keyring::{self as Keyring, Alice, Bob, Charlie};
use sp_runtime::{DispatchError, ModuleError};

const TIMEOUT: Duration = Duration::from_secs(120);
const PARAMS: usize = 25_000;

type View = Option<TaskView<AccountId, Balance, u32>>;

fn fl(call: Call<blade_fl_runtime::Runtime>) -> RuntimeCall {
	RuntimeCall::FlTasks(call)
}

fn seed(k: Keyring, round: u32) -> Seed {
	blob_hash(&(b"node-test", k.to_account_id(), round).encode())
}

fn commit(k: Keyring, round: u32) -> H256 {
	H256(seed_commitment(
		&k.to_account_id().encode(),
		&seed(k, round),
	))
}

fn update(k: Keyring) -> Vec<f32> {
	Chips::new(&seed(k, 0))
		.take(PARAMS)
		.enumerate()
		.map(|(i, c)| (i % 7) as f32 * 0.01 + 0.02 * f32::from(c))
		.collect()
}

fn fl_events(events: &[RuntimeEvent]) -> Vec<Event<blade_fl_runtime::Runtime>> {
	events
		.iter()
		.filter_map(|e| match e {
			RuntimeEvent::FlTasks(e) => Some(e.clone()),
			_ => None,
		})
		.collect()
}

fn send(node: &Node, who: Keyring, call: RuntimeCall) -> (H256, Vec<RuntimeEvent>) {
	let tx = node.submit(who, call).unwrap();
	node.wait_for_inclusion(tx, TIMEOUT)
}

fn task(node: &Node) -> View {
	node.state_call("FlTasksApi_task", &0u64.encode())
}

fn wait_for_phase(node: &Node, phase: Phase) -> TaskView<AccountId, Balance, u32> {
	let deadline = Instant::now() + TIMEOUT;
	loop {
		if let Some(view) = task(node) {
			if view.phase == phase {
				return view;
			}
		}
		assert!(
			Instant::now() < deadline,
			"phase {phase:?} not reached: {:?}",
			task(node)
		);
		std::thread::sleep(Duration::from_millis(300));
	}
}

#[test]
fn task_round_trip_on_a_real_node() {
	let dir = tempfile::tempdir().unwrap();
	let node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for_block(1, TIMEOUT);

	let spec = TaskSpec {
		model_id: 1,
		param_count: PARAMS as u32,
		dataset_id: 1,
		validation_hash: H256::repeat_byte(3),
		rounds: 1,
		trainers_wanted: 2,
		trainers_min: 2,
		min_samples: 1,
		max_samples: 1_000_000,
		codec: Codec::F32,
		rule: AggregationRule::FedAvg,
		privacy: None,
		pn_snr_centi_db: 600,
		max_norm_milli: 1_000_000,
		phases: PhaseLengths {
			bidding: 8,
			submit: 30,
			reveal: 30,
			aggregate: 30,
		},
		reward: 1_000 * UNIT,
		min_stake: 10 * UNIT,
	};
	let (_, events) = send(&node, Alice, fl(Call::publish_task { spec }));
	assert!(
		matches!(
			fl_events(&events)[..],
			[Event::TaskPublished { task: 0, .. }]
		),
		"{events:?}"
	);
	let bids: Vec<_> = [Bob, Charlie]
		.into_iter()
		.map(|k| {
			let call = fl(Call::bid {
				task: 0,
				samples: 1_000,
				price: UNIT,
				capability: 1,
				commitment: commit(k, 0),
			});
			node.submit(k, call).unwrap()
		})
		.collect();
	for tx in bids {
		node.wait_for_inclusion(tx, TIMEOUT);
	}
	let view = wait_for_phase(&node, Phase::Submit);
	assert_eq!(view.trainers.len(), 2);

	// A blob with a NaN is refused with a clear module error; nothing is recorded.
	let mut bad = update(Charlie);
	bad[123] = f32::NAN;
	let bad_blob = encode_f32(0, 0, &bad).try_into().unwrap();
	let (_, events) = send(
		&node,
		Charlie,
		fl(Call::submit_update {
			task: 0,
			round: 0,
			blob: bad_blob,
			next_commitment: commit(Charlie, 1),
		}),
	);
	let refused = events.iter().find_map(|e| match e {
		RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
			dispatch_error: DispatchError::Module(ModuleError {
				index: 20, error, ..
			}),
			..
		}) => Some(*error),
		_ => None,
	});
	let expected = pallet_fl_tasks::Error::<blade_fl_runtime::Runtime>::BlobNonFinite.encode();
	assert_eq!(refused.map(|e| e[0]), Some(expected[0]), "{events:?}");

	// Two honest 100 kB updates.
	let mut recorded = Vec::new();
	for k in [Bob, Charlie] {
		let blob = encode_f32(0, 0, &update(k));
		let (block, events) = send(
			&node,
			k,
			fl(Call::submit_update {
				task: 0,
				round: 0,
				blob: blob.clone().try_into().unwrap(),
				next_commitment: commit(k, 1),
			}),
		);
		let Some(Event::UpdateSubmitted {
			hash,
			size,
			block: number,
			extrinsic_index,
			..
		}) = fl_events(&events).into_iter().next()
		else {
			panic!("no UpdateSubmitted: {events:?}");
		};
		assert_eq!((hash, size as usize), (H256(blob_hash(&blob)), blob.len()));
		assert_eq!(node.block_hash(number), Some(block));
		recorded.push((k, hash, number, extrinsic_index));
	}

	// Anyone can fetch a blob from the block body by its recorded location.
	for (k, hash, number, index) in &recorded {
		let xts = node.block_extrinsics(node.block_hash(*number).unwrap());
		let xt = UncheckedExtrinsic::decode(&mut &xts[*index as usize][..]).unwrap();
		let RuntimeCall::FlTasks(Call::submit_update { blob, .. }) = xt.function else {
			panic!("extrinsic {index} of block {number} is not {k:?}'s update");
		};
		assert_eq!(H256(blob_hash(&blob)), *hash);
	}
	let updates: Vec<(AccountId, pallet_fl_tasks::UpdateRecord<u32>)> =
		node.state_call("FlTasksApi_updates", &0u64.encode());
	assert_eq!(updates.len(), 2);

	wait_for_phase(&node, Phase::Reveal);
	for k in [Bob, Charlie] {
		let (_, events) = send(
			&node,
			k,
			fl(Call::reveal_seed {
				task: 0,
				round: 0,
				seed: seed(k, 0),
			}),
		);
		assert!(
			matches!(fl_events(&events)[..], [Event::SeedRevealed { .. }]),
			"{events:?}"
		);
	}
	let view = wait_for_phase(&node, Phase::Aggregate);

	// Both agree on the mean of the de-watermarked updates.
	let clean: Vec<Vec<f32>> = [Bob, Charlie]
		.into_iter()
		.map(|k| {
			update(k)
				.iter()
				.zip(Chips::new(&seed(k, 0)))
				.map(|(v, c)| v - 0.02 * f32::from(c))
				.collect()
		})
		.collect();
	let mean: Vec<f32> = (0..PARAMS)
		.map(|i| (clean[0][i] + clean[1][i]) / 2.0)
		.collect();
	let aggregate = encode_f32(0, 0, &mean);
	let hash = H256(blob_hash(&aggregate));
	let proposer = if view.trainers[0] == Bob.to_account_id() {
		Bob
	} else {
		Charlie
	};
	let other = if proposer == Bob { Charlie } else { Bob };
	for k in [proposer, other] {
		send(
			&node,
			k,
			fl(Call::propose_aggregate {
				task: 0,
				round: 0,
				hash,
				included: view.eligible(),
			}),
		);
	}
	wait_for_phase(&node, Phase::Publishing);
	let model: Option<pallet_fl_tasks::GlobalModel<AccountId, Balance, u32>> =
		node.state_call("FlTasksApi_global_model", &(0u64, 0u32).encode());
	assert_eq!(
		model.map(|m| (m.hash, m.aggregator)),
		Some((hash, proposer.to_account_id()))
	);

	let (_, events) = send(
		&node,
		proposer,
		fl(Call::publish_aggregate {
			task: 0,
			round: 0,
			blob: aggregate.try_into().unwrap(),
		}),
	);
	assert!(
		matches!(fl_events(&events)[..], [Event::AggregatePublished { .. }]),
		"{events:?}"
	);
	let deadline = Instant::now() + TIMEOUT;
	while task(&node).is_some() {
		assert!(Instant::now() < deadline, "task never settled");
		std::thread::sleep(Duration::from_millis(300));
	}
	let active: Vec<(u64, u32)> = node.state_call("FlTasksApi_active_tasks", &[]);
	assert!(active.is_empty());
}
