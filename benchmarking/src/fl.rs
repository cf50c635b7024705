//! `blade-bench fl`: weight, proof size, fee and block capacity of the blob-carrying calls
//! at given blob sizes, next to their execution time measured natively in the real runtime.

use std::time::Instant;

use blade_fl_primitives::{
	blob::{blob_hash, encode_f32, Codec},
	pn::{round_key, seed_commitment, Chips, Seed},
};
use blade_fl_runtime::{
	configs::{RuntimeBlockLength, RuntimeBlockWeights, RuntimeParameters, MAX_BLOB_LEN},
	dynamic_params::fl,
	genesis_config_presets, AccountId, Runtime, RuntimeCall, RuntimeOrigin, UNIT,
};
use codec::Encode;
use frame_support::{
	dispatch::{DispatchClass, GetDispatchInfo},
	traits::{BuildGenesisConfig, Get, Hooks},
	weights::Weight,
};
use pallet_fl_tasks::{weights::WeightInfo, AggregationRule, Call, PhaseLengths, TaskSpec};
use sp_core::H256;
use sp_keyring::Sr25519Keyring as K;
use sp_runtime::traits::Dispatchable;

type Weights = <Runtime as pallet_fl_tasks::Config>::WeightInfo;

/// Bytes an extrinsic adds around its call arguments (signature, address, extensions).
const EXTRINSIC_OVERHEAD: u32 = 150;

fn dev_ext() -> sp_io::TestExternalities {
	let config =
		genesis_config_presets::preset_config(&"development".into()).expect("development preset");
	let mut ext = sp_io::TestExternalities::new_empty();
	ext.execute_with(|| {
		config.build();
		// Governance raises the blob limit to the hard bound so every size can be measured.
		let raise = RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
			key_value: RuntimeParameters::Fl(fl::Parameters::MaxBlobSize(
				fl::MaxBlobSize,
				Some(MAX_BLOB_LEN),
			)),
		});
		raise
			.dispatch(RuntimeOrigin::root())
			.expect("root sets parameters");
	});
	ext
}

fn seed(who: &AccountId, round: u32) -> Seed {
	blob_hash(&(b"bench", who, round).encode())
}

fn dispatch(who: &AccountId, call: Call<Runtime>) {
	RuntimeCall::FlTasks(call)
		.dispatch(RuntimeOrigin::signed(who.clone()))
		.expect("benchmark set-up call succeeds");
}

fn run_hook() {
	let end = pallet_fl_tasks::ActiveTasks::<Runtime>::get()
		.first()
		.map(|a| a.phase_end)
		.expect("a live task");
	frame_system::Pallet::<Runtime>::set_block_number(end);
	<pallet_fl_tasks::Pallet<Runtime> as Hooks<u32>>::on_initialize(end);
}

/// Native execution time of `submit_update` and of a successful `report_lazy` on a blob of
/// `bytes`, best of `repeats`, in microseconds.
fn measure(bytes: u32, repeats: u32) -> (f64, f64) {
	let params = (bytes.saturating_sub(28) / 4).max(1);
	let (mut submit, mut report) = (f64::MAX, f64::MAX);
	for _ in 0..repeats.max(1) {
		dev_ext().execute_with(|| {
			frame_system::Pallet::<Runtime>::set_block_number(1);
			let publisher = K::Alice.to_account_id();
			let (victim, copier) = (K::Bob.to_account_id(), K::Charlie.to_account_id());
			let spec = TaskSpec {
				model_id: 1,
				param_count: params,
				dataset_id: 1,
				validation_hash: H256::zero(),
				rounds: 1,
				trainers_wanted: 2,
				trainers_min: 2,
				min_samples: 1,
				max_samples: 1_000,
				codec: Codec::F32,
				rule: AggregationRule::FedAvg,
				privacy: None,
				pn_snr_centi_db: 600,
				max_norm_milli: u32::MAX,
				phases: PhaseLengths {
					bidding: 6,
					submit: 6,
					reveal: 6,
					aggregate: 6,
				},
				reward: 1_000 * UNIT,
				min_stake: 10 * UNIT,
			};
			dispatch(&publisher, Call::publish_task { spec });
			for who in [&victim, &copier] {
				let commitment = H256(seed_commitment(&who.encode(), &seed(who, 0)));
				dispatch(
					who,
					Call::bid {
						task: 0,
						samples: 10,
						price: 1,
						capability: 1,
						commitment,
					},
				);
			}
			run_hook();
			// Round 0 starts from the task's validation hash (zero here).
			let victim_key = round_key(&victim.encode(), 0, 0, &[0; 32], &seed(&victim, 0));
			let values: Vec<f32> = Chips::new(&victim_key)
				.take(params as usize)
				.map(|c| 0.1 * f32::from(c))
				.collect();
			let blob = encode_f32(0, 0, &values);
			for (who, blob) in [(&victim, blob.clone()), (&copier, blob.clone())] {
				let call = Call::submit_update {
					task: 0,
					round: 0,
					blob: blob.try_into().expect("fits"),
					next_commitment: H256(seed_commitment(&who.encode(), &seed(who, 1))),
				};
				let start = Instant::now();
				dispatch(who, call);
				submit = submit.min(start.elapsed().as_secs_f64() * 1e6);
			}
			run_hook();
			for who in [&victim, &copier] {
				dispatch(
					who,
					Call::reveal_seed {
						task: 0,
						round: 0,
						seed: seed(who, 0),
					},
				);
			}
			let call = Call::report_lazy {
				task: 0,
				round: 0,
				accused: copier.clone(),
				victim: Some(victim.clone()),
				accused_blob: blob.try_into().expect("fits"),
			};
			let start = Instant::now();
			dispatch(&K::Dave.to_account_id(), call);
			report = report.min(start.elapsed().as_secs_f64() * 1e6);
			assert!(
				frame_system::Pallet::<Runtime>::events()
					.iter()
					.any(|r| matches!(
						r.event,
						blade_fl_runtime::RuntimeEvent::FlTasks(
							pallet_fl_tasks::Event::LazyProven { .. }
						)
					)),
				"the copier is proven lazy"
			);
		});
	}
	(submit, report)
}

