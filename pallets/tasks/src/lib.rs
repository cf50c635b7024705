//! # Federated-learning tasks pallet
//!
//! The smart-contract layer of BLADE-FL: a publisher escrows a reward for a federated-
//! learning task, trainers bid with a staked deposit, winners train for `K` rounds, commit
//! and publish their updates, expose lazy copiers with verifiable PN-watermark proofs, agree
//! on each round's aggregate by quorum, and are paid from the escrow at settlement. The full
//! protocol, with its rules for every deadline, is in `docs/protocol.md`.
//!
//! ## Life cycle
//!
//! 1. [`Pallet::publish_task`] holds the reward (`HoldReason::Escrow`). Phase `Bidding`.
//! 2. [`Pallet::bid`] holds the task's stake (`HoldReason::Stake`) and commits to the PN
//!    seed of round 0. [`Pallet::withdraw_bid`] and [`Pallet::cancel_task`] undo during
//!    bidding.
//! 3. At the bidding deadline the hook selects the best `trainers_wanted` bids by score
//!    (reputation, declared samples, capability, price; see [`Pallet::bid_score`]); losers
//!    are released at once; too few bids fail the task and refund everybody.
//! 4. Each round: `Submit` ([`Pallet::submit_update`]: the blob travels in the extrinsic,
//!    state keeps hash, size and location, plus the commitment to the next seed), `Reveal`
//!    ([`Pallet::reveal_seed`], checked against the commitment), `Aggregate`
//!    ([`Pallet::propose_aggregate`] until a quorum agrees on one hash and included set).
//!    [`Pallet::report_lazy`] is open in `Reveal` and `Aggregate` until the round is decided:
//!    the runtime recomputes the PN correlation of the accused's blob with the victim's
//!    revealed seed and slashes on proof.
//! 5. After the last round, phase `Publishing` gives the last aggregator time to
//!    [`Pallet::publish_aggregate`]; then the hook settles: accrued rewards are paid from the
//!    escrow, stakes released, the remaining escrow refunded, and every storage item of the
//!    task removed.
//!
//! Every deadline is handled by `on_initialize` for at most
//! [`Config::MaxTransitionsPerBlock`] tasks per block, each transition bounded by
//! [`Config::MaxBids`] or [`Config::MaxTrainers`]; nothing ever iterates unbounded storage.
//! Phases also end early (at the next block) when everybody has acted.
//!
//! ## Money
//!
//! The reward stays on hold on the publisher until paid: per finalised round
//! `reward / K` is split into the aggregation fee ([`Config::AggregationFee`] of it, paid to
//! the first proposer of the winning aggregate when it publishes the blob) and the trainers'
//! pool, shared in proportion to declared samples times reputation among the trainers in
//! the agreed aggregate. Lazy trainers lose [`Config::LazySlash`] of their stake
//! ([`Config::ReporterShare`] of it to the reporter, the rest burnt) and all accrued
//! rewards; missed submissions or reveals cost [`Config::MissSlash`] (burnt). Anything not
//! paid out returns to the publisher at settlement.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;
pub use types::*;

// Also in the pallet's own tests: `impl_benchmark_test_suite!` runs every benchmark once
// against the mock in the same build as the other tests (scripts/test).
#[cfg(any(feature = "runtime-benchmarks", test))]
#[allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark
mod benchmarking;
mod lifecycle;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod mock;
mod reports;
pub mod runtime_api;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
pub mod types;
pub mod weights;
pub use weights::WeightInfo;

/// Log target of this pallet.
pub const LOG_TARGET: &str = "runtime::fl-tasks";

