//! The whole federated-learning life cycle in the real runtime, with real 100 kB blobs from
//! `blade-fl-primitives`: 5 trainers, 3 rounds, one lazy copier proven by `report_lazy`, one
//! no-show, one dissenting aggregate vote, a false accusation, and final balances checked to
//! the unit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use blade_fl_primitives::{
	blob::{blob_hash, encode_f32, Codec},
	pn::{round_key, seed_commitment, Chips, Seed},
	verdict::contribution_weight,
};
use blade_fl_runtime::{
	configs::MAX_BLOB_LEN, AccountId, Balance, Runtime, RuntimeCall, RuntimeEvent, RuntimeOrigin,
	UNIT,
};
use codec::Encode;
use common::dev_ext;
use frame_support::{
	assert_ok,
	traits::{
		fungible::{Inspect, InspectHold},
		ConstU32, Hooks,
	},
	BoundedVec,
};
use pallet_fl_tasks::{AggregationRule, Event, Phase, PhaseLengths, TaskSpec, TrainerMask};
use sp_core::H256;
use sp_keyring::Sr25519Keyring as K;
use sp_runtime::{traits::Dispatchable, Perbill};

type Tasks = pallet_fl_tasks::Pallet<Runtime>;
type Balances = pallet_balances::Pallet<Runtime>;
type Blob = BoundedVec<u8, ConstU32<MAX_BLOB_LEN>>;

const PARAMS: usize = 25_000; // 100 kB of f32
const REWARD: Balance = 3_000 * UNIT;
const STAKE: Balance = 100 * UNIT;
const WM: f32 = 0.02;

fn acc(k: K) -> AccountId {
	k.to_account_id()
}

fn now() -> u32 {
	frame_system::Pallet::<Runtime>::block_number()
}

fn run_to(n: u32) {
	while now() < n {
		let next = now() + 1;
		frame_system::Pallet::<Runtime>::set_block_number(next);
		<Tasks as Hooks<u32>>::on_initialize(next);
	}
}

fn next_block() {
	run_to(now() + 1);
}

fn call(who: &AccountId, c: pallet_fl_tasks::Call<Runtime>) {
	let result = RuntimeCall::FlTasks(c).dispatch(RuntimeOrigin::signed(who.clone()));
	assert_ok!(result);
}

fn seed(who: &AccountId, round: u32) -> Seed {
	blade_fl_primitives::blob::blob_hash(&(b"test-seed", who, round).encode())
}

fn commit(who: &AccountId, round: u32) -> H256 {
	H256(seed_commitment(&who.encode(), &seed(who, round)))
}

/// A trainer's "trained" update for a round: deterministic noise with power ~8e-4.
fn trained(who: &AccountId, round: u32) -> Vec<f32> {
	let key = blade_fl_primitives::blob::blob_hash(&(who, round).encode());
	let mut state = u64::from_le_bytes(key[..8].try_into().unwrap()) | 1;
	(0..PARAMS)
		.map(|_| {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
		})
		.collect()
}

/// `values` plus `who`'s watermark for `round` of task 0 keyed by `seed`.
fn watermark(values: &[f32], who: &AccountId, round: u32, seed: &Seed, sign: f32) -> Vec<f32> {
	let info = pallet_fl_tasks::Tasks::<Runtime>::get(0).expect("task 0 is live");
	let previous = pallet_fl_tasks::Pallet::<Runtime>::starting_model_hash(0, &info, round);
	let key = round_key(&who.encode(), 0, round, &previous.0, seed);
	values
		.iter()
		.zip(Chips::new(&key))
		.map(|(v, c)| v + sign * WM * f32::from(c))
		.collect()
}

fn blob(task: u64, round: u32, values: &[f32]) -> Blob {
	encode_f32(task, round, values).try_into().unwrap()
}

fn task() -> pallet_fl_tasks::TaskOf<Runtime> {
	pallet_fl_tasks::Tasks::<Runtime>::get(0).expect("live")
}

fn events() -> Vec<Event<Runtime>> {
	frame_system::Pallet::<Runtime>::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::FlTasks(e) => Some(e),
			_ => None,
		})
		.collect()
}

/// FedAvg of the watermark-free updates of `included` (mean, as every trainer computes it).
fn aggregate(task: u64, round: u32, clean: &[Vec<f32>]) -> Blob {
	let n = clean.len() as f32;
	let mean: Vec<f32> = (0..PARAMS)
		.map(|i| clean.iter().map(|u| u[i]).sum::<f32>() / n)
		.collect();
	blob(task, round, &mean)
}

/// Expected shares of `pool` among `(samples, reputation)` weights, rounded down.
fn shares(pool: Balance, weights: &[(u64, Perbill)]) -> Vec<Balance> {
	let w: Vec<u128> = weights
		.iter()
		.map(|(s, r)| contribution_weight(*s, r.deconstruct()))
		.collect();
	let total: u128 = w.iter().sum();
	w.iter().map(|w| pool * w / total).collect()
}