/// How many extrinsics of `weight` and `length` fit in one block's normal class.
fn per_block(weight: Weight, length: u32) -> (u64, &'static str) {
	let weights = RuntimeBlockWeights::get();
	let normal = weights.get(DispatchClass::Normal);
	let per = weight.saturating_add(normal.base_extrinsic);
	let max = normal.max_total.unwrap_or(weights.max_block);
	let by_time = max.ref_time() / per.ref_time().max(1);
	let by_proof = max.proof_size() / per.proof_size().max(1);
	let max_len = u64::from(*RuntimeBlockLength::get().max.get(DispatchClass::Normal));
	let by_len = max_len / u64::from(length + EXTRINSIC_OVERHEAD);
	[
		(by_time, "ref time"),
		(by_proof, "proof size"),
		(by_len, "block length"),
	]
	.into_iter()
	.min_by_key(|(n, _)| *n)
	.unwrap_or((0, "none"))
}

fn fee(call: &RuntimeCall, length: u32) -> u128 {
	let info = call.get_dispatch_info();
	dev_ext().execute_with(|| {
		pallet_transaction_payment::Pallet::<Runtime>::compute_fee(length, &info, 0)
	})
}

/// Print the table for each size in `sizes` (bytes).
pub fn report(sizes: &[u32], repeats: u32) {
	println!(
		"fl: normal-class block: {} ms ref time, {} KiB proof, {} KiB length; hard blob bound {} KiB",
		RuntimeBlockWeights::get()
			.get(DispatchClass::Normal)
			.max_total
			.map(|w| w.ref_time() / 1_000_000_000)
			.unwrap_or(0),
		RuntimeBlockWeights::get().max_block.proof_size() / 1024,
		RuntimeBlockLength::get().max.get(DispatchClass::Normal) / 1024,
		MAX_BLOB_LEN / 1024,
	);
	println!(
		"{:<14} {:>9} {:>13} {:>11} {:>12} {:>12} {:>10} {:>22}",
		"call",
		"blob",
		"weight (ms)",
		"proof (KiB)",
		"native (ms)",
		"fee (BLADE)",
		"per block",
		"limited by"
	);
	for &bytes in sizes {
		let bytes = bytes.min(MAX_BLOB_LEN);
		let (submit_us, report_us) = measure(bytes, repeats);
		let dummy: Vec<u8> = vec![0; bytes as usize];
		let max_trainers = <Runtime as pallet_fl_tasks::Config>::MaxTrainers::get();
		let rows = [
			(
				"submit_update",
				Weights::submit_update(bytes),
				submit_us,
				RuntimeCall::FlTasks(Call::submit_update {
					task: 0,
					round: 0,
					blob: dummy.clone().try_into().expect("fits"),
					next_commitment: H256::zero(),
				}),
			),
			(
				"report_lazy",
				Weights::report_lazy(bytes, 1),
				report_us,
				RuntimeCall::FlTasks(Call::report_lazy {
					task: 0,
					round: 0,
					accused: K::Bob.to_account_id(),
					victim: Some(K::Charlie.to_account_id()),
					accused_blob: dummy.clone().try_into().expect("fits"),
				}),
			),
			// Against every revealed trainer at once (victim `None`): charged for the
			// largest task, refunded down to the victims actually checked.
			(
				"report_lazy*",
				Weights::report_lazy(bytes, max_trainers),
				f64::NAN,
				RuntimeCall::FlTasks(Call::report_lazy {
					task: 0,
					round: 0,
					accused: K::Bob.to_account_id(),
					victim: None,
					accused_blob: dummy.clone().try_into().expect("fits"),
				}),
			),
			(
				"report_weak",
				Weights::report_weak_watermark(bytes),
				f64::NAN,
				RuntimeCall::FlTasks(Call::report_weak_watermark {
					task: 0,
					round: 0,
					accused: K::Bob.to_account_id(),
					accused_blob: dummy.try_into().expect("fits"),
				}),
			),
		];
		for (name, weight, native_us, call) in rows {
			let length = call.encoded_size() as u32 + EXTRINSIC_OVERHEAD;
			let (n, limit) = per_block(weight, bytes);
			println!(
				"{:<14} {:>8}B {:>13.3} {:>11.1} {:>12.3} {:>12.4} {:>10} {:>22}",
				name,
				bytes,
				weight.ref_time() as f64 / 1e9,
				weight.proof_size() as f64 / 1024.0,
				native_us / 1e3,
				fee(&call, length) as f64 / UNIT as f64,
				n,
				limit,
			);
		}
	}
}
