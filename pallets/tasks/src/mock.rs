//! Test runtime for `pallet_fl_tasks`: balances, the real reputation pallet, and helpers
//! that build tasks, PN-watermarked blobs and drive blocks.

use crate::{self as pallet_fl_tasks, *};
use blade_fl_primitives::{
	blob::{encode_f32, Codec},
	pn::{round_key, seed_commitment, Chips, Seed},
};
use codec::Encode;
use frame_support::{
	derive_impl, parameter_types,
	traits::{fungible::Inspect, ConstU32, Hooks},
	BoundedVec,
};
use sp_core::H256;
use sp_runtime::{BuildStorage, Perbill, Percent};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = u64;
pub type Balance = u64;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type Reputation = pallet_fl_reputation;
	#[runtime::pallet_index(3)]
	pub type FlTasks = pallet_fl_tasks;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountData = pallet_balances::AccountData<Balance>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = Balance;
	type AccountStore = System;
	type RuntimeHoldReason = RuntimeHoldReason;
}

parameter_types! {
	pub static Decay: Perbill = Perbill::from_percent(95);
	pub static GoodWeight: u32 = 1_000;
	pub static DissentWeight: u32 = 1_000;
	pub static OutlierWeight: u32 = 1_000;
	pub static MissedWeight: u32 = 2_000;
	pub static LazyWeight: u32 = 5_000;
}

impl pallet_fl_reputation::Config for Test {
	type Decay = Decay;
	type GoodWeight = GoodWeight;
	type DissentWeight = DissentWeight;
	type OutlierWeight = OutlierWeight;
	type MissedWeight = MissedWeight;
	type LazyWeight = LazyWeight;
}

parameter_types! {
	pub static MinStake: Balance = 100;
	pub static LazySlash: Perbill = Perbill::from_percent(50);
	pub static MissSlash: Perbill = Perbill::from_percent(10);
	pub static ReporterShare: Perbill = Perbill::from_percent(20);
	pub static FalseReportPenalty: Balance = 50;
	pub static AggregationFee: Perbill = Perbill::from_percent(10);
	pub static Quorum: Perbill = Perbill::from_percent(50);
	pub static LazyZScore: u32 = 600;
	pub static MaxBlobSize: u32 = 64 * 1024;
	pub static MinPhaseLength: u64 = 2;
	pub static MaxPhaseLength: u64 = 1_000;
	pub static ScoreReputation: Perbill = Perbill::from_percent(40);
	pub static ScoreSamples: Perbill = Perbill::from_percent(30);
	pub static ScoreCapability: Perbill = Perbill::from_percent(10);
	pub static ScorePrice: Perbill = Perbill::from_percent(20);
	pub static MinRewardPerTrainerRound: Balance = 1;
	pub static ListingFeePerBlock: Balance = 0;
	pub static WatermarkTolerance: u32 = 300;
}

impl pallet_fl_tasks::Config for Test {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Reputation = Reputation;
	type MinStake = MinStake;
	type LazySlash = LazySlash;
	type MissSlash = MissSlash;
	type ReporterShare = ReporterShare;
	type FalseReportPenalty = FalseReportPenalty;
	type AggregationFee = AggregationFee;
	type Quorum = Quorum;
	type LazyZScore = LazyZScore;
	type MaxBlobSize = MaxBlobSize;
	type MinPhaseLength = MinPhaseLength;
	type MaxPhaseLength = MaxPhaseLength;
	type ScoreReputation = ScoreReputation;
	type ScoreSamples = ScoreSamples;
	type ScoreCapability = ScoreCapability;
	type ScorePrice = ScorePrice;
	type MinRewardPerTrainerRound = MinRewardPerTrainerRound;
	type ListingFeePerBlock = ListingFeePerBlock;
	type WatermarkTolerance = WatermarkTolerance;
	type MaxBlobLen = ConstU32<{ 128 * 1024 }>;
	type MaxBids = ConstU32<16>;
	type MaxTrainers = ConstU32<8>;
	type MaxRounds = ConstU32<8>;
	type MaxActiveTasks = ConstU32<4>;
	type MaxTasksPerPublisher = ConstU32<3>;
	type MaxTransitionsPerBlock = ConstU32<2>;
	type WeightInfo = ();
}

/// The publisher of the tests' tasks.
pub const PUBLISHER: AccountId = 1;
/// Endowment of every account 1..=20.
pub const ENDOWMENT: Balance = 1_000_000;
/// Parameters in the tests' updates.
pub const PARAMS: u32 = 4_000;

