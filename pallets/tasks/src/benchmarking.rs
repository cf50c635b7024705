//! Benchmarks for `pallet_fl_tasks` (frame-benchmarking v2), each in its worst case:
//! full blobs in the int8 codec (one value per byte: the most values, hence the most
//! verification work, per byte), full trainer sets, full bid lists, proofs that slash.

use super::*;
use crate::pallet::{BalanceOf, TaskOf};
use alloc::vec::Vec;
use blade_fl_primitives::{
	blob::{BlobHeader, Codec, HEADER_LEN},
	pn::{round_key, seed_commitment, Chips, Seed},
};
use codec::Encode;
use frame_benchmarking::v2::*;
use frame_support::{
	traits::{fungible::Mutate, Get},
	BoundedVec,
};
use frame_system::RawOrigin;
use sp_core::H256;
use sp_runtime::{
	traits::{Bounded, Saturating},
	Perbill,
};

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId {
	let who: T::AccountId = account(name, index, 0);
	let _ = T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 1_000_000u32.into());
	who
}

fn seed_of<W: Encode>(who: &W, round: u32) -> Seed {
	blade_fl_primitives::blob::blob_hash(&(b"bench-seed", who, round).encode())
}

fn commit<T: Config>(who: &T::AccountId, seed: &Seed) -> H256 {
	H256(seed_commitment(&who.encode(), seed))
}

/// Parameters that fit in `bytes` of int8 blob (at least 1, within the governance maximum).
fn params_for<T: Config>(bytes: u32) -> u32 {
	let max = Pallet::<T>::max_blob_len() as u32;
	bytes.min(max).saturating_sub(HEADER_LEN as u32).max(1)
}

/// The chip key `who` watermarks round `round` of `task` with.
fn key_of<T: Config>(task: TaskId, who: &T::AccountId, round: u32) -> Seed {
	let previous = Tasks::<T>::get(task)
		.map(|info| Pallet::<T>::starting_model_hash(task, &info, round))
		.unwrap_or_default();
	round_key(
		&who.encode(),
		task,
		round,
		&previous.0,
		&seed_of(who, round),
	)
}

fn spec<T: Config>(trainers: u32, params: u32) -> SpecOf<T> {
	let phase = T::MinPhaseLength::get().max(1u32.into());
	TaskSpec {
		model_id: 1,
		param_count: params,
		dataset_id: 1,
		validation_hash: H256::repeat_byte(1),
		rounds: 2u32.min(T::MaxRounds::get()),
		trainers_wanted: trainers,
		trainers_min: 1,
		min_samples: 1,
		max_samples: 1_000_000,
		codec: Codec::Int8,
		rule: AggregationRule::FedAvg,
		privacy: Some(PrivacyFloor {
			max_epsilon_milli: 1_000,
			delta: Perbill::from_parts(10_000),
		}),
		pn_snr_centi_db: 600,
		max_norm_milli: u32::MAX,
		phases: PhaseLengths {
			bidding: phase,
			submit: phase,
			reveal: phase,
			aggregate: phase,
		},
		reward: T::MinStake::get()
			.saturating_mul(1_000u32.into())
			.max(1_000_000u32.into()),
		min_stake: T::MinStake::get(),
	}
}

fn publish<T: Config>(trainers: u32, params: u32) -> (T::AccountId, TaskId) {
	let id = NextTaskId::<T>::get();
	// A publisher per task: each stays under `MaxTasksPerPublisher`.
	let publisher = funded::<T>("publisher", id as u32);
	Pallet::<T>::publish_task(
		RawOrigin::Signed(publisher.clone()).into(),
		spec::<T>(trainers, params),
	)
	.expect("valid task");
	(publisher, id)
}

fn bid_as<T: Config>(task: TaskId, index: u32) -> T::AccountId {
	let who = funded::<T>("trainer", index);
	Pallet::<T>::bid(
		RawOrigin::Signed(who.clone()).into(),
		task,
		1_000 + u64::from(index),
		1_000u32.into(),
		1,
		commit::<T>(&who, &seed_of(&who, 0)),
	)
	.expect("bid");
	who
}

fn run_hook<T: Config>(task: TaskId) {
	let end = Tasks::<T>::get(task).expect("live").phase_end;
	frame_system::Pallet::<T>::set_block_number(end);
	Pallet::<T>::advance(task, end);
}

/// A task with `t` selected trainers in its submission phase.
fn selected<T: Config>(t: u32, params: u32) -> (T::AccountId, TaskId, Vec<T::AccountId>) {
	let (publisher, id) = publish::<T>(t, params);
	for i in 0..t {
		bid_as::<T>(id, i);
	}
	run_hook::<T>(id);
	// Selection reorders the bidders by score.
	let selected = Tasks::<T>::get(id).expect("live").trainers.into_inner();
	(publisher, id, selected)
}

