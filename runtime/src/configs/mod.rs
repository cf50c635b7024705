//! Configuration of every pallet in the runtime.

use frame_support::{
	derive_impl,
	dynamic_params::{dynamic_pallet_params, dynamic_params},
	parameter_types,
	traits::{
		fungible::{Balanced, Credit},
		AsEnsureOriginWithArg, ConstU128, ConstU32, ConstU64, ConstU8, EitherOfDiverse,
		OnUnbalanced, VariantCountOf,
	},
	weights::{
		constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
		ConstantMultiplier, IdentityFee, Weight,
	},
};
use frame_system::{
	limits::{BlockLength, BlockWeights},
	EnsureRoot,
};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use sp_runtime::{traits::One, Perbill};
use sp_version::RuntimeVersion;

use super::{
	AccountId, Authorship, Balance, Balances, Block, BlockNumber, Difficulty, Hash, Nonce,
	PalletInfo, Runtime, RuntimeCall, RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason,
	RuntimeOrigin, RuntimeTask, System, EXISTENTIAL_DEPOSIT, MINUTES, SS58_PREFIX, UNIT, VERSION,
};

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
	pub const BlockHashCount: BlockNumber = 2400;
	pub const Version: RuntimeVersion = VERSION;
	/// One second of compute per block: half the 2 s target, so a block mined on slow
	/// hardware still leaves time to propagate.
	pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
		Weight::from_parts(WEIGHT_REF_TIME_PER_SECOND, 16 * 1024 * 1024),
		NORMAL_DISPATCH_RATIO,
	);
	/// 5 MiB blocks: model-update blobs travel in block bodies.
	pub RuntimeBlockLength: BlockLength =
		BlockLength::builder()
			.max_length(5 * 1024 * 1024)
			.modify_max_length_for_class(frame_support::dispatch::DispatchClass::Normal, |max| {
				*max = NORMAL_DISPATCH_RATIO * *max
			})
			.build();
	pub const SS58Prefix: u16 = SS58_PREFIX;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
	type Block = Block;
	type BlockWeights = RuntimeBlockWeights;
	type BlockLength = RuntimeBlockLength;
	type AccountId = AccountId;
	type Nonce = Nonce;
	type Hash = Hash;
	type BlockHashCount = BlockHashCount;
	type DbWeight = ParityDbWeight;
	type Version = Version;
	type AccountData = pallet_balances::AccountData<Balance>;
	type SS58Prefix = SS58Prefix;
	type MaxConsumers = ConstU32<16>;
}

impl pallet_timestamp::Config for Runtime {
	/// Milliseconds since the Unix epoch.
	type Moment = u64;
	/// Every timestamp feeds the difficulty retarget.
	type OnTimestampSet = Difficulty;
	/// PoW blocks may follow each other closely; the timestamp only has to move forward.
	type MinimumPeriod = ConstU64<1>;
	type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
	type MaxLocks = ConstU32<50>;
	type MaxReserves = ();
	type ReserveIdentifier = [u8; 8];
	type Balance = Balance;
	type RuntimeEvent = RuntimeEvent;
	type DustRemoval = ();
	type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
	type AccountStore = System;
	type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
	type FreezeIdentifier = RuntimeFreezeReason;
	type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
	type RuntimeHoldReason = RuntimeHoldReason;
	type RuntimeFreezeReason = RuntimeFreezeReason;
	type DoneSlashHandler = ();
}

/// Transaction fees (and tips) go to the block's miner; without an author they are burnt.
pub struct FeesToAuthor;
impl OnUnbalanced<Credit<AccountId, Balances>> for FeesToAuthor {
	fn on_nonzero_unbalanced(amount: Credit<AccountId, Balances>) {
		if let Some(author) = Authorship::author() {
			// On failure the credit is dropped, which burns it: nothing is lost silently
			// from the accounting, issuance just shrinks.
			let _ = <Balances as Balanced<AccountId>>::resolve(&author, amount);
		}
	}
}

parameter_types! {
	pub FeeMultiplier: Multiplier = Multiplier::one();
}

