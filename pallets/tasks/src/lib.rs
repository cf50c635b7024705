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

#[cfg(feature = "runtime-benchmarks")]
#[allow(clippy::unwrap_used, clippy::expect_used)] // set-up failures abort the benchmark
mod benchmarking;
mod lifecycle;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod mock;
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
		correlation::{correlate, proves_copy},
		pn::{seed_commitment, Seed},
		traits::{Behaviour, Reputation},
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
		traits::{Saturating, Zero},
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
		/// Shortest phase a task may ask for, in blocks.
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
		StorageValue<_, BoundedVec<(TaskId, BlockNumberFor<T>), T::MaxActiveTasks>, ValueQuery>;

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

	/// Every seed commitment a task has accepted: a commitment is never accepted twice.
	#[pallet::storage]
	pub type SpentCommitments<T: Config> =
		StorageDoubleMap<_, Twox64Concat, TaskId, Identity, H256, ()>;

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
		},
		/// A trainer was proven lazy and slashed.
		LazyProven {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The lazy trainer.
			accused: T::AccountId,
			/// The trainer whose watermark the update carries.
			victim: T::AccountId,
			/// Who proved it.
			reporter: T::AccountId,
			/// Measured correlation.
			correlation: Perbill,
			/// Stake slashed.
			slashed: BalanceOf<T>,
			/// Part of it paid to the reporter.
			reporter_reward: BalanceOf<T>,
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
			/// The claimed victim.
			victim: T::AccountId,
			/// Measured correlation.
			correlation: Perbill,
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
		/// The aggregator published the global model and was paid its fee.
		AggregatePublished {
			/// The task.
			task: TaskId,
			/// The round.
			round: RoundIndex,
			/// The aggregator.
			aggregator: T::AccountId,
			/// Fee paid.
			fee: BalanceOf<T>,
			/// Block holding the blob.
			block: BlockNumberFor<T>,
			/// Extrinsic index within the block.
			extrinsic_index: u32,
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
		/// The reward must be positive and at least one unit per round.
		BadReward,
		/// The task's stake is below the chain's `MinStake`.
		StakeTooLow,
		/// The aggregation rule's parameters are impossible (trim >= 50 %, or Multi-Krum with
		/// `2f + 2 >= trainers_min`).
		BadRule,
		/// Epsilon and PN SNR must be positive.
		BadPrivacy,
		/// `MaxActiveTasks` tasks are live; wait for one to settle.
		TooManyTasks,
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
		/// The account has no bid on this task.
		NoBid,
		/// The account is not a selected trainer of this task.
		NotTrainer,
		/// The trainer was proven lazy and is out of the task.
		Excluded,
		/// The trainer already submitted this round.
		AlreadySubmitted,
		/// This seed commitment was already used in this task; commit to a fresh seed.
		CommitmentReused,
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
		/// Only the aggregator of the round publishes its global model.
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
		/// - Holds `spec.reward` on the publisher (`HoldReason::Escrow`).
		/// - Emits [`Event::TaskPublished`].
		/// - Errors: [`Error::BadRounds`], [`Error::BadTrainerCounts`],
		///   [`Error::BadPhaseLength`], [`Error::BadParamCount`], [`Error::BadReward`],
		///   [`Error::StakeTooLow`], [`Error::BadRule`], [`Error::BadPrivacy`],
		///   [`Error::TooManyTasks`], or a token error if the reward cannot be held.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::publish_task())]
		pub fn publish_task(origin: OriginFor<T>, spec: SpecOf<T>) -> DispatchResult {
			let publisher = ensure_signed(origin)?;
			Self::validate_spec(&spec)?;
			let now = frame_system::Pallet::<T>::block_number();
			let bidding_end = now.saturating_add(spec.phases.bidding);
			let task = NextTaskId::<T>::get();
			let next = task.checked_add(1).ok_or(Error::<T>::Overflow)?;
			ActiveTasks::<T>::try_mutate(|active| active.try_push((task, bidding_end)))
				.map_err(|_| Error::<T>::TooManyTasks)?;
			T::Currency::hold(&HoldReason::Escrow.into(), &publisher, spec.reward)?;
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
					commitments: 0,
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

		/// Bid on a task: put the task's stake on hold and commit to the PN seed of round 0.
		///
		/// `commitment` is `seed_commitment(bidder.encode(), seed)` from
		/// `blade_fl_primitives::pn`; keep the seed secret until the first reveal phase.
		///
		/// - Origin: signed; the bidder.
		/// - Emits [`Event::BidPlaced`].
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`],
		///   [`Error::PublisherCannotBid`], [`Error::AlreadyBid`], [`Error::TooManyBids`],
		///   [`Error::TooFewSamples`], [`Error::CommitmentReused`], or a token error if the
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
			Self::spend_commitment(task, &mut info, commitment)?;
			let stake = info.spec.min_stake;
			T::Currency::hold(&HoldReason::Stake.into(), &bidder, stake)?;
			let seq = info.commitments;
			info.bids = info.bids.saturating_add(1);
			Bids::<T>::insert(
				task,
				&bidder,
				Bid {
					samples,
					price,
					capability,
					commitment,
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
			ensure!(Bids::<T>::contains_key(task, &bidder), Error::<T>::NoBid);
			T::Currency::release(
				&HoldReason::Stake.into(),
				&bidder,
				info.spec.min_stake,
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
		/// the task's parameter count and codec, and every value must be finite.
		/// `next_commitment` commits to the PN seed of the trainer's next round.
		///
		/// - Origin: signed; a selected trainer.
		/// - Emits [`Event::UpdateSubmitted`] (with block and extrinsic index).
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`], [`Error::WrongRound`],
		///   [`Error::NotTrainer`], [`Error::Excluded`], [`Error::AlreadySubmitted`],
		///   [`Error::CommitmentReused`], [`Error::BlobTooLarge`] and the other `Blob*`
		///   errors, [`Error::BlobHeaderMismatch`].
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
			Self::check_blob(&info, task, round, &blob)?;
			Self::spend_commitment(task, &mut info, next_commitment)?;

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
			update.seed = Some(seed);
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
			});
			Ok(())
		}

		/// Prove that `accused` is lazy: its update carries `victim`'s PN watermark.
		///
		/// The runtime checks `accused_blob` against the accused's recorded hash, regenerates
		/// the victim's chips from its revealed seed and computes the normalised correlation
		/// in integer arithmetic. When `rho * sqrt(n)` reaches `LazyZScore` (a z-test whose
		/// false-proof rate does not depend on the model size) the accused loses `LazySlash`
		/// of its stake (`ReporterShare` of that to the reporter, the rest burnt), its accrued
		/// rewards, its vote, and its place in the task. Below the threshold the reporter pays
		/// `FalseReportPenalty` to the accused.
		///
		/// - Origin: signed; anyone but the accused.
		/// - Emits [`Event::LazyProven`] or [`Event::FalseAccusation`].
		/// - Errors: [`Error::UnknownTask`], [`Error::WrongPhase`] (only in reveal and
		///   aggregate), [`Error::WrongRound`], [`Error::AlreadyDecided`], [`Error::SelfReport`],
		///   [`Error::NotTrainer`], [`Error::Excluded`] (already proven), [`Error::NoUpdate`],
		///   [`Error::VictimSeedUnknown`], [`Error::BlobHashMismatch`],
		///   [`Error::CannotPayPenalty`].
		#[pallet::call_index(6)]
		#[pallet::weight(T::WeightInfo::report_lazy(accused_blob.len() as u32))]
		pub fn report_lazy(
			origin: OriginFor<T>,
			task: TaskId,
			round: RoundIndex,
			accused: T::AccountId,
			victim: T::AccountId,
			accused_blob: BoundedVec<u8, T::MaxBlobLen>,
		) -> DispatchResult {
			let reporter = ensure_signed(origin)?;
			let mut info = Self::open_round(task, round, &[Phase::Reveal, Phase::Aggregate])?;
			ensure!(info.decided.is_none(), Error::<T>::AlreadyDecided);
			ensure!(
				accused != victim && reporter != accused,
				Error::<T>::SelfReport
			);
			let mut participant =
				Participants::<T>::get(task, &accused).ok_or(Error::<T>::NotTrainer)?;
			let bit = 1u64 << participant.index;
			ensure!(info.lazy & bit == 0, Error::<T>::Excluded);
			ensure!(
				Participants::<T>::contains_key(task, &victim),
				Error::<T>::NotTrainer
			);
			let update = Updates::<T>::get(task, &accused).ok_or(Error::<T>::NoUpdate)?;
			let seed = Updates::<T>::get(task, &victim)
				.and_then(|u| u.seed)
				.ok_or(Error::<T>::VictimSeedUnknown)?;
			ensure!(
				H256(blob_hash(&accused_blob)) == update.hash,
				Error::<T>::BlobHashMismatch
			);
			// Validated at submission; parse again to read the values.
			let blob = Blob::parse(&accused_blob, T::MaxBlobLen::get() as usize)
				.map_err(Error::<T>::from)?;
			let raw = correlate(blob.fixed_values(), &seed);
			let correlation = Perbill::from_parts(raw.0);
			let n = u64::from(blob.header.param_count);
			if !proves_copy(raw, n, T::LazyZScore::get()) {
				let penalty = T::FalseReportPenalty::get();
				T::Currency::transfer(&reporter, &accused, penalty, Preservation::Preserve)
					.map_err(|_| Error::<T>::CannotPayPenalty)?;
				Self::deposit_event(Event::FalseAccusation {
					task,
					round,
					reporter,
					accused,
					victim,
					correlation,
					penalty,
				});
				return Ok(());
			}

			let slash = T::LazySlash::get().mul_floor(participant.stake);
			let reporter_reward = T::ReporterShare::get().mul_floor(slash);
			let stake_reason = HoldReason::Stake.into();
			let to_reporter = T::Currency::transfer_on_hold(
				&stake_reason,
				&accused,
				&reporter,
				reporter_reward,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Force,
			)?;
			let burnt = T::Currency::burn_held(
				&stake_reason,
				&accused,
				slash.saturating_sub(to_reporter),
				Precision::Exact,
				Fortitude::Force,
			)?;
			let rest = participant
				.stake
				.saturating_sub(to_reporter)
				.saturating_sub(burnt);
			T::Currency::release(&stake_reason, &accused, rest, Precision::Exact)?;
			participant.stake = Zero::zero();
			participant.earned = Zero::zero();
			Participants::<T>::insert(task, &accused, participant);
			info.lazy |= bit;
			if let Some(vote) = Votes::<T>::take(task, &accused) {
				Tallies::<T>::mutate(task, |tallies| {
					if let Some(tally) = tallies.get_mut(vote as usize) {
						tally.votes = tally.votes.saturating_sub(1);
					}
				});
			}
			T::Reputation::record(&accused, Behaviour::Lazy);
			// The lazy trainer may have been the last one whose reveal was awaited.
			if info.phase == Phase::Reveal && info.awaiting_reveal() == 0 {
				Self::end_phase_early(task, &mut info, frame_system::Pallet::<T>::block_number());
			}
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::LazyProven {
				task,
				round,
				accused,
				victim,
				reporter,
				correlation,
				slashed: to_reporter.saturating_add(burnt),
				reporter_reward: to_reporter,
			});
			Ok(())
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
			let votes = match tallies.get_mut(index) {
				Some(tally) => {
					tally.votes = tally.votes.saturating_add(1);
					tally.votes
				}
				None => return Err(Error::<T>::Overflow.into()),
			};
			Tallies::<T>::insert(task, tallies);
			Votes::<T>::insert(task, &trainer, index as u32);
			Self::deposit_event(Event::AggregateProposed {
				task,
				round,
				trainer,
				hash,
				included,
			});

			let needed = T::Quorum::get().mul_floor(eligible.count_ones());
			if votes > needed {
				info.decided = Some(index as u32);
				Self::end_phase_early(task, &mut info, frame_system::Pallet::<T>::block_number());
				Self::deposit_event(Event::AggregateAgreed {
					task,
					round,
					hash,
					votes,
				});
			}
			Tasks::<T>::insert(task, info);
			Ok(())
		}

		/// Publish a finalised round's global model and collect the aggregation fee.
		///
		/// The blob's Blake2-256 must equal the agreed hash and its header must name this task,
		/// round and parameter count. Publishing the last round's model settles the task at
		/// the next block.
		///
		/// - Origin: signed; the round's aggregator (first proposer of the agreed aggregate).
		/// - Emits [`Event::AggregatePublished`].
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
			ensure!(model.aggregator == who, Error::<T>::NotAggregator);
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
			let paid = T::Currency::transfer_on_hold(
				&HoldReason::Escrow.into(),
				&info.publisher,
				&who,
				model.fee,
				Precision::Exact,
				Restriction::Free,
				Fortitude::Force,
			)?;
			info.escrow = info.escrow.saturating_sub(paid);
			let block = frame_system::Pallet::<T>::block_number();
			let extrinsic_index = frame_system::Pallet::<T>::extrinsic_index().unwrap_or_default();
			model.published = Some((block, extrinsic_index));
			GlobalModels::<T>::insert(task, round, model);
			if info.phase == Phase::Publishing {
				Self::end_phase_early(task, &mut info, block);
			}
			Tasks::<T>::insert(task, info);
			Self::deposit_event(Event::AggregatePublished {
				task,
				round,
				aggregator: who,
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
			ensure!(
				spec.reward >= rounds && !spec.reward.is_zero(),
				Error::<T>::BadReward
			);
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
			ensure!(
				spec.max_epsilon_milli > 0 && spec.pn_snr_centi_db > 0,
				Error::<T>::BadPrivacy
			);
			Ok(())
		}

		/// The live task `task`, in one of `phases` and before the phase's deadline (calls
		/// are refused from `phase_end` on, even when the busy hook ends the phase later).
		fn open_task(task: TaskId, phases: &[Phase]) -> Result<TaskOf<T>, DispatchError> {
			let info = Tasks::<T>::get(task).ok_or(Error::<T>::UnknownTask)?;
			ensure!(
				phases.contains(&info.phase)
					&& frame_system::Pallet::<T>::block_number() < info.phase_end,
				Error::<T>::WrongPhase
			);
			Ok(info)
		}

		/// [`Self::open_task`] whose current round is `round`.
		fn open_round(
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

		fn spend_commitment(
			task: TaskId,
			info: &mut TaskOf<T>,
			commitment: H256,
		) -> DispatchResult {
			ensure!(
				!SpentCommitments::<T>::contains_key(task, commitment),
				Error::<T>::CommitmentReused
			);
			SpentCommitments::<T>::insert(task, commitment, ());
			info.commitments = info.commitments.saturating_add(1);
			Ok(())
		}

		fn check_blob(
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
			Ok(())
		}

		/// Score of a bid in parts per billion of the best possible score: the weighted sum
		/// of reputation, samples / max samples, capability / max capability and
		/// (1 - price / max price) over the task's bids.
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
			let samples = Perbill::from_rational(bid.samples, max_samples.max(1));
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
		fn end_phase_early(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
			let next = now.saturating_add(1u32.into());
			if next < info.phase_end {
				info.phase_end = next;
				Self::set_deadline(task, next);
			}
		}

		fn set_deadline(task: TaskId, end: BlockNumberFor<T>) {
			ActiveTasks::<T>::mutate(|active| {
				if let Some(entry) = active.iter_mut().find(|(id, _)| *id == task) {
					entry.1 = end;
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
			let active = ActiveTasks::<T>::get();
			ensure!(
				active.len() == Tasks::<T>::iter_keys().count(),
				"ActiveTasks and Tasks disagree"
			);
			for (id, info) in Tasks::<T>::iter() {
				ensure!(
					active
						.iter()
						.any(|(a, end)| *a == id && *end == info.phase_end),
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
				let bids: Vec<_> = Bids::<T>::iter_prefix(id).collect();
				ensure!(
					bids.len() as u32 == info.bids,
					"bid count differs from bids"
				);
				ensure!(info.bids <= T::MaxBids::get(), "too many bids");
				for (who, _) in &bids {
					let s = stake.entry(who.clone()).or_default();
					*s = s.saturating_add(info.spec.min_stake);
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
					SpentCommitments::<T>::iter_prefix(id).count() as u32 == info.commitments,
					"commitment count differs"
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