/// `amplitude` times the chips of `key`, as int8 steps.
fn values(params: u32, key: &Seed, amplitude: i8) -> Vec<i8> {
	Chips::new(key)
		.take(params as usize)
		.map(|c| amplitude.saturating_mul(c))
		.collect()
}

/// An int8 blob of `vals` at scale 1/64.
fn blob_of<T: Config>(task: TaskId, round: u32, vals: &[i8]) -> BoundedVec<u8, T::MaxBlobLen> {
	let header = BlobHeader {
		task,
		round,
		param_count: vals.len() as u32,
		codec: Codec::Int8,
		scale_bits: (1.0f32 / 64.0).to_bits(),
	};
	let mut bytes = header.encode().to_vec();
	bytes.extend(vals.iter().map(|v| *v as u8));
	BoundedVec::try_from(bytes).expect("within MaxBlobLen")
}

fn index_of<T: Config>(task: TaskId, who: &T::AccountId) -> u32 {
	Participants::<T>::get(task, who)
		.expect("participant")
		.index
}

/// Everyone submits a blob of `params` (its own watermark chips; the last trainer copies
/// trainer 0's blob when `copier`), then the reveal phase starts; returns the blobs.
fn submitted<T: Config>(
	id: TaskId,
	trainers: &[T::AccountId],
	params: u32,
	copier: bool,
) -> Vec<BoundedVec<u8, T::MaxBlobLen>> {
	let mut blobs = Vec::new();
	for (k, who) in trainers.iter().enumerate() {
		let source = if copier && k + 1 == trainers.len() {
			&trainers[0]
		} else {
			who
		};
		let mut vals = values(params, &key_of::<T>(id, source, 0), 32);
		let copying = copier && k + 1 == trainers.len();
		if let Some(v) = vals.get_mut(k % (params as usize)).filter(|_| !copying) {
			*v = v.saturating_add(k as i8); // distinct blobs
		}
		let b = blob_of::<T>(id, 0, &vals);
		Pallet::<T>::submit_update(
			RawOrigin::Signed(who.clone()).into(),
			id,
			0,
			b.clone(),
			commit::<T>(who, &seed_of(who, 1)),
		)
		.expect("submit");
		blobs.push(b);
	}
	run_hook::<T>(id);
	blobs
}

fn revealed<T: Config>(id: TaskId, trainers: &[T::AccountId]) {
	for who in trainers {
		Pallet::<T>::reveal_seed(
			RawOrigin::Signed(who.clone()).into(),
			id,
			0,
			seed_of(who, 0),
		)
		.expect("reveal");
	}
	run_hook::<T>(id);
}

#[benchmarks]
mod benches {
	use super::*;