impl pallet_transaction_payment::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type OnChargeTransaction = FungibleAdapter<Balances, FeesToAuthor>;
	type OperationalFeeMultiplier = ConstU8<5>;
	type WeightToFee = IdentityFee<Balance>;
	/// 10^-6 BLADE per byte: a 100 kB model update costs 0.1 BLADE in length fees.
	type LengthToFee = ConstantMultiplier<Balance, ConstU128<1_000_000>>;
	type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
	type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeCall = RuntimeCall;
	type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

impl pallet_authorship::Config for Runtime {
	/// The miner's account from the `PreRuntime(*b"pow_", account)` digest.
	type FindAuthor = pallet_block_reward::PowAuthor<AccountId>;
	type EventHandler = crate::BlockReward;
}

/// The council: Root or more than half of the council may tune the chain.
pub type CouncilCollective = pallet_collective::Instance1;
/// Root, or a strict majority of the council.
pub type RootOrCouncilMajority = EitherOfDiverse<
	EnsureRoot<AccountId>,
	pallet_collective::EnsureProportionMoreThan<AccountId, CouncilCollective, 1, 2>,
>;

parameter_types! {
	pub MaxCollectivesProposalWeight: Weight =
		Perbill::from_percent(50) * RuntimeBlockWeights::get().max_block;
}

impl pallet_collective::Config<CouncilCollective> for Runtime {
	type RuntimeOrigin = RuntimeOrigin;
	type Proposal = RuntimeCall;
	type RuntimeEvent = RuntimeEvent;
	type MotionDuration = ConstU32<{ 5 * MINUTES }>;
	type MaxProposals = ConstU32<100>;
	type MaxMembers = ConstU32<100>;
	type DefaultVote = pallet_collective::PrimeDefaultVote;
	type WeightInfo = pallet_collective::weights::SubstrateWeight<Runtime>;
	type SetMembersOrigin = EnsureRoot<AccountId>;
	type MaxProposalWeight = MaxCollectivesProposalWeight;
	type DisapproveOrigin = EnsureRoot<AccountId>;
	type KillOrigin = EnsureRoot<AccountId>;
	type Consideration = ();
}

/// Parameters governance can change at run time with `parameters.setParameter`.
#[dynamic_params(RuntimeParameters, pallet_parameters::Parameters::<Runtime>)]
pub mod dynamic_params {
	use super::*;

	/// Proof-of-work difficulty retargeting.
	#[dynamic_pallet_params]
	#[codec(index = 0)]
	pub mod pow {
		/// Target mean block time in milliseconds.
		#[codec(index = 0)]
		pub static TargetBlockTime: u64 = 2_000;
		/// Lowest difficulty the retarget may reach.
		#[codec(index = 1)]
		pub static MinDifficulty: u128 = 1_000;
		/// Highest difficulty the retarget may reach.
		#[codec(index = 2)]
		pub static MaxDifficulty: u128 = 1_000_000_000_000_000_000_000;
		/// Each block moves `1/Damping` of the way toward the target rate.
		#[codec(index = 3)]
		pub static Damping: u32 = 4;
		/// Largest relative difficulty change per block.
		#[codec(index = 4)]
		pub static MaxChangePerBlock: Perbill = Perbill::from_percent(10);
	}

	/// Miner rewards.
	#[dynamic_pallet_params]
	#[codec(index = 1)]
	pub mod rewards {
		/// Minted to the author of every block.
		#[codec(index = 0)]
		pub static BlockReward: Balance = 10 * UNIT;
	}