pub fn new_test_ext() -> sp_io::TestExternalities {
	let mut storage = frame_system::GenesisConfig::<Test>::default()
		.build_storage()
		.expect("genesis builds");
	pallet_balances::GenesisConfig::<Test> {
		balances: (1..=20).map(|who| (who, ENDOWMENT)).collect(),
		..Default::default()
	}
	.assimilate_storage(&mut storage)
	.expect("balances genesis");
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// Run `test` and then check both pallets' invariants.
pub fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		FlTasks::do_try_state().expect("task invariants hold");
		Reputation::do_try_state().expect("reputation invariants hold");
	});
}

/// Advance to block `n`, running the task hook at each block start.
pub fn run_to(n: u64) {
	while System::block_number() < n {
		let next = System::block_number() + 1;
		System::set_block_number(next);
		FlTasks::on_initialize(next);
	}
}

/// A valid spec: `trainers` wanted (min 2), `rounds`, reward 10_000, stake 100; samples
/// from 10 to a cap so high that the stake stays 100 for the tests' claims; norm bound 100.
pub fn spec(trainers: u32, rounds: u32) -> SpecOf<Test> {
	TaskSpec {
		model_id: 1,
		param_count: PARAMS,
		dataset_id: 7,
		validation_hash: H256::repeat_byte(9),
		rounds,
		trainers_wanted: trainers,
		trainers_min: 2.min(trainers),
		min_samples: 10,
		max_samples: 1_000_000_000,
		codec: Codec::F32,
		rule: AggregationRule::TrimmedMean {
			trim: Percent::from_percent(10),
		},
		privacy: Some(PrivacyFloor {
			max_epsilon_milli: 8_000,
			delta: Perbill::from_parts(10_000),
		}),
		pn_snr_centi_db: 600,
		max_norm_milli: 100_000,
		phases: PhaseLengths {
			bidding: 5,
			submit: 5,
			reveal: 5,
			aggregate: 5,
		},
		reward: 10_000,
		min_stake: 100,
	}
}

/// Deterministic PN seed of `who` for `round` (and retry `attempt`).
pub fn seed(who: AccountId, round: u32, attempt: u8) -> Seed {
	let mut s = [0u8; 32];
	s[..8].copy_from_slice(&who.to_le_bytes());
	s[8..12].copy_from_slice(&round.to_le_bytes());
	s[12] = attempt;
	s[31] = 0xa5;
	s
}

/// Commitment of `who` to `seed`.
pub fn commit(who: AccountId, seed: &Seed) -> H256 {
	H256(seed_commitment(&who.encode(), seed))
}

/// The chip key `who` watermarks with in `round` of `task` when its seed is `seed` (the
/// task must exist, and the previous round's aggregate be agreed).
pub fn key(task: TaskId, who: AccountId, round: u32, seed: &Seed) -> Seed {
	let previous = crate::Tasks::<Test>::get(task)
		.map(|info| FlTasks::starting_model_hash(task, &info, round))
		.unwrap_or_default();
	round_key(&who.encode(), task, round, &previous.0, seed)
}

/// A pseudo-random "trained" update of `who` (deterministic), plus its own watermark for
/// `task` at amplitude `wm` (0 for none).
pub fn honest_values(
	task: TaskId,
	who: AccountId,
	round: u32,
	own_seed: &Seed,
	wm: f32,
) -> Vec<f32> {
	let mut state = who.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(round);
	Chips::new(&key(task, who, round, own_seed))
		.take(PARAMS as usize)
		.map(|chip| {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			let noise = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
			noise * 0.1 + wm * f32::from(chip)
		})
		.collect()
}

/// Blob of values.
pub fn blob(task: TaskId, round: u32, values: &[f32]) -> BoundedVec<u8, ConstU32<{ 128 * 1024 }>> {
	BoundedVec::try_from(encode_f32(task, round, values)).expect("fits")
}

/// Publish the standard task as [`PUBLISHER`]; returns its id.
pub fn publish(spec: SpecOf<Test>) -> TaskId {
	let id = crate::NextTaskId::<Test>::get();
	frame_support::assert_ok!(FlTasks::publish_task(
		RuntimeOrigin::signed(PUBLISHER),
		spec
	));
	id
}

/// Bid as `who` with `samples`, committing to its round-0 seed.
pub fn bid(task: TaskId, who: AccountId, samples: u64) {
	frame_support::assert_ok!(FlTasks::bid(
		RuntimeOrigin::signed(who),
		task,
		samples,
		10,
		1,
		commit(who, &seed(who, 0, 0)),
	));
}

/// Free balance of `who`.
pub fn free(who: AccountId) -> Balance {
	Balances::balance(&who)
}

/// Events of this pallet so far.
pub fn task_events() -> Vec<crate::Event<Test>> {
	System::events()
		.into_iter()
		.filter_map(|r| match r.event {
			RuntimeEvent::FlTasks(e) => Some(e),
			_ => None,
		})
		.collect()
}