	#[benchmark]
	fn publish_task() {
		// Worst case: all but one active-task slot taken.
		for _ in 1..T::MaxActiveTasks::get() {
			publish::<T>(1, 1);
		}
		let publisher = funded::<T>("publisher", 1);
		let s = spec::<T>(T::MaxTrainers::get(), 1);

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), s);

		assert_eq!(
			ActiveTasks::<T>::get().len() as u32,
			T::MaxActiveTasks::get()
		);
	}

	#[benchmark]
	fn cancel_task() {
		let (publisher, id) = publish::<T>(1, 1);

		#[extrinsic_call]
		_(RawOrigin::Signed(publisher), id);

		assert!(matches!(
			Tasks::<T>::get(id).map(|t| t.phase),
			Some(Phase::Failing(_))
		));
	}

	#[benchmark]
	fn bid() {
		let (_, id) = publish::<T>(1, 1);
		for i in 1..T::MaxBids::get() {
			bid_as::<T>(id, i);
		}
		let who = funded::<T>("trainer", 0);
		let c = commit::<T>(&who, &seed_of(&who, 0));

		#[extrinsic_call]
		_(
			RawOrigin::Signed(who.clone()),
			id,
			1_000,
			1_000u32.into(),
			1,
			c,
		);

		assert!(Bids::<T>::contains_key(id, &who));
	}

	#[benchmark]
	fn withdraw_bid() {
		let (_, id) = publish::<T>(1, 1);
		let who = bid_as::<T>(id, 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), id);

		assert!(!Bids::<T>::contains_key(id, &who));
	}

	#[benchmark]
	fn submit_update(b: Linear<32, { T::MaxBlobSize::get().min(T::MaxBlobLen::get()) }>) {
		let params = params_for::<T>(b);
		let (_, id, trainers) = selected::<T>(T::MaxTrainers::get(), params);
		let who = trainers[0].clone();
		let blob = blob_of::<T>(id, 0, &values(params, &key_of::<T>(id, &who, 0), 32));
		let next = commit::<T>(&who, &seed_of(&who, 1));

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), id, 0, blob, next);

		assert!(Updates::<T>::contains_key(id, &who));
	}

	#[benchmark]
	fn reveal_seed() {
		let (_, id, trainers) = selected::<T>(T::MaxTrainers::get(), 1);
		submitted::<T>(id, &trainers, 1, false);
		let who = trainers[0].clone();
		let seed = seed_of(&who, 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(who.clone()), id, 0, seed);

		assert!(Updates::<T>::get(id, &who).and_then(|u| u.seed).is_some());
	}

	/// Worst case: the proof succeeds (slash, reporter transfer, burn, release, vote removal)
	/// against all `k` other trainers' watermarks at once (`victim = None`, one chip stream
	/// each). From 1 024 parameters: a perfect copy tested against every other trainer
	/// proves itself only once `sqrt(n / k) >= LazyZScore`.
	#[benchmark]
	fn report_lazy(
		b: Linear<1_052, { T::MaxBlobSize::get().min(T::MaxBlobLen::get()) }>,
		k: Linear<1, { T::MaxTrainers::get().saturating_sub(1).max(1) }>,
	) {
		let params = params_for::<T>(b);
		let (_, id, trainers) = selected::<T>(k + 1, params);
		let blobs = submitted::<T>(id, &trainers, params, true);
		revealed::<T>(id, &trainers);
		let accused = trainers.last().cloned().expect("trainers");
		let accused_blob = blobs.last().cloned().expect("blobs");
		let reporter = funded::<T>("reporter", 0);
		// The accused already voted (its vote gets removed).
		let eligible = Tasks::<T>::get(id).expect("live").eligible();
		Pallet::<T>::propose_aggregate(
			RawOrigin::Signed(accused.clone()).into(),
			id,
			0,
			H256::repeat_byte(9),
			eligible,
		)
		.expect("vote");

		#[extrinsic_call]
		_(
			RawOrigin::Signed(reporter),
			id,
			0,
			accused.clone(),
			None,
			accused_blob,
		);

		let bit = 1u64 << index_of::<T>(id, &accused);
		assert!(Tasks::<T>::get(id).expect("live").lazy & bit != 0);
	}

	/// Worst case: the proof succeeds (an update with no watermark of its own) and slashes.
	#[benchmark]
	fn report_weak_watermark(
		b: Linear<1_052, { T::MaxBlobSize::get().min(T::MaxBlobLen::get()) }>,
	) {
		let params = params_for::<T>(b);
		let (_, id, trainers) = selected::<T>(2, params);
		let accused = trainers[1].clone();
		// Trainer 0 is honest; the accused's update carries chips of a key it never reveals.
		let unrelated = seed_of(&99u32, 0);
		let mut accused_blob = None;
		for who in &trainers {
			let key = if *who == accused {
				unrelated
			} else {
				key_of::<T>(id, who, 0)
			};
			let blob = blob_of::<T>(id, 0, &values(params, &key, 32));
			Pallet::<T>::submit_update(
				RawOrigin::Signed(who.clone()).into(),
				id,
				0,
				blob.clone(),
				commit::<T>(who, &seed_of(who, 1)),
			)
			.expect("submit");
			if *who == accused {
				accused_blob = Some(blob);
			}
		}
		run_hook::<T>(id);
		revealed::<T>(id, &trainers);
		let reporter = funded::<T>("reporter", 0);
		let accused_blob = accused_blob.expect("submitted");

		#[extrinsic_call]
		_(
			RawOrigin::Signed(reporter),
			id,
			0,
			accused.clone(),
			accused_blob,
		);

		let bit = 1u64 << index_of::<T>(id, &accused);
		assert!(Tasks::<T>::get(id).expect("live").lazy & bit != 0);
	}

	/// Worst case: the longest tally list to scan.
	#[benchmark]
	fn propose_aggregate() {
		let t = T::MaxTrainers::get();
		let (_, id, trainers) = selected::<T>(t, 1);
		submitted::<T>(id, &trainers, 1, false);
		revealed::<T>(id, &trainers);
		let eligible = Tasks::<T>::get(id).expect("live").eligible();
		for (k, who) in trainers.iter().enumerate().skip(1) {
			Pallet::<T>::propose_aggregate(
				RawOrigin::Signed(who.clone()).into(),
				id,
				0,
				H256::repeat_byte(k as u8),
				eligible,
			)
			.expect("vote");
		}
		let who = trainers[0].clone();

		#[extrinsic_call]
		_(
			RawOrigin::Signed(who.clone()),
			id,
			0,
			H256::repeat_byte(1),
			eligible,
		);

		assert!(Votes::<T>::contains_key(id, &who));
	}

	/// Worst case: the aggregator withheld the blob; someone else publishes it after the
	/// exclusive window (the fee moves to them, the aggregator is penalised).
	#[benchmark]
	fn publish_aggregate(b: Linear<32, { T::MaxBlobSize::get().min(T::MaxBlobLen::get()) }>) {
		let params = params_for::<T>(b);
		let (_, id, trainers) = selected::<T>(1, params);
		submitted::<T>(id, &trainers, params, false);
		revealed::<T>(id, &trainers);
		let aggregate = blob_of::<T>(id, 0, &values(params, &seed_of(&99u32, 0), 16));
		let hash = H256(blade_fl_primitives::blob::blob_hash(&aggregate));
		let aggregator = trainers[0].clone();
		Pallet::<T>::propose_aggregate(RawOrigin::Signed(aggregator).into(), id, 0, hash, 1)
			.expect("vote");
		run_hook::<T>(id);
		let window = GlobalModels::<T>::get(id, 0)
			.expect("agreed")
			.exclusive_until;
		frame_system::Pallet::<T>::set_block_number(window);
		let backup = funded::<T>("backup", 0);

		#[extrinsic_call]
		_(RawOrigin::Signed(backup), id, 0, aggregate);

		assert!(GlobalModels::<T>::get(id, 0)
			.and_then(|m| m.published)
			.is_some());
	}

	/// Selection among `n` bids.
	#[benchmark]
	fn close_bidding(n: Linear<1, { T::MaxBids::get() }>) {
		let (_, id) = publish::<T>(T::MaxTrainers::get().min(n), 1);
		for i in 0..n {
			bid_as::<T>(id, i);
		}
		let end = Tasks::<T>::get(id).expect("live").phase_end;
		frame_system::Pallet::<T>::set_block_number(end);

		#[block]
		{
			Pallet::<T>::advance(id, end);
		}

		assert_eq!(Tasks::<T>::get(id).map(|t| t.phase), Some(Phase::Submit));
	}

	/// Round finalisation with `t` trainers: reputation, shares, next round (the costliest
	/// of the round transitions).
	#[benchmark]
	fn close_round(t: Linear<1, { T::MaxTrainers::get() }>) {
		let (_, id, trainers) = selected::<T>(t, 1);
		submitted::<T>(id, &trainers, 1, false);
		revealed::<T>(id, &trainers);
		let eligible = Tasks::<T>::get(id).expect("live").eligible();
		for who in &trainers {
			if Tasks::<T>::get(id).expect("live").decided.is_none() {
				Pallet::<T>::propose_aggregate(
					RawOrigin::Signed(who.clone()).into(),
					id,
					0,
					H256::repeat_byte(1),
					eligible,
				)
				.expect("vote");
			}
		}
		let end = Tasks::<T>::get(id).expect("live").phase_end;
		frame_system::Pallet::<T>::set_block_number(end);

		#[block]
		{
			Pallet::<T>::advance(id, end);
		}

		assert_eq!(
			Tasks::<T>::get(id).map(|t| (t.phase, t.round)),
			Some((Phase::Submit, 1))
		);
	}

	/// Settlement with `t` trainers to pay and `r` rounds' global models to clear, none of
	/// them published (each records a missed publication).
	#[benchmark]
	fn settle(t: Linear<1, { T::MaxTrainers::get() }>, r: Linear<0, { T::MaxRounds::get() }>) {
		let (_, id, trainers) = selected::<T>(t, 1);
		for who in &trainers {
			Participants::<T>::mutate(id, who, |p| {
				if let Some(p) = p {
					p.earned = 1_000u32.into();
				}
			});
		}
		for round in 0..r {
			GlobalModels::<T>::insert(
				id,
				round,
				GlobalModel {
					hash: H256::repeat_byte(1),
					included: 1,
					aggregator: trainers[0].clone(),
					fee: 1u32.into(),
					exclusive_until: 0u32.into(),
					published: None,
				},
			);
		}
		let task: TaskOf<T> = Tasks::<T>::get(id).expect("live");

		#[block]
		{
			Pallet::<T>::settle(id, task, None);
		}

		assert!(Tasks::<T>::get(id).is_none());
		assert_eq!(GlobalModels::<T>::iter_prefix(id).count(), 0);
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