#[allow(clippy::expect_used)] // FRAME macro expansions
#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use blade_fl_primitives::{
		blob::{blob_hash, Blob, BlobError, HEADER_LEN},
		pn::{round_key, seed_commitment, Seed},
		traits::Reputation,
		verdict::{energy, energy_bound},
	};
	use codec::Encode;
	use frame_support::{
		pallet_prelude::*,
		traits::{
			fungible::{Inspect, Mutate, MutateHold},
			tokens::{Fortitude, Precision, Preservation, Restriction},
		},
	};
	use frame_system::pallet_prelude::*;
	use sp_core::H256;
	use sp_runtime::{
		traits::{Saturating, UniqueSaturatedInto, Zero},
		Perbill,
	};

	/// Balance type of the currency.
	pub type BalanceOf<T> =
		<<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;
	/// A task as stored.
	pub type TaskOf<T> = TaskInfo<
		<T as frame_system::Config>::AccountId,
		BalanceOf<T>,
		BlockNumberFor<T>,
		<T as Config>::MaxTrainers,
	>;
	/// A task specification as passed to [`Pallet::publish_task`].
	pub type SpecOf<T> = TaskSpec<BalanceOf<T>, BlockNumberFor<T>>;
	/// A finalised round's global model.
	pub type GlobalModelOf<T> =
		GlobalModel<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// The currency: escrows and stakes are holds on it.
		type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
			+ Mutate<Self::AccountId>;
		/// The overarching hold reason.
		type RuntimeHoldReason: From<HoldReason>;
		/// Reputation read by selection and reward shares, written after each round.
		type Reputation: Reputation<Self::AccountId>;

		/// Smallest stake a task may ask of its bidders.
		type MinStake: Get<BalanceOf<Self>>;
		/// Share of a proven lazy trainer's stake that is slashed.
		type LazySlash: Get<Perbill>;
		/// Share of the stake slashed for a missed submission or reveal.
		type MissSlash: Get<Perbill>;
		/// Share of a lazy slash paid to the reporter (the rest is burnt).
		type ReporterShare: Get<Perbill>;
		/// Paid by a reporter to the accused when the correlation stays below the threshold.
		type FalseReportPenalty: Get<BalanceOf<Self>>;
		/// Share of each round's budget paid to the aggregator who publishes the aggregate.
		type AggregationFee: Get<Perbill>;
		/// An aggregate is agreed when its votes exceed this share of the eligible trainers.
		type Quorum: Get<Perbill>;
		/// Z-score, in hundredths of a standard deviation, at or above which an update is
		/// proven to carry another trainer's watermark: `rho * sqrt(n) >= z` (see
		/// `blade_fl_primitives::correlation::proves_copy`; 600 = 6 sigma, about one false
		/// proof in 10^9 tests).
		type LazyZScore: Get<u32>;
		/// Largest update or aggregate blob accepted, in bytes (at most [`Self::MaxBlobLen`]).
		type MaxBlobSize: Get<u32>;
		/// Shortest phase a task may ask for, in blocks. Trainers act on blocks a few
		/// confirmations deep: a phase shorter than their confirmation depth plus inclusion
		/// would make honest trainers miss deadlines (the runtime sets it above the default
		/// depth of the reference trainer).
		type MinPhaseLength: Get<BlockNumberFor<Self>>;
		/// Longest phase a task may ask for, in blocks.
		type MaxPhaseLength: Get<BlockNumberFor<Self>>;
		/// Weight of reputation in the bid score.
		type ScoreReputation: Get<Perbill>;
		/// Weight of declared samples in the bid score.
		type ScoreSamples: Get<Perbill>;
		/// Weight of capability in the bid score.
		type ScoreCapability: Get<Perbill>;
		/// Weight of (low) price in the bid score.
		type ScorePrice: Get<Perbill>;
		/// Smallest reward per trainer and round a task may offer: `reward >= this *
		/// trainers_wanted * rounds`. Keeps tasks that pay nothing out of the market.
		type MinRewardPerTrainerRound: Get<BalanceOf<Self>>;
		/// Listing fee burnt at publication per block of the task's longest possible life
		/// (bidding, rounds x (submit + reveal + aggregate), publishing): holding a market
		/// slot costs in proportion to how long it can be held.
		type ListingFeePerBlock: Get<BalanceOf<Self>>;
		/// Slack, in hundredths of a decibel, below the task's watermark power before an
		/// update's watermark is proven too weak.
		type WatermarkTolerance: Get<u32>;

		/// Hard bound on blob length: the `BoundedVec` bound of the calls.
		#[pallet::constant]
		type MaxBlobLen: Get<u32>;
		/// Most bids per task.
		#[pallet::constant]
		type MaxBids: Get<u32>;
		/// Most trainers per task (at most 64).
		#[pallet::constant]
		type MaxTrainers: Get<u32>;
		/// Most rounds per task.
		#[pallet::constant]
		type MaxRounds: Get<u32>;
		/// Most tasks alive at once.
		#[pallet::constant]
		type MaxActiveTasks: Get<u32>;
		/// Most live tasks one publisher may have at once.
		#[pallet::constant]
		type MaxTasksPerPublisher: Get<u32>;
		/// Most phase transitions the hook performs per block.
		#[pallet::constant]
		type MaxTransitionsPerBlock: Get<u32>;

		/// Weights of calls and hook work.
		type WeightInfo: WeightInfo;
	}

	/// Why funds are on hold.
	#[pallet::composite_enum]
	pub enum HoldReason {
		/// A publisher's task reward in escrow.
		#[codec(index = 0)]
		Escrow,
		/// A bidder's or trainer's stake.
		#[codec(index = 1)]
		Stake,
	}

	/// Next task identifier.
	#[pallet::storage]
	pub type NextTaskId<T: Config> = StorageValue<_, TaskId, ValueQuery>;

	/// Live tasks.
	#[pallet::storage]
	pub type Tasks<T: Config> = StorageMap<_, Twox64Concat, TaskId, TaskOf<T>>;

	/// Live tasks with the block at which their phase ends: what the hook scans.
	#[pallet::storage]
	pub type ActiveTasks<T: Config> =
		StorageValue<_, BoundedVec<ActiveTask<BlockNumberFor<T>>, T::MaxActiveTasks>, ValueQuery>;

	/// Bids of tasks in bidding.
	#[pallet::storage]
	pub type Bids<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		TaskId,
		Blake2_128Concat,
		T::AccountId,
		Bid<BalanceOf<T>>,
	>;

	/// Selected trainers of running tasks.
	#[pallet::storage]
	pub type Participants<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		TaskId,
		Blake2_128Concat,
		T::AccountId,
		Participant<BalanceOf<T>>,
	>;

	/// This round's updates.
	#[pallet::storage]
	pub type Updates<T: Config> = StorageDoubleMap<
		_,
		Twox64Concat,
		TaskId,
		Blake2_128Concat,
		T::AccountId,
		UpdateRecord<BlockNumberFor<T>>,
	>;

	/// Number of live tasks of each publisher (at most `MaxTasksPerPublisher`).
	#[pallet::storage]
	pub type PublisherTasks<T: Config> =
		StorageMap<_, Blake2_128Concat, T::AccountId, u32, ValueQuery>;

	/// This round's aggregate proposals (one per distinct hash and included set).
	#[pallet::storage]
	pub type Tallies<T: Config> = StorageMap<
		_,
		Twox64Concat,
		TaskId,
		BoundedVec<Tally<T::AccountId>, T::MaxTrainers>,
		ValueQuery,
	>;

	/// This round's vote of each trainer: index into [`Tallies`].
	#[pallet::storage]
	pub type Votes<T: Config> =
		StorageDoubleMap<_, Twox64Concat, TaskId, Blake2_128Concat, T::AccountId, u32>;

	/// Global model of each finalised round of live tasks.
	#[pallet::storage]
	pub type GlobalModels<T: Config> =
		StorageDoubleMap<_, Twox64Concat, TaskId, Twox64Concat, RoundIndex, GlobalModelOf<T>>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A task was published and its reward put in escrow.
		TaskPublished {
			/// The task.
			task: TaskId,
			/// Its publisher.
			publisher: T::AccountId,
			/// Escrowed reward.
			reward: BalanceOf<T>,
			/// Listing fee burnt for the task's longest possible life.
			listing_fee: BalanceOf<T>,
			/// Block at which bidding closes.
			bidding_end: BlockNumberFor<T>,
		},
		/// A bid was placed and its stake put on hold.
		BidPlaced {
			/// The task.
			task: TaskId,
			/// The bidder.
			bidder: T::AccountId,
			/// Stake held.
			stake: BalanceOf<T>,
			/// Declared samples.
			samples: u64,
		},
		/// A bid was withdrawn or lost the selection; its stake was released.
		BidReleased {
			/// The task.
			task: TaskId,
			/// The bidder.
			bidder: T::AccountId,
		},
		/// Bidding closed and these trainers were selected, best score first.
		TrainersSelected {
			/// The task.
			task: TaskId,
			/// Selected trainers.
			trainers: BoundedVec<T::AccountId, T::MaxTrainers>,
		},
		/// A phase began.
		PhaseStarted {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The phase.
			phase: Phase,
			/// Block at which it ends.
			ends: BlockNumberFor<T>,
		},
		/// An update was submitted; the blob is extrinsic `extrinsic_index` of block `block`.
		UpdateSubmitted {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The trainer.
			trainer: T::AccountId,
			/// Blake2-256 of the blob.
			hash: H256,
			/// Blob length.
			size: u32,
			/// Block holding the blob.
			block: BlockNumberFor<T>,
			/// Extrinsic index within the block.
			extrinsic_index: u32,
		},
		/// A PN seed was revealed and matched its commitment.
		SeedRevealed {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The trainer.
			trainer: T::AccountId,
			/// The seed.
			seed: Seed,
			/// The round key derived from it, whose chips the update carries.
			key: Seed,
		},
		/// A trainer was proven lazy and slashed.
		LazyProven {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The lazy trainer.
			accused: T::AccountId,
			/// The trainer whose watermark the update carries; `None`: the watermarks of all
			/// other revealed trainers together (an averaging copier).
			victim: Option<T::AccountId>,
			/// Who proved it.
			reporter: T::AccountId,
			/// Copy statistic in hundredths of a standard deviation.
			z_centi: i64,
			/// Stake slashed.
			slashed: BalanceOf<T>,
			/// Part of it paid to the reporter.
			reporter_reward: BalanceOf<T>,
		},
		/// An update was proven to carry its owner's watermark too weakly (or not at all); its
		/// owner was slashed and excluded like a lazy trainer.
		WeakWatermarkProven {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The trainer.
			accused: T::AccountId,
			/// Who proved it.
			reporter: T::AccountId,
			/// Measured update-to-watermark power ratio, hundredths of a dB.
			snr_centi_db: i64,
			/// Stake slashed.
			slashed: BalanceOf<T>,
			/// Part of it paid to the reporter.
			reporter_reward: BalanceOf<T>,
		},
		/// A watermark report failed: the accused's watermark is strong enough.
		FalseWatermarkReport {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The reporter.
			reporter: T::AccountId,
			/// The wrongly accused trainer, who received the penalty.
			accused: T::AccountId,
			/// Measured update-to-watermark power ratio, hundredths of a dB.
			snr_centi_db: i64,
			/// Paid by the reporter to the accused.
			penalty: BalanceOf<T>,
		},
		/// An accusation failed: the correlation stayed below the threshold.
		FalseAccusation {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The accuser.
			reporter: T::AccountId,
			/// The wrongly accused trainer, who received the penalty.
			accused: T::AccountId,
			/// The claimed victim (`None`: all other revealed trainers).
			victim: Option<T::AccountId>,
			/// Copy statistic in hundredths of a standard deviation.
			z_centi: i64,
			/// Paid by the reporter to the accused.
			penalty: BalanceOf<T>,
		},
		/// A trainer missed a deadline and was penalised.
		Penalised {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The trainer.
			trainer: T::AccountId,
			/// What it missed.
			offence: Offence,
			/// Stake burnt.
			slashed: BalanceOf<T>,
		},
		/// A trainer voted for an aggregate.
		AggregateProposed {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The voter.
			trainer: T::AccountId,
			/// Blake2-256 of the aggregate.
			hash: H256,
			/// Included trainers.
			included: TrainerMask,
		},
		/// An aggregate reached the quorum; the round finalises at the next block.
		AggregateAgreed {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// Blake2-256 of the aggregate.
			hash: H256,
			/// Votes for it.
			votes: u32,
		},
		/// A round was finalised: its global model is recorded and rewards accrued.
		RoundFinalized {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// Blake2-256 of the global model.
			hash: H256,
			/// Who must publish it and earns the fee.
			aggregator: T::AccountId,
			/// Rewards accrued to trainers for this round.
			rewarded: BalanceOf<T>,
		},
		/// No aggregate reached the quorum; the round is retried.
		RoundRetried {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
		},
		/// A global model was published and its publisher paid the fee.
		AggregatePublished {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The round's aggregator.
			aggregator: T::AccountId,
			/// Who published (the aggregator, or anyone after its exclusive window).
			by: T::AccountId,
			/// Fee paid to `by`.
			fee: BalanceOf<T>,
			/// Block holding the blob.
			block: BlockNumberFor<T>,
			/// Extrinsic index within the block.
			extrinsic_index: u32,
		},
		/// A round's aggregator did not publish the agreed model in its exclusive window (or
		/// at all): it lost the fee, the rewards it accrued in the task and `MissSlash` of
		/// its stake ([`Event::Penalised`] with [`Offence::NoPublication`]), and recorded a
		/// miss.
		PublicationMissed {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The aggregator.
			aggregator: T::AccountId,
		},
		/// A task ended and was removed from storage.
		TaskSettled {
			/// The task.
			task: TaskId,
			/// `None` when all rounds completed.
			failure: Option<Failure>,
			/// Rewards paid to trainers.
			paid: BalanceOf<T>,
			/// Escrow returned to the publisher.
			refunded: BalanceOf<T>,
		},
	}

	#[pallet::error]
	pub enum Error<T> {
		/// No live task has this id; it may have settled.
		UnknownTask,
		/// The call does not belong to the task's current phase; wait for (or missed) it.
		WrongPhase,
		/// The round named is not the task's current round.
		WrongRound,
		/// The spec asks for no rounds or more than `MaxRounds`.
		BadRounds,
		/// Trainer counts must satisfy `1 <= trainers_min <= trainers_wanted <= MaxTrainers`.
		BadTrainerCounts,
		/// A phase length is outside `[MinPhaseLength, MaxPhaseLength]`.
		BadPhaseLength,
		/// The update size implied by `param_count` and the codec is zero or above the
		/// maximum blob size.
		BadParamCount,
		/// The reward must be at least `MinRewardPerTrainerRound * trainers_wanted * rounds`
		/// (and positive).
		BadReward,
		/// `max_samples` must be at least `min_samples`, and `min_samples` positive.
		BadSampleRange,
		/// The update norm bound `max_norm_milli` must be positive.
		BadNormBound,
		/// The task's stake is below the chain's `MinStake`.
		StakeTooLow,
		/// The aggregation rule's parameters are impossible (trim >= 50 %, or Multi-Krum with
		/// `2f + 2 >= trainers_min`).
		BadRule,
		/// The privacy floor needs a positive epsilon and a delta in (0, 1 %), and the PN SNR
		/// must be positive.
		BadPrivacy,
		/// `MaxActiveTasks` tasks are live; wait for one to settle.
		TooManyTasks,
		/// This publisher already has `MaxTasksPerPublisher` live tasks; wait for one to
		/// settle.
		PublisherBusy,
		/// Only the publisher may do this.
		NotPublisher,
		/// Publishers cannot bid on their own tasks.
		PublisherCannotBid,
		/// This account already bid; withdraw first to bid again.
		AlreadyBid,
		/// The task has `MaxBids` bids.
		TooManyBids,
		/// Declared samples are below the task's minimum.
		TooFewSamples,
		/// Declared samples are above the task's cap `max_samples`; declare at most the cap.
		TooManySamples,
		/// The account has no bid on this task.
		NoBid,
		/// The account is not a selected trainer of this task.
		NotTrainer,
		/// The trainer was proven lazy and is out of the task.
		Excluded,
		/// The trainer already submitted this round.
		AlreadySubmitted,
		/// The blob is longer than `MaxBlobSize`.
		BlobTooLarge,
		/// The blob is shorter than its header.
		BlobTruncated,
		/// The blob does not start with the BLADE-FL magic.
		BlobBadMagic,
		/// The blob's format version is unknown.
		BlobBadVersion,
		/// The blob's codec tag is unknown.
		BlobBadCodec,
		/// The blob's reserved header bytes are not zero.
		BlobReservedNotZero,
		/// The blob's payload length does not match its parameter count and codec.
		BlobLengthMismatch,
		/// The blob holds a NaN or infinite value.
		BlobNonFinite,
		/// The blob's int8 scale is invalid.
		BlobBadScale,
		/// The blob's header names another task, round, parameter count or codec.
		BlobHeaderMismatch,
		/// The update's L2 norm is above the task's `max_norm_milli`; clip it first.
		UpdateNormTooLarge,
		/// The trainer has no update this round.
		NoUpdate,
		/// The seed was already revealed.
		AlreadyRevealed,
		/// The seed does not open the trainer's commitment.
		SeedMismatch,
		/// Accused and victim must differ, and a trainer cannot report itself.
		SelfReport,
		/// The victim has not revealed this round's seed yet.
		VictimSeedUnknown,
		/// The accused has not revealed this round's seed yet (needed to measure its own
		/// watermark); wait for the reveal.
		AccusedSeedUnknown,
		/// A report against every other trainer at once is only accepted in the aggregate
		/// phase (when the set of revealed seeds is final).
		AllVictimsTooEarly,
		/// No other trainer has revealed a seed to test against.
		NoVictims,
		/// The blob's hash differs from the accused's recorded update.
		BlobHashMismatch,
		/// The reporter cannot pay the false-report penalty.
		CannotPayPenalty,
		/// The round's aggregate is already agreed.
		AlreadyDecided,
		/// Only trainers who revealed this round (and are not lazy) vote.
		NotEligible,
		/// The trainer already voted this round.
		AlreadyVoted,
		/// The included set is empty or names trainers whose updates do not count.
		BadIncludedSet,
		/// That round has no finalised global model.
		NoGlobalModel,
		/// Only the aggregator of the round publishes its global model during its exclusive
		/// window; anyone may after `exclusive_until`.
		NotAggregator,
		/// The global model was already published.
		AlreadyPublished,
		/// The blob's hash differs from the agreed aggregate hash.
		AggregateHashMismatch,
		/// Arithmetic overflow; the inputs are out of range.
		Overflow,
	}

	impl<T> From<BlobError> for Error<T> {
		fn from(e: BlobError) -> Self {
			match e {
				BlobError::TooShort => Error::BlobTruncated,
				BlobError::TooLong => Error::BlobTooLarge,
				BlobError::BadMagic => Error::BlobBadMagic,
				BlobError::UnsupportedVersion => Error::BlobBadVersion,
				BlobError::UnknownCodec => Error::BlobBadCodec,
				BlobError::ReservedNotZero => Error::BlobReservedNotZero,
				BlobError::LengthMismatch => Error::BlobLengthMismatch,
				BlobError::NonFinite { .. } => Error::BlobNonFinite,
				BlobError::BadScale => Error::BlobBadScale,
			}
		}
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(now: BlockNumberFor<T>) -> Weight {
			Self::process_deadlines(now)
		}

		fn integrity_test() {
			assert!(T::MaxTrainers::get() <= 64, "trainer masks are u64");
			assert!(T::MaxTrainers::get() >= 1 && T::MaxRounds::get() >= 1);
			assert!(T::MaxBlobLen::get() as usize > HEADER_LEN);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Publish a task and put its reward in escrow.
		///
		/// - Origin: signed; the publisher.
		/// - Holds `spec.reward` on the publisher (`HoldReason::Escrow`) and burns the listing
		///   fee, `ListingFeePerBlock * spec.phases.bidding`.
		/// - Emits [`Event::TaskPublished`].
		/// - Errors: [`Error::BadRounds`], [`Error::BadTrainerCounts`],
		///   [`Error::BadPhaseLength`], [`Error::BadParamCount`], [`Error::BadReward`],
		///   [`Error::BadSampleRange`], [`Error::BadNormBound`], [`Error::StakeTooLow`],
		///   [`Error::BadRule`], [`Error::BadPrivacy`], [`Error::TooManyTasks`],
		///   [`Error::PublisherBusy`], or a token error if the reward cannot be held or the
		///   fee paid.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::publish_task())]
		pub fn publish_task(origin: OriginFor<T>, spec: SpecOf<T>) -> DispatchResult {
			let publisher = ensure_signed(origin)?;
			Self::validate_spec(&spec)?;
			let now = frame_system::Pallet::<T>::block_number();
			let bidding_end = now.saturating_add(spec.phases.bidding);
			let task = NextTaskId::<T>::get();
			let next = task.checked_add(1).ok_or(Error::<T>::Overflow)?;
			let live = PublisherTasks::<T>::get(&publisher);
			ensure!(
				live < T::MaxTasksPerPublisher::get(),
				Error::<T>::PublisherBusy
			);
			ActiveTasks::<T>::try_mutate(|active| {
				active.try_push(ActiveTask {
					task,
					phase_end: bidding_end,
				})
			})
			.map_err(|_| Error::<T>::TooManyTasks)?;
			let listing_fee = Self::listing_fee(&spec);
			T::Currency::burn_from(
				&publisher,
				listing_fee,
				Preservation::Preserve,
				Precision::Exact,
				Fortitude::Polite,
			)?;
			T::Currency::hold(&HoldReason::Escrow.into(), &publisher, spec.reward)?;
			PublisherTasks::<T>::insert(&publisher, live.saturating_add(1));
			NextTaskId::<T>::put(next);
			Tasks::<T>::insert(
				task,
				TaskInfo {
					publisher: publisher.clone(),
					spec,
					phase: Phase::Bidding,
					phase_end: bidding_end,
					round: 0,
					attempt: 0,
					escrow: spec.reward,
					bids: 0,
					bid_seq: 0,
					trainers: BoundedVec::new(),
					submitted: 0,
					revealed: 0,
					lazy: 0,
					decided: None,
				},
			);
			Self::deposit_event(Event::TaskPublished {
				task,
				publisher,
				reward: spec.reward,
				listing_fee,
				bidding_end,
			});
			Ok(())
		}

		/// Cancel a task during bidding; it settles at the next block with a full refund of
		/// the escrow and every bid stake.
		///
		/// - Origin: signed; the publisher.
		/// - Emits [`Event::PhaseStarted`] (phase `Failing(Cancelled)`), then at the next block
		///   [`Event::BidReleased`] per bid and [`Event::TaskSettled`].
		/// - Errors: [`Error::UnknownTask`], [`Error::NotPublisher`], [`Error::WrongPhase`]
		///   (bidding has closed).
		#[pallet::call_index(1)]
		#[pallet::weight(T::WeightInfo::cancel_task())]
		pub fn cancel_task(origin: OriginFor<T>, task: TaskId) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Tasks::<T>::get(task).ok_or(Error::<T>::UnknownTask)?;
			ensure!(info.publisher == who, Error::<T>::NotPublisher);
			ensure!(info.phase == Phase::Bidding, Error::<T>::WrongPhase);
			let now = frame_system::Pallet::<T>::block_number();
			Self::enter_phase(
				task,
				&mut info,
				Phase::Failing(Failure::Cancelled),
				now,
				1u32.into(),
			);
			Tasks::<T>::insert(task, info);
			Ok(())
		}

		/// Bid on a task: put the stake on hold and commit to the PN seed of round 0.
		///
		/// `samples` must lie in `[min_samples, max_samples]`; the stake grows with it (see
		/// [`Pallet::bid_stake`]: from `min_stake` to twice that at the cap).
		/// `commitment` is `seed_commitment(bidder.encode(), seed)` from
		/// `blade_fl_primitives::pn`; keep the seed secret until the first reveal phase.
		///
		/// - Origin: signed; the bidder.
		/// - Emits [`Event::BidPlaced`].
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`],
		///   [`Error::PublisherCannotBid`], [`Error::AlreadyBid`], [`Error::TooManyBids`],
		///   [`Error::TooFewSamples`], [`Error::TooManySamples`], or a token error if the
		///   stake cannot be held.
		#[pallet::call_index(2)]
		#[pallet::weight(T::WeightInfo::bid())]
		pub fn bid(
			origin: OriginFor<T>,
			task: TaskId,
			samples: u64,
			price: BalanceOf<T>,
			capability: u32,
			commitment: H256,
		) -> DispatchResult {
			let bidder = ensure_signed(origin)?;
			let mut info = Self::open_task(task, &[Phase::Bidding])?;
			ensure!(info.publisher != bidder, Error::<T>::PublisherCannotBid);
			ensure!(
				!Bids::<T>::contains_key(task, &bidder),
				Error::<T>::AlreadyBid
			);
			ensure!(info.bids < T::MaxBids::get(), Error::<T>::TooManyBids);
			ensure!(samples >= info.spec.min_samples, Error::<T>::TooFewSamples);
			ensure!(samples <= info.spec.max_samples, Error::<T>::TooManySamples);
			let stake = Self::bid_stake(&info.spec, samples);
			T::Currency::hold(&HoldReason::Stake.into(), &bidder, stake)?;
			let seq = info.bid_seq;
			info.bid_seq = info.bid_seq.saturating_add(1);
			info.bids = info.bids.saturating_add(1);
			Bids::<T>::insert(
				task,
				&bidder,
				Bid {
					samples,
					price,
					capability,
					commitment,
					stake,
					seq,
				},
			);
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::BidPlaced {
				task,
				bidder,
				stake,
				samples,
			});
			Ok(())
		}

		/// Withdraw a bid during bidding and get the stake back.
		///
		/// - Origin: signed; the bidder.
		/// - Emits [`Event::BidReleased`].
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`], [`Error::NoBid`].
		#[pallet::call_index(3)]
		#[pallet::weight(T::WeightInfo::withdraw_bid())]
		pub fn withdraw_bid(origin: OriginFor<T>, task: TaskId) -> DispatchResult {
			let bidder = ensure_signed(origin)?;
			let mut info = Self::open_task(task, &[Phase::Bidding])?;
			let bid = Bids::<T>::get(task, &bidder).ok_or(Error::<T>::NoBid)?;
			T::Currency::release(
				&HoldReason::Stake.into(),
				&bidder,
				bid.stake,
				Precision::Exact,
			)?;
			Bids::<T>::remove(task, &bidder);
			info.bids = info.bids.saturating_sub(1);
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::BidReleased { task, bidder });
			Ok(())
		}

		/// Submit this round's model update.
		///
		/// The blob travels in this extrinsic (so it lives in the block body); state keeps
		/// its Blake2-256 hash, size and location. Its header must name this task and round,
		/// the task's parameter count and codec, every value must be finite, and the L2 norm
		/// at most the task's `max_norm_milli`. `next_commitment` commits to the PN seed of
		/// the trainer's next round.
		///
		/// - Origin: signed; a selected trainer.
		/// - Emits [`Event::UpdateSubmitted`] (with block and extrinsic index).
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`], [`Error::WrongRound`],
		///   [`Error::NotTrainer`], [`Error::Excluded`], [`Error::AlreadySubmitted`],
		///   [`Error::BlobTooLarge`] and the other `Blob*` errors,
		///   [`Error::BlobHeaderMismatch`], [`Error::UpdateNormTooLarge`].
		#[pallet::call_index(4)]
		#[pallet::weight(T::WeightInfo::submit_update(blob.len() as u32))]
		pub fn submit_update(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			blob: BoundedVec<u8, T::MaxBlobLen>,
			next_commitment: H256,
		) -> DispatchResult {
			let trainer = ensure_signed(origin)?;
			let mut info = Self::open_round(task, round, &[Phase::Submit])?;
			let participant =
				Participants::<T>::get(task, &trainer).ok_or(Error::<T>::NotTrainer)?;
			let bit = 1u64 << participant.index;
			ensure!(info.lazy & bit == 0, Error::<T>::Excluded);
			ensure!(info.submitted & bit == 0, Error::<T>::AlreadySubmitted);
			Self::check_update(&info, task, round, &blob)?;

			let hash = H256(blob_hash(&blob));
			let size = blob.len() as u32;
			let block = frame_system::Pallet::<T>::block_number();
			let extrinsic_index = frame_system::Pallet::<T>::extrinsic_index().unwrap_or_default();
			Updates::<T>::insert(
				task,
				&trainer,
				UpdateRecord {
					hash,
					size,
					block,
					extrinsic_index,
					next_commitment,
					seed: None,
				},
			);
			info.submitted |= bit;
			if info.awaiting_update() == 0 {
				Self::end_phase_early(task, &mut info, block);
			}
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::UpdateSubmitted {
				task,
				round,
				trainer,
				hash,
				size,
				block,
				extrinsic_index,
			});
			Ok(())
		}

		/// Reveal the PN seed of this round, opening the trainer's commitment.
		///
		/// The update's chips are those of the round key `round_key(trainer, task, round,
		/// previous, seed)` (`previous`: [`Pallet::starting_model_hash`]), which the runtime
		/// stores for verifiers.
		///
		/// - Origin: signed; a trainer who submitted this round.
		/// - Emits [`Event::SeedRevealed`].
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`], [`Error::WrongRound`],
		///   [`Error::NotTrainer`], [`Error::Excluded`], [`Error::NoUpdate`],
		///   [`Error::AlreadyRevealed`], [`Error::SeedMismatch`].
		#[pallet::call_index(5)]
		#[pallet::weight(T::WeightInfo::reveal_seed())]
		pub fn reveal_seed(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			seed: Seed,
		) -> DispatchResult {
			let trainer = ensure_signed(origin)?;
			let mut info = Self::open_round(task, round, &[Phase::Reveal])?;
			let participant =
				Participants::<T>::get(task, &trainer).ok_or(Error::<T>::NotTrainer)?;
			let bit = 1u64 << participant.index;
			ensure!(info.lazy & bit == 0, Error::<T>::Excluded);
			let mut update = Updates::<T>::get(task, &trainer).ok_or(Error::<T>::NoUpdate)?;
			ensure!(update.seed.is_none(), Error::<T>::AlreadyRevealed);
			ensure!(
				H256(seed_commitment(&trainer.encode(), &seed)) == participant.commitment,
				Error::<T>::SeedMismatch
			);
			let previous = Self::starting_model_hash(task, &info, round);
			let key = round_key(&trainer.encode(), task, round, &previous.0, &seed);
			update.seed = Some(key);
			Updates::<T>::insert(task, &trainer, update);
			info.revealed |= bit;
			if info.awaiting_reveal() == 0 {
				Self::end_phase_early(task, &mut info, frame_system::Pallet::<T>::block_number());
			}
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::SeedRevealed {
				task,
				round,
				trainer,
				seed,
				key,
			});
			Ok(())
		}

		/// Prove that `accused` is lazy: its update carries `victim`'s PN watermark, or, with
		/// `victim = None`, the watermarks of all other revealed trainers together (an
		/// averaging copier).
		///
		/// The runtime checks `accused_blob` against the accused's recorded hash, removes the
		/// accused's own watermark when its seed is revealed (so energy piled on its own chips
		/// hides nothing), and computes the sign statistic of the residual against the
		/// victims' chips (no single value, however large, moves it by more than one; see
		/// `blade_fl_primitives::verdict`). When it reaches `LazyZScore` standard deviations
		/// the accused loses `LazySlash` of its stake (`ReporterShare` of that to the
		/// reporter, the rest burnt), its accrued rewards, its vote, and its place in the task.
		/// Otherwise the reporter pays `FalseReportPenalty` to the accused.
		///
		/// - Origin: signed; anyone but the accused.
		/// - Emits [`Event::LazyProven`] or [`Event::FalseAccusation`]; [`Event::AggregateAgreed`]
		///   when the smaller eligible set now has a quorum.
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`] (only in reveal and
		///   aggregate), [`Error::WrongRound`], [`Error::AlreadyDecided`], [`Error::SelfReport`],
		///   [`Error::NotTrainer`], [`Error::Excluded`] (already proven), [`Error::NoUpdate`],
		///   [`Error::VictimSeedUnknown`], [`Error::AllVictimsTooEarly`], [`Error::NoVictims`],
		///   [`Error::BlobHashMismatch`], [`Error::CannotPayPenalty`].
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::report_lazy(
			Pallet::<T>::blob_work(accused_blob),
			if victim.is_some() { 1 } else { T::MaxTrainers::get() },
		))]
		pub fn report_lazy(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			accused: T::AccountId,
			victim: Option<T::AccountId>,
			accused_blob: BoundedVec<u8, T::MaxBlobLen>,
		) -> DispatchResultWithPostInfo {
			let reporter = ensure_signed(origin)?;
			Self::do_report_lazy(task, round, reporter, accused, victim, &accused_blob)
		}

		/// Prove that `accused`'s update carries its own watermark more weakly than the task's
		/// `pn_snr_centi_db` allows (by more than `WatermarkTolerance`, allowing for the
		/// estimate's error at `LazyZScore`), or not at all. An update without its owner's
		/// watermark could be copied by an accomplice without trace, so it is punished like a
		/// lazy copy.
		///
		/// - Origin: signed; anyone but the accused.
		/// - Emits [`Event::WeakWatermarkProven`] or [`Event::FalseWatermarkReport`].
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`] (only in reveal and
		///   aggregate), [`Error::WrongRound`], [`Error::AlreadyDecided`], [`Error::SelfReport`],
		///   [`Error::NotTrainer`], [`Error::Excluded`], [`Error::NoUpdate`],
		///   [`Error::AccusedSeedUnknown`], [`Error::BlobHashMismatch`],
		///   [`Error::CannotPayPenalty`].
		#[pallet::call_index(9)]
		#[pallet::weight(T::WeightInfo::report_weak_watermark(Pallet::<T>::blob_work(accused_blob)))]
		pub fn report_weak_watermark(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			accused: T::AccountId,
			accused_blob: BoundedVec<u8, T::MaxBlobLen>,
		) -> DispatchResult {
			let reporter = ensure_signed(origin)?;
			Self::do_report_weak_watermark(task, round, reporter, accused, &accused_blob)
		}

		/// Vote for this round's aggregate: its Blake2-256 hash and the set of trainers whose
		/// updates it includes (bit `i` = `trainers[i]`).
		///
		/// When the votes for one (hash, set) exceed `Quorum` of the eligible trainers, the
		/// round is agreed and finalises at the next block.
		///
		/// - Origin: signed; a trainer who revealed this round and is not lazy.
		/// - Emits [`Event::AggregateProposed`], and [`Event::AggregateAgreed`] on quorum.
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`], [`Error::WrongRound`],
		///   [`Error::AlreadyDecided`], [`Error::NotTrainer`], [`Error::NotEligible`],
		///   [`Error::AlreadyVoted`], [`Error::BadIncludedSet`].
		#[pallet::call_index(7)]
		#[pallet::weight(T::WeightInfo::propose_aggregate())]
		pub fn propose_aggregate(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			hash: H256,
			included: TrainerMask,
		) -> DispatchResult {
			let trainer = ensure_signed(origin)?;
			let mut info = Self::open_round(task, round, &[Phase::Aggregate])?;
			ensure!(info.decided.is_none(), Error::<T>::AlreadyDecided);
			let participant =
				Participants::<T>::get(task, &trainer).ok_or(Error::<T>::NotTrainer)?;
			let eligible = info.eligible();
			ensure!(
				eligible & (1u64 << participant.index) != 0,
				Error::<T>::NotEligible
			);
			ensure!(
				!Votes::<T>::contains_key(task, &trainer),
				Error::<T>::AlreadyVoted
			);
			ensure!(
				included != 0 && included & !eligible == 0,
				Error::<T>::BadIncludedSet
			);

			let mut tallies = Tallies::<T>::get(task);
			let index = match tallies
				.iter()
				.position(|t| t.hash == hash && t.included == included)
			{
				Some(index) => index,
				None => {
					tallies
						.try_push(Tally { hash, included, votes: 0, first: trainer.clone() })
						// One tally per voter at most, and voters <= MaxTrainers.
						.map_err(|_| Error::<T>::AlreadyVoted)?;
					tallies.len().saturating_sub(1)
				}
			};
			let tally = tallies.get_mut(index).ok_or(Error::<T>::Overflow)?;
			tally.votes = tally.votes.saturating_add(1);
			Tallies::<T>::insert(task, tallies);
			Votes::<T>::insert(task, &trainer, index as u32);
			Self::deposit_event(Event::AggregateProposed {
				task,
				round,
				trainer,
				hash,
				included,
			});

			Self::check_quorum(task, &mut info, frame_system::Pallet::<T>::block_number());
			Tasks::<T>::insert(task, info);
			Ok(())
		}

		/// Publish a finalised round's global model and collect the aggregation fee.
		///
		/// The blob's Blake2-256 must equal the agreed hash and its header must name this task,
		/// round and parameter count. Publishing the last round's model settles the task at
		/// the next block.
		///
		/// Until the model's `exclusive_until` only its aggregator may publish (unless it was
		/// proven lazy since); after that anyone holding the agreed blob (every trainer who
		/// computed the aggregate does) may, and takes the fee. An aggregator that let its window
		/// pass (whoever publishes, itself included) forfeits the task's accrued rewards and
		/// the fee, pays `MissSlash` and is out of the rest of the task. A withheld or late
		/// aggregate therefore stalls nobody and pays the withholder nothing.
		///
		/// - Origin: signed; the round's aggregator, or anyone after its window.
		/// - Emits [`Event::AggregatePublished`], and [`Event::PublicationMissed`] (with
		///   [`Event::Penalised`]) when the aggregator missed its window.
		/// - Errors: [`Error::UnknownTask`], [`Error::NoGlobalModel`], [`Error::NotAggregator`],
		///   [`Error::AlreadyPublished`], [`Error::AggregateHashMismatch`],
		///   [`Error::BlobTooLarge`] and the other `Blob*` errors.
		#[pallet::call_index(8)]
		#[pallet::weight(T::WeightInfo::publish_aggregate(blob.len() as u32))]
		pub fn publish_aggregate(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			blob: BoundedVec<u8, T::MaxBlobLen>,
		) -> DispatchResult {
			let who = ensure_signed(origin)?;
			let mut info = Tasks::<T>::get(task).ok_or(Error::<T>::UnknownTask)?;
			let mut model = GlobalModels::<T>::get(task, round).ok_or(Error::<T>::NoGlobalModel)?;
			let now = frame_system::Pallet::<T>::block_number();
			let aggregator_lazy = Participants::<T>::get(task, &model.aggregator)
				.is_some_and(|p| info.lazy & (1u64 << p.index) != 0);
			ensure!(
				model.aggregator == who || now >= model.exclusive_until || aggregator_lazy,
				Error::<T>::NotAggregator
			);
			ensure!(model.published.is_none(), Error::<T>::AlreadyPublished);
			ensure!(
				H256(blob_hash(&blob)) == model.hash,
				Error::<T>::AggregateHashMismatch
			);
			let parsed = Blob::parse(&blob, Self::max_blob_len()).map_err(Error::<T>::from)?;
			let header = parsed.header;
			ensure!(
				header.task == task
					&& header.round == round
					&& header.param_count == info.spec.param_count,
				Error::<T>::BlobHeaderMismatch
			);
			// Past its window the aggregator is a withholder whoever publishes: publishing
			// late itself earns it no fee (it stays in the escrow) and the same penalty.
			let late = now >= model.exclusive_until;
			let aggregator = model.aggregator.clone();
			let withheld = aggregator != who || (late && !aggregator_lazy);
			let mut paid = BalanceOf::<T>::zero();
			if aggregator != who || !late {
				paid = T::Currency::transfer_on_hold(
					&HoldReason::Escrow.into(),
					&info.publisher,
					&who,
					model.fee,
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				)?;
				info.escrow = info.escrow.saturating_sub(paid);
			}
			let block = now;
			let extrinsic_index = frame_system::Pallet::<T>::extrinsic_index().unwrap_or_default();
			model.published = Some((block, extrinsic_index));
			GlobalModels::<T>::insert(task, round, model);
			if withheld {
				Self::penalise_withholder(task, &mut info, round, &aggregator);
				Self::deposit_event(Event::PublicationMissed {
					task,
					round,
					aggregator: aggregator.clone(),
				});
			}
			// Only the last round's model ends the publishing phase: an earlier round's
			// (published late by a backup) must not cut the last aggregator's window short.
			if info.phase == Phase::Publishing && round.saturating_add(1) >= info.spec.rounds {
				Self::end_phase_early(task, &mut info, block);
			}
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::AggregatePublished {
				task,
				round,
				aggregator,
				by: who,
				fee: paid,
				block,
				extrinsic_index,
			});
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		fn validate_spec(spec: &SpecOf<T>) -> DispatchResult {
			ensure!(
				spec.rounds >= 1 && spec.rounds <= T::MaxRounds::get(),
				Error::<T>::BadRounds
			);
			ensure!(
				spec.trainers_min >= 1
					&& spec.trainers_min <= spec.trainers_wanted
					&& spec.trainers_wanted <= T::MaxTrainers::get(),
				Error::<T>::BadTrainerCounts
			);
			let (min, max) = (T::MinPhaseLength::get(), T::MaxPhaseLength::get());
			let p = &spec.phases;
			for length in [p.bidding, p.submit, p.reveal, p.aggregate] {
				ensure!(length >= min && length <= max, Error::<T>::BadPhaseLength);
			}
			let size = u64::from(spec.param_count)
				.saturating_mul(spec.codec.width() as u64)
				.saturating_add(HEADER_LEN as u64);
			ensure!(
				spec.param_count > 0 && size <= Self::max_blob_len() as u64,
				Error::<T>::BadParamCount
			);
			let rounds: BalanceOf<T> = spec.rounds.into();
			let seats: BalanceOf<T> = spec.trainers_wanted.into();
			let floor = T::MinRewardPerTrainerRound::get()
				.saturating_mul(seats)
				.saturating_mul(rounds)
				.max(rounds);
			ensure!(
				spec.reward >= floor && !spec.reward.is_zero(),
				Error::<T>::BadReward
			);
			ensure!(
				spec.min_samples >= 1 && spec.max_samples >= spec.min_samples,
				Error::<T>::BadSampleRange
			);
			ensure!(spec.max_norm_milli > 0, Error::<T>::BadNormBound);
			ensure!(
				spec.min_stake >= T::MinStake::get(),
				Error::<T>::StakeTooLow
			);
			let rule_ok = match spec.rule {
				AggregationRule::FedAvg | AggregationRule::CoordinateMedian => true,
				AggregationRule::TrimmedMean { trim } => trim.deconstruct() < 50,
				AggregationRule::MultiKrum { byzantine } => {
					2 * u32::from(byzantine) + 2 < spec.trainers_min
				}
			};
			ensure!(rule_ok, Error::<T>::BadRule);
			let floor_ok = spec.privacy.is_none_or(|floor| {
				floor.max_epsilon_milli > 0
					&& floor.delta.deconstruct() > 0
					&& floor.delta < Perbill::from_percent(1)
			});
			ensure!(floor_ok && spec.pn_snr_centi_db > 0, Error::<T>::BadPrivacy);
			Ok(())
		}

		/// The live task `task`, in one of `phases` and before the phase's deadline (calls
		/// are refused from `phase_end` on, even when the busy hook ends the phase later).
		pub(crate) fn open_task(
			task: TaskId,
			phases: &[Phase],
		) -> Result<TaskOf<T>, DispatchError> {
			let info = Tasks::<T>::get(task).ok_or(Error::<T>::UnknownTask)?;
			ensure!(
				phases.contains(&info.phase)
					&& frame_system::Pallet::<T>::block_number() < info.phase_end,
				Error::<T>::WrongPhase
			);
			Ok(info)
		}

		/// [`Self::open_task`] whose current round is `round`.
		pub(crate) fn open_round(
			task: TaskId,
			round: RoundIndex,
			phases: &[Phase],
		) -> Result<TaskOf<T>, DispatchError> {
			let info = Self::open_task(task, phases)?;
			ensure!(info.round == round, Error::<T>::WrongRound);
			Ok(info)
		}

		/// Largest blob accepted now: the governance maximum within the hard bound.
		pub(crate) fn max_blob_len() -> usize {
			T::MaxBlobSize::get().min(T::MaxBlobLen::get()) as usize
		}

		/// A valid update of `task` in `round`: well-formed, the task's shape and codec, and
		/// within its norm bound (so every decoded value is bounded too).
		fn check_update(
			info: &TaskOf<T>,
			task: TaskId,
			round: RoundIndex,
			blob: &[u8],
		) -> DispatchResult {
			let parsed = Blob::parse(blob, Self::max_blob_len()).map_err(Error::<T>::from)?;
			let header = parsed.header;
			ensure!(
				header.task == task
					&& header.round == round
					&& header.param_count == info.spec.param_count
					&& header.codec == info.spec.codec,
				Error::<T>::BlobHeaderMismatch
			);
			ensure!(
				energy(parsed.fixed_values()) <= energy_bound(info.spec.max_norm_milli),
				Error::<T>::UpdateNormTooLarge
			);
			Ok(())
		}

		/// Stake a bid declaring `samples` must hold: `min_stake * (1 + samples /
		/// max_samples)`, so a claim at the cap puts twice the minimum at risk.
		pub fn bid_stake(spec: &SpecOf<T>, samples: u64) -> BalanceOf<T> {
			let extra = Perbill::from_rational(samples, spec.max_samples.max(1));
			spec.min_stake
				.saturating_add(extra.mul_floor(spec.min_stake))
		}

		/// Listing fee of a task: `ListingFeePerBlock` per block of its longest possible life
		/// (bidding, every round's three phases, the publishing phase): a market slot costs
		/// in proportion to how long it can be held.
		pub fn listing_fee(spec: &SpecOf<T>) -> BalanceOf<T> {
			let p = &spec.phases;
			let round = p
				.submit
				.saturating_add(p.reveal)
				.saturating_add(p.aggregate);
			let life = p
				.bidding
				.saturating_add(round.saturating_mul(spec.rounds.into()))
				.saturating_add(p.aggregate.saturating_mul(2u32.into()));
			let blocks: u32 = life.unique_saturated_into();
			T::ListingFeePerBlock::get().saturating_mul(blocks.into())
		}

		/// Score of a bid in parts per billion of the best possible score: the weighted sum
		/// of reputation, sqrt(samples / max samples) (sub-linear, like the reward weight),
		/// capability / max capability and (1 - price / max price) over the task's bids.
		pub fn bid_score(
			reputation: Perbill,
			bid: &Bid<BalanceOf<T>>,
			max_samples: u64,
			max_capability: u32,
			max_price: BalanceOf<T>,
		) -> u64 {
			let part = |weight: Perbill, value: Perbill| -> u64 {
				u64::from(weight.deconstruct()).saturating_mul(u64::from(value.deconstruct()))
			};
			let root = |v: u64| blade_fl_primitives::correlation::isqrt(u128::from(v)) as u64;
			let samples = Perbill::from_rational(root(bid.samples), root(max_samples).max(1));
			let capability = Perbill::from_rational(bid.capability, max_capability.max(1));
			let price = if max_price.is_zero() {
				Perbill::one()
			} else {
				Perbill::one().saturating_sub(Perbill::from_rational(bid.price, max_price))
			};
			part(T::ScoreReputation::get(), reputation)
				.saturating_add(part(T::ScoreSamples::get(), samples))
				.saturating_add(part(T::ScoreCapability::get(), capability))
				.saturating_add(part(T::ScorePrice::get(), price))
				/ 1_000_000_000
		}

		/// Change the phase and its deadline, and tell the hook.
		pub(crate) fn enter_phase(
			task: TaskId,
			info: &mut TaskOf<T>,
			phase: Phase,
			now: BlockNumberFor<T>,
			length: BlockNumberFor<T>,
		) {
			info.phase = phase;
			info.phase_end = now.saturating_add(length);
			Self::set_deadline(task, info.phase_end);
			Self::deposit_event(Event::PhaseStarted {
				task,
				round: info.round,
				phase,
				ends: info.phase_end,
			});
		}

		/// Everybody acted: end the phase at the next block.
		pub(crate) fn end_phase_early(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
			let next = now.saturating_add(1u32.into());
			if next < info.phase_end {
				info.phase_end = next;
				Self::set_deadline(task, next);
			}
		}

		/// The agreed hash of the model round `round` starts from: the previous round's
		/// aggregate, or for round 0 the task's validation hash. Part of every round key, so
		/// that nobody knows its chips before the model they are added to is agreed.
		pub fn starting_model_hash(task: TaskId, info: &TaskOf<T>, round: RoundIndex) -> H256 {
			match round.checked_sub(1) {
				None => info.spec.validation_hash,
				Some(before) => GlobalModels::<T>::get(task, before)
					.map(|m| m.hash)
					.unwrap_or_else(|| {
						frame_support::defensive!("a round started without its previous aggregate");
						H256::zero()
					}),
			}
		}

		fn set_deadline(task: TaskId, end: BlockNumberFor<T>) {
			ActiveTasks::<T>::mutate(|active| {
				if let Some(entry) = active.iter_mut().find(|a| a.task == task) {
					entry.phase_end = end;
				}
			});
		}

		/// A live task as the runtime API shows it.
		pub fn task_view(
			task: TaskId,
		) -> Option<TaskView<T::AccountId, BalanceOf<T>, BlockNumberFor<T>>> {
			let info = Tasks::<T>::get(task)?;
			let decided = info.decided.and_then(|index| {
				Tallies::<T>::get(task)
					.get(index as usize)
					.map(|t| (t.hash, t.included))
			});
			Some(TaskView {
				publisher: info.publisher,
				spec: info.spec,
				phase: info.phase,
				phase_end: info.phase_end,
				round: info.round,
				attempt: info.attempt,
				escrow: info.escrow,
				bids: info.bids,
				trainers: info.trainers.into_inner(),
				submitted: info.submitted,
				revealed: info.revealed,
				lazy: info.lazy,
				decided,
			})
		}

		/// Reputation as the task pallet sees it.
		pub fn reputation(who: &T::AccountId) -> Perbill {
			T::Reputation::score(who)
		}

		/// Invariants: holds equal recorded escrow and stakes; phases, masks, counts and
		/// tallies are consistent; nothing lingers for settled tasks.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			use alloc::{collections::btree_map::BTreeMap, vec::Vec};
			use frame_support::traits::fungible::InspectHold;
			let mut escrow: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			let mut stake: BTreeMap<T::AccountId, BalanceOf<T>> = BTreeMap::new();
			let mut publishers: BTreeMap<T::AccountId, u32> = BTreeMap::new();
			let active = ActiveTasks::<T>::get();
			ensure!(
				active.len() == Tasks::<T>::iter_keys().count(),
				"ActiveTasks and Tasks disagree"
			);
			for (id, info) in Tasks::<T>::iter() {
				ensure!(
					active
						.iter()
						.any(|a| a.task == id && a.phase_end == info.phase_end),
					"task missing from ActiveTasks or with another deadline"
				);
				ensure!(info.escrow <= info.spec.reward, "escrow above the reward");
				ensure!(
					info.round < info.spec.rounds,
					"round beyond the task's rounds"
				);
				ensure!(info.attempt <= 1, "a round tried more than twice");
				let e = escrow.entry(info.publisher.clone()).or_default();
				*e = e.saturating_add(info.escrow);
				*publishers.entry(info.publisher.clone()).or_default() += 1;
				let bids: Vec<_> = Bids::<T>::iter_prefix(id).collect();
				ensure!(
					bids.len() as u32 == info.bids,
					"bid count differs from bids"
				);
				ensure!(info.bids <= T::MaxBids::get(), "too many bids");
				for (who, bid) in &bids {
					ensure!(
						bid.samples >= info.spec.min_samples
							&& bid.samples <= info.spec.max_samples,
						"bid outside the task's sample range"
					);
					ensure!(
						bid.stake == Self::bid_stake(&info.spec, bid.samples),
						"bid stake differs from its claim's"
					);
					let s = stake.entry(who.clone()).or_default();
					*s = s.saturating_add(bid.stake);
				}
				let participants: Vec<_> = Participants::<T>::iter_prefix(id).collect();
				ensure!(
					participants.len() == info.trainers.len(),
					"participants differ from trainers"
				);
				match info.phase {
					Phase::Bidding => ensure!(
						info.trainers.is_empty() && info.submitted == 0 && info.revealed == 0,
						"trainers before selection"
					),
					Phase::Failing(_) => {}
					_ => {
						ensure!(info.bids == 0, "bids after selection");
						ensure!(
							info.trainers.len() as u32 <= info.spec.trainers_wanted
								&& info.trainers.len() as u32 >= info.spec.trainers_min,
							"selected trainers outside [min, wanted]"
						);
					}
				}
				ensure!(
					info.revealed & !info.submitted == 0,
					"revealed without submitting"
				);
				ensure!(
					(info.submitted | info.lazy) & !info.all() == 0,
					"mask bits beyond the trainers"
				);
				ensure!(
					info.decided.is_none() || info.phase == Phase::Aggregate,
					"decided outside aggregation"
				);
				for (who, p) in &participants {
					ensure!(
						info.trainers.get(p.index as usize) == Some(who),
						"participant index mismatch"
					);
					let s = stake.entry(who.clone()).or_default();
					*s = s.saturating_add(p.stake);
				}
				let earned = participants
					.iter()
					.fold(BalanceOf::<T>::zero(), |acc, (_, p)| {
						acc.saturating_add(p.earned)
					});
				ensure!(earned <= info.escrow, "accrued rewards exceed the escrow");
				ensure!(
					Tallies::<T>::get(id).iter().map(|t| t.votes).sum::<u32>()
						== Votes::<T>::iter_prefix(id).count() as u32,
					"tallies and votes disagree"
				);
				ensure!(
					GlobalModels::<T>::iter_prefix(id).count() as u32 <= info.spec.rounds,
					"more global models than rounds"
				);
			}
			// Nothing may linger for settled tasks.
			for (id, _) in Bids::<T>::iter_keys() {
				ensure!(Tasks::<T>::contains_key(id), "bid of a settled task");
			}
			for (id, _) in Participants::<T>::iter_keys() {
				ensure!(
					Tasks::<T>::contains_key(id),
					"participant of a settled task"
				);
			}
			for (id, _) in Updates::<T>::iter_keys() {
				ensure!(Tasks::<T>::contains_key(id), "update of a settled task");
			}
			ensure!(
				PublisherTasks::<T>::iter().count() == publishers.len(),
				"publisher counts for publishers without tasks"
			);
			for (who, live) in publishers {
				ensure!(
					PublisherTasks::<T>::get(&who) == live
						&& live <= T::MaxTasksPerPublisher::get(),
					"publisher task count differs"
				);
			}
			for (who, amount) in escrow {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::Escrow.into(), &who) == amount,
					"escrow hold differs from the tasks' escrow"
				);
			}
			for (who, amount) in stake {
				ensure!(
					T::Currency::balance_on_hold(&HoldReason::Stake.into(), &who) == amount,
					"stake hold differs from recorded stakes"
				);
			}
			Ok(())
		}
	}
}