	/// Federated-learning tasks: stakes, slashing, fees, quorum, lazy-proof threshold,
	/// blob size, phase bounds and the bid score.
	#[dynamic_pallet_params]
	#[codec(index = 2)]
	pub mod fl {
		/// Smallest stake a task may ask of its bidders.
		#[codec(index = 0)]
		pub static MinStake: Balance = 10 * UNIT;
		/// Share of a proven lazy trainer's stake that is slashed.
		#[codec(index = 1)]
		pub static LazySlash: Perbill = Perbill::from_percent(50);
		/// Share of the stake burnt for a missed submission or reveal.
		#[codec(index = 2)]
		pub static MissSlash: Perbill = Perbill::from_percent(10);
		/// Share of a lazy slash paid to the reporter.
		#[codec(index = 3)]
		pub static ReporterShare: Perbill = Perbill::from_percent(20);
		/// Paid by a reporter to the accused when an accusation fails.
		#[codec(index = 4)]
		pub static FalseReportPenalty: Balance = 5 * UNIT;
		/// Share of each round's budget paid to the publishing aggregator.
		#[codec(index = 5)]
		pub static AggregationFee: Perbill = Perbill::from_percent(5);
		/// Votes needed: more than this share of the eligible trainers.
		#[codec(index = 6)]
		pub static Quorum: Perbill = Perbill::from_percent(50);
		/// Z-score (hundredths of a standard deviation) of the copy test that proves a
		/// watermark copy (sign statistic after removing the accused's own watermark; see
		/// `blade_fl_primitives::verdict`). 600 = 6 sigma, ~1e-9 false proofs per test.
		#[codec(index = 7)]
		pub static LazyZScore: u32 = 600;
		/// Largest update or aggregate blob, in bytes (hard bound: `MAX_BLOB_LEN`).
		#[codec(index = 8)]
		pub static MaxBlobSize: u32 = 1024 * 1024;
		/// Shortest phase a task may ask for, in blocks: above the reference trainer's
		/// default confirmation depth (3) plus inclusion and a margin for forks, so a
		/// publisher cannot make honest trainers miss deadlines.
		#[codec(index = 9)]
		pub static MinPhaseLength: BlockNumber = 6;
		/// Longest phase a task may ask for, in blocks.
		#[codec(index = 10)]
		pub static MaxPhaseLength: BlockNumber = 7 * 24 * 60 * MINUTES;
		/// Weight of reputation in the bid score.
		#[codec(index = 11)]
		pub static ScoreReputation: Perbill = Perbill::from_percent(40);
		/// Weight of declared samples in the bid score.
		#[codec(index = 12)]
		pub static ScoreSamples: Perbill = Perbill::from_percent(30);
		/// Weight of capability in the bid score.
		#[codec(index = 13)]
		pub static ScoreCapability: Perbill = Perbill::from_percent(10);
		/// Weight of a low price in the bid score.
		#[codec(index = 14)]
		pub static ScorePrice: Perbill = Perbill::from_percent(20);
		/// Smallest reward per trainer and round a task may offer.
		#[codec(index = 15)]
		pub static MinRewardPerTrainerRound: Balance = UNIT / 100;
		/// Listing fee burnt per block of a task's longest possible life (bidding, rounds x
		/// round phases, publishing): 0.00001 BLADE, i.e. 0.432 BLADE a day at 2 s blocks.
		#[codec(index = 16)]
		pub static ListingFeePerBlock: Balance = UNIT / 100_000;
		/// Slack below the task's watermark power, in hundredths of a decibel, before an
		/// update's watermark is proven too weak.
		#[codec(index = 17)]
		pub static WatermarkTolerance: u32 = 300;
	}

	/// Trainer reputation: decay and the weight of each behaviour in milli-events.
	#[dynamic_pallet_params]
	#[codec(index = 3)]
	pub mod reputation {
		/// Share of old evidence kept per recorded behaviour.
		#[codec(index = 0)]
		pub static Decay: Perbill = Perbill::from_percent(95);
		/// A good round.
		#[codec(index = 1)]
		pub static GoodWeight: u32 = 1_000;
		/// A dissenting vote.
		#[codec(index = 2)]
		pub static DissentWeight: u32 = 1_000;
		/// Left out of the agreed aggregate.
		#[codec(index = 3)]
		pub static OutlierWeight: u32 = 1_000;
		/// A missed submission or reveal.
		#[codec(index = 4)]
		pub static MissedWeight: u32 = 2_000;
		/// A lazy-client proof.
		#[codec(index = 5)]
		pub static LazyWeight: u32 = 5_000;
	}
}