#[test]
fn five_trainers_three_rounds_in_the_runtime() {
	dev_ext().execute_with(|| {
		run_to(1);
		let publisher = acc(K::Alice);
		let reporter = acc(K::AliceStash);
		let t: Vec<AccountId> = [K::Bob, K::Charlie, K::Dave, K::Eve, K::Ferdie]
			.map(acc)
			.to_vec();
		let (bob, charlie, dave, eve, ferdie) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
		let start: Vec<Balance> = [&publisher, &reporter, bob, charlie, dave, eve, ferdie]
			.iter()
			.map(|a| Balances::balance(a))
			.collect();
		let issuance = Balances::total_issuance();

		let spec = TaskSpec {
			model_id: 1,
			param_count: PARAMS as u32,
			dataset_id: 1,
			validation_hash: H256::repeat_byte(1),
			rounds: 3,
			trainers_wanted: 5,
			trainers_min: 3,
			min_samples: 100,
			max_samples: 10_000,
			codec: Codec::F32,
			rule: AggregationRule::FedAvg,
			privacy: None,
			pn_snr_centi_db: 600,
			max_norm_milli: 1_000_000,
			phases: PhaseLengths {
				bidding: 6,
				submit: 6,
				reveal: 6,
				aggregate: 6,
			},
			reward: REWARD,
			min_stake: STAKE,
		};
		call(&publisher, pallet_fl_tasks::Call::publish_task { spec });
		let samples = [6_000u64, 5_000, 4_000, 3_000, 2_000];
		for (who, s) in t.iter().zip(samples) {
			call(
				who,
				pallet_fl_tasks::Call::bid {
					task: 0,
					samples: s,
					price: UNIT,
					capability: 1,
					commitment: commit(who, 0),
				},
			);
		}
		run_to(7);
		assert_eq!(task().phase, Phase::Submit);
		assert_eq!(task().trainers.to_vec(), t, "ranked by samples");

		let budget = REWARD / 3;
		let fee = Perbill::from_percent(5) * budget;
		let pool = budget - fee;
		let mut earned = [0 as Balance; 5];
		let all: TrainerMask = 0b11111;

		// Each round: who submits what (None = no-show), who is lazy (copies Bob).
		for round in 0..3u32 {
			let lazy_round = round == 1;
			let mut clean: Vec<Option<Vec<f32>>> = vec![None; 5];
			let mut blobs: Vec<Option<Blob>> = vec![None; 5];
			for (i, who) in t.iter().enumerate() {
				if round >= 1 && i == 3 && !lazy_round {
					continue; // Eve was proven lazy: out of the task.
				}
				if round == 1 && i == 4 {
					continue; // Ferdie is a no-show in round 1.
				}
				// Ferdie's seed stays unrevealed after its no-show: it reuses round 1's.
				let own = if i == 4 && round == 2 { 1 } else { round };
				let values = if lazy_round && i == 3 {
					// Eve copies Bob's published blob and adds its own watermark.
					let bobs = blobs[0].clone().unwrap();
					let copied: Vec<f32> = bobs[28..]
						.chunks_exact(4)
						.map(|c| f32::from_le_bytes(c.try_into().unwrap()))
						.collect();
					watermark(&copied, who, round, &seed(who, own), 1.0)
				} else {
					let raw = trained(who, round);
					clean[i] = Some(raw.clone());
					watermark(&raw, who, round, &seed(who, own), 1.0)
				};
				let b = blob(0, round, &values);
				call(
					who,
					pallet_fl_tasks::Call::submit_update {
						task: 0,
						round,
						blob: b.clone(),
						next_commitment: commit(who, own + 1 + u32::from(i == 4 && round == 2)),
					},
				);
				blobs[i] = Some(b);
			}
			if round == 1 {
				run_to(task().phase_end); // wait out Ferdie
			} else {
				next_block();
			}
			assert_eq!(task().phase, Phase::Reveal);
			for (i, who) in t.iter().enumerate() {
				if blobs[i].is_some() {
					let own = if i == 4 && round == 2 { 1 } else { round };
					call(
						who,
						pallet_fl_tasks::Call::reveal_seed {
							task: 0,
							round,
							seed: seed(who, own),
						},
					);
				}
			}
			if lazy_round {
				// A false accusation first: Charlie's honest blob against Bob's seed.
				call(
					&reporter,
					pallet_fl_tasks::Call::report_lazy {
						task: 0,
						round,
						accused: charlie.clone(),
						victim: Some(bob.clone()),
						accused_blob: blobs[1].clone().unwrap(),
					},
				);
				assert!(matches!(
					events().last(),
					Some(Event::FalseAccusation { .. })
				));
				call(
					&reporter,
					pallet_fl_tasks::Call::report_lazy {
						task: 0,
						round,
						accused: eve.clone(),
						victim: Some(bob.clone()),
						accused_blob: blobs[3].clone().unwrap(),
					},
				);
				let Some(Event::LazyProven { z_centi, .. }) = events().last().cloned() else {
					panic!("lazy copier not proven");
				};
				assert!(z_centi >= 600, "{z_centi}");
				// Proven lazy: Eve forfeits what she earned in round 0.
				assert!(earned[3] > 0);
				earned[3] = 0;
			}
			next_block();
			assert_eq!(task().phase, Phase::Aggregate);

			// Everyone aggregates the revealed, de-watermarked, non-lazy updates.
			let included: Vec<usize> = (0..5).filter(|i| clean[*i].is_some()).collect();
			let mask: TrainerMask = included.iter().map(|i| 1u64 << i).sum();
			assert_eq!(task().eligible() & all, mask);
			let agg = aggregate(
				0,
				round,
				&included
					.iter()
					.map(|i| clean[*i].clone().unwrap())
					.collect::<Vec<_>>(),
			);
			let hash = H256(blob_hash(&agg));
			let reps: Vec<Perbill> = t
				.iter()
				.map(pallet_fl_tasks::Pallet::<Runtime>::reputation)
				.collect();
			for i in &included {
				// Dave dissents in round 2 (still included by the others).
				let h = if round == 2 && *i == 2 {
					H256::repeat_byte(0xdd)
				} else {
					hash
				};
				if task().decided.is_none() {
					call(
						&t[*i],
						pallet_fl_tasks::Call::propose_aggregate {
							task: 0,
							round,
							hash: h,
							included: mask,
						},
					);
				}
			}
			next_block();
			let weights: Vec<(u64, Perbill)> =
				included.iter().map(|i| (samples[*i], reps[*i])).collect();
			for (i, s) in included.iter().zip(shares(pool, &weights)) {
				earned[*i] += s;
			}
			call(
				bob,
				pallet_fl_tasks::Call::publish_aggregate {
					task: 0,
					round,
					blob: agg,
				},
			);
		}
		assert_eq!(task().phase, Phase::Publishing);
		next_block();
		assert!(
			pallet_fl_tasks::Tasks::<Runtime>::get(0).is_none(),
			"settled after the last publication"
		);
		let settled = events().into_iter().find_map(|e| match e {
			Event::TaskSettled {
				paid,
				refunded,
				failure,
				..
			} => Some((paid, refunded, failure)),
			_ => None,
		});
		let paid: Balance = earned.iter().sum();
		assert_eq!(settled, Some((paid, REWARD - 3 * fee - paid, None)));
		assert_eq!(
			earned[3], 0,
			"the lazy trainer's round-0 reward is forfeited"
		);

		// Stakes grow with the claim: min_stake * (1 + samples / max_samples).
		let stake = |s: u64| STAKE + STAKE * Balance::from(s) / 10_000;
		let lazy_slash = stake(samples[3]) / 2;
		let to_reporter = lazy_slash / 5;
		let miss = stake(samples[4]) / 10;
		// Bidding 6 + 3 rounds x 18 + publishing 12 = 72 blocks.
		let listing_fee = 72 * (UNIT / 100_000);
		let penalty = 5 * UNIT;
		let end: Vec<Balance> = [&publisher, &reporter, bob, charlie, dave, eve, ferdie]
			.iter()
			.map(|a| Balances::balance(a))
			.collect();
		assert_eq!(end[0], start[0] - paid - 3 * fee - listing_fee, "publisher");
		assert_eq!(end[1], start[1] - penalty + to_reporter, "reporter");
		assert_eq!(
			end[2],
			start[2] + earned[0] + 3 * fee,
			"bob: rewards and three fees"
		);
		assert_eq!(
			end[3],
			start[3] + earned[1] + penalty,
			"charlie: compensated"
		);
		assert_eq!(end[4], start[4] + earned[2], "dave");
		assert_eq!(end[5], start[5] - lazy_slash, "eve: slashed");
		assert_eq!(end[6], start[6] + earned[4] - miss, "ferdie: one miss");
		assert!(earned[0] > earned[1] && earned[1] > earned[2] && earned[4] > 0);
		// Only the burnt slashes left the issuance.
		assert_eq!(
			Balances::total_issuance(),
			issuance - (lazy_slash - to_reporter) - miss - listing_fee
		);
		for who in [&publisher, &reporter, bob, charlie, dave, eve, ferdie] {
			assert_eq!(Balances::total_balance_on_hold(who), 0);
		}
		Tasks::do_try_state().unwrap();
	});
}