#[cfg(feature = "runtime-benchmarks")]
impl Default for RuntimeParameters {
	fn default() -> Self {
		RuntimeParameters::Rewards(dynamic_params::rewards::Parameters::BlockReward(
			dynamic_params::rewards::BlockReward,
			Some(UNIT),
		))
	}
}

impl pallet_parameters::Config for Runtime {
	type RuntimeEvent = RuntimeEvent;
	type RuntimeParameters = RuntimeParameters;
	type AdminOrigin = AsEnsureOriginWithArg<RootOrCouncilMajority>;
	type WeightInfo = ();
}

impl pallet_difficulty::Config for Runtime {
	type TargetBlockTime = dynamic_params::pow::TargetBlockTime;
	type MinDifficulty = dynamic_params::pow::MinDifficulty;
	type MaxDifficulty = dynamic_params::pow::MaxDifficulty;
	type Damping = dynamic_params::pow::Damping;
	type MaxChangePerBlock = dynamic_params::pow::MaxChangePerBlock;
	type WindowSize = ConstU32<12>;
	type AdminOrigin = RootOrCouncilMajority;
	type WeightInfo = pallet_difficulty::weights::SubstrateWeight<Runtime>;
}

impl pallet_block_reward::Config for Runtime {
	type Currency = Balances;
	type BlockReward = dynamic_params::rewards::BlockReward;
}

/// Hard bound on an update or aggregate blob: 2 MiB, within the normal-class block length.
pub const MAX_BLOB_LEN: u32 = 2 * 1024 * 1024;

impl pallet_fl_tasks::Config for Runtime {
	type Currency = Balances;
	type RuntimeHoldReason = RuntimeHoldReason;
	type Reputation = crate::Reputation;
	type MinStake = dynamic_params::fl::MinStake;
	type LazySlash = dynamic_params::fl::LazySlash;
	type MissSlash = dynamic_params::fl::MissSlash;
	type ReporterShare = dynamic_params::fl::ReporterShare;
	type FalseReportPenalty = dynamic_params::fl::FalseReportPenalty;
	type AggregationFee = dynamic_params::fl::AggregationFee;
	type Quorum = dynamic_params::fl::Quorum;
	type LazyZScore = dynamic_params::fl::LazyZScore;
	type MaxBlobSize = dynamic_params::fl::MaxBlobSize;
	type MinPhaseLength = dynamic_params::fl::MinPhaseLength;
	type MaxPhaseLength = dynamic_params::fl::MaxPhaseLength;
	type ScoreReputation = dynamic_params::fl::ScoreReputation;
	type ScoreSamples = dynamic_params::fl::ScoreSamples;
	type ScoreCapability = dynamic_params::fl::ScoreCapability;
	type ScorePrice = dynamic_params::fl::ScorePrice;
	type MinRewardPerTrainerRound = dynamic_params::fl::MinRewardPerTrainerRound;
	type ListingFeePerBlock = dynamic_params::fl::ListingFeePerBlock;
	type WatermarkTolerance = dynamic_params::fl::WatermarkTolerance;
	type MaxBlobLen = ConstU32<MAX_BLOB_LEN>;
	type MaxBids = ConstU32<128>;
	type MaxTrainers = ConstU32<32>;
	type MaxRounds = ConstU32<100>;
	type MaxActiveTasks = ConstU32<64>;
	type MaxTasksPerPublisher = ConstU32<4>;
	type MaxTransitionsPerBlock = ConstU32<4>;
	type WeightInfo = pallet_fl_tasks::weights::SubstrateWeight<Runtime>;
}

impl pallet_fl_reputation::Config for Runtime {
	type Decay = dynamic_params::reputation::Decay;
	type GoodWeight = dynamic_params::reputation::GoodWeight;
	type DissentWeight = dynamic_params::reputation::DissentWeight;
	type OutlierWeight = dynamic_params::reputation::OutlierWeight;
	type MissedWeight = dynamic_params::reputation::MissedWeight;
	type LazyWeight = dynamic_params::reputation::LazyWeight;
}
