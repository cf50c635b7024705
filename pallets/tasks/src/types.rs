//! Types of `pallet_fl_tasks`: task specification, phases, bids, participants, updates,
//! aggregate tallies and global models.

use blade_fl_primitives::{blob::Codec, pn::Seed};
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use frame_support::{traits::Get, BoundedVec, CloneNoBound, DebugNoBound, PartialEqNoBound};
use scale_info::TypeInfo;
use sp_core::H256;
use sp_runtime::{Perbill, Percent};

/// Identifier of a task.
pub type TaskId = u64;
/// Index of a training round within a task.
pub type RoundIndex = u32;
/// Set of trainers as a bitmask over their position in [`Task::trainers`] (bit `i` =
/// trainer `i`); at most 64 trainers per task.
pub type TrainerMask = u64;

/// How trainers combine the round's updates off chain (the chain only records the rule;
/// every trainer applies it bit-exactly and votes on the result's hash).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum AggregationRule {
	/// Mean weighted by declared samples times reputation.
	FedAvg,
	/// Coordinate-wise median.
	CoordinateMedian,
	/// Coordinate-wise mean after dropping `trim` of the values at each end.
	TrimmedMean {
		/// Share dropped at each end; below 50 %.
		trim: Percent,
	},
	/// Multi-Krum tolerating `byzantine` bad updates.
	MultiKrum {
		/// Assumed number of Byzantine trainers `f`; needs `2f + 2 < trainers_min`.
		byzantine: u8,
	},
}

/// Length in blocks of each phase of a task.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct PhaseLengths<BlockNumber> {
	/// Bidding, from publication to selection.
	pub bidding: BlockNumber,
	/// Update submission of each round.
	pub submit: BlockNumber,
	/// Seed reveal of each round.
	pub reveal: BlockNumber,
	/// Aggregate voting of each round (also the grace period to publish the last aggregate).
	pub aggregate: BlockNumber,
}

/// The differential-privacy guarantee every trainer of a task must give its own data.
///
/// The chain cannot see a trainer's noise; the trainers' software enforces the floor: it
/// calibrates its noise so that all rounds of the task together spend at most this budget
/// and refuses to bid where it cannot (see `docs/privacy.md`). The unit is the trainer's
/// mechanism's: one training record for DP-SGD (the default), the trainer's whole data set
/// for output perturbation; the same epsilon is a much stronger promise in the latter.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct PrivacyFloor {
	/// Largest total epsilon a trainer may spend over the whole task, in thousandths.
	pub max_epsilon_milli: u32,
	/// The delta of that guarantee (non-zero, below 1 %).
	pub delta: Perbill,
}

/// What a publisher asks for.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct TaskSpec<Balance, BlockNumber> {
	/// Model architecture identifier (known to the trainers' software).
	pub model_id: u32,
	/// Number of model parameters every update and aggregate must carry.
	pub param_count: u32,
	/// Data set identifier.
	pub dataset_id: u32,
	/// Blake2-256 hash of the public validation set.
	pub validation_hash: H256,
	/// Number of training rounds `K`.
	pub rounds: RoundIndex,
	/// Trainers wanted `N`.
	pub trainers_wanted: u32,
	/// Fewest trainers with which the task (and each round) goes on.
	pub trainers_min: u32,
	/// Fewest samples a bidder must declare.
	pub min_samples: u64,
	/// Most samples a bidder may declare (and be paid for): the cap on a claim the chain
	/// cannot check. `max_samples == min_samples` pays every included trainer alike.
	pub max_samples: u64,
	/// Codec of the update blobs.
	pub codec: Codec,
	/// Aggregation rule.
	pub rule: AggregationRule,
	/// The privacy every trainer must give its data over the whole task; `None`: local
	/// differential privacy is up to each trainer.
	pub privacy: Option<PrivacyFloor>,
	/// Power ratio of update to PN watermark, in hundredths of a decibel; every update must
	/// carry its owner's watermark at least this strong (see `report_weak_watermark`).
	pub pn_snr_centi_db: u32,
	/// Largest L2 norm of an update (watermark included), in thousandths: the runtime
	/// refuses larger updates, so no update can drown others' watermarks in energy or
	/// carry values that overflow a trainer's arithmetic.
	pub max_norm_milli: u32,
	/// Phase lengths in blocks.
	pub phases: PhaseLengths<BlockNumber>,
	/// Total reward escrowed by the publisher.
	pub reward: Balance,
	/// Stake each bidder must put on hold.
	pub min_stake: Balance,
}

/// Why a task ended without completing its rounds.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum Failure {
	/// Cancelled by its publisher during bidding.
	Cancelled,
	/// Fewer than `trainers_min` bids when bidding closed.
	TooFewBids,
	/// Fewer than `trainers_min` trainers submitted (or revealed) in a round.
	TooFewUpdates,
	/// No aggregate reached the quorum, twice in a row for one round.
	NoQuorum,
}

/// Where a task is in its life cycle.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum Phase {
	/// Accepting bids.
	Bidding,
	/// Winners submit this round's update.
	Submit,
	/// Submitters reveal this round's PN seed.
	Reveal,
	/// Trainers vote on the aggregate's hash.
	Aggregate,
	/// All rounds done; the last aggregator may still publish the aggregate.
	Publishing,
	/// Ended early; settles at the phase end.
	Failing(Failure),
}

/// A published task.
#[derive(CloneNoBound, PartialEqNoBound, DebugNoBound, Encode, Decode, MaxEncodedLen, TypeInfo)]
#[scale_info(skip_type_params(MaxTrainers))]
#[codec(mel_bound(AccountId: MaxEncodedLen, Balance: MaxEncodedLen, BlockNumber: MaxEncodedLen))]
pub struct TaskInfo<AccountId, Balance, BlockNumber, MaxTrainers: Get<u32>>
where
	AccountId: Clone + PartialEq + core::fmt::Debug,
	Balance: Clone + PartialEq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + core::fmt::Debug,
{
	/// Who published it and holds the escrow.
	pub publisher: AccountId,
	/// The specification.
	pub spec: TaskSpec<Balance, BlockNumber>,
	/// Current phase.
	pub phase: Phase,
	/// Block at whose start the phase ends.
	pub phase_end: BlockNumber,
	/// Current round.
	pub round: RoundIndex,
	/// 0 on the first try of a round, 1 on its retry.
	pub attempt: u8,
	/// Escrow still on hold on the publisher.
	pub escrow: Balance,
	/// Bids received and not withdrawn (bidding phase only).
	pub bids: u32,
	/// Bids ever placed on this task: the arrival order of the next bid.
	pub bid_seq: u32,
	/// Selected trainers, best score first.
	pub trainers: BoundedVec<AccountId, MaxTrainers>,
	/// Trainers who submitted this round.
	pub submitted: TrainerMask,
	/// Trainers who revealed this round's seed.
	pub revealed: TrainerMask,
	/// Trainers proven lazy (excluded for the rest of the task).
	pub lazy: TrainerMask,
	/// Index in [`crate::Tallies`] of the aggregate that reached the quorum this round.
	pub decided: Option<u32>,
}

impl<AccountId, Balance, BlockNumber, MaxTrainers: Get<u32>>
	TaskInfo<AccountId, Balance, BlockNumber, MaxTrainers>
where
	AccountId: Clone + PartialEq + core::fmt::Debug,
	Balance: Clone + PartialEq + core::fmt::Debug,
	BlockNumber: Clone + PartialEq + core::fmt::Debug,
{
	/// Mask of all selected trainers.
	pub fn all(&self) -> TrainerMask {
		mask_of_len(self.trainers.len())
	}

	/// Trainers expected to act this round: selected and not proven lazy.
	pub fn active(&self) -> TrainerMask {
		self.all() & !self.lazy
	}

	/// Trainers whose update counts this round: revealed and not lazy.
	pub fn eligible(&self) -> TrainerMask {
		self.revealed & !self.lazy
	}

	/// Active trainers who have not submitted this round.
	pub fn awaiting_update(&self) -> TrainerMask {
		self.active() & !self.submitted
	}

	/// Submitters (not lazy) who have not revealed this round's seed.
	pub fn awaiting_reveal(&self) -> TrainerMask {
		self.submitted & !self.lazy & !self.revealed
	}
}

/// Mask with the low `len` bits set.
pub fn mask_of_len(len: usize) -> TrainerMask {
	if len >= 64 {
		u64::MAX
	} else {
		(1u64 << len) - 1
	}
}

/// A bid waiting for selection.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Bid<Balance> {
	/// Samples the bidder declares it trains on.
	pub samples: u64,
	/// Asking price: lower scores better.
	pub price: Balance,
	/// Declared compute capability (e.g. updates per hour); higher scores better.
	pub capability: u32,
	/// Commitment to the PN seed of the first round.
	pub commitment: H256,
	/// Stake held for this bid: grows with the declared samples (see
	/// `Pallet::bid_stake`).
	pub stake: Balance,
	/// Arrival order, the tie-breaker of equal scores.
	pub seq: u32,
}

/// A selected trainer of a task.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Participant<Balance> {
	/// Position in [`Task::trainers`] (its bit in the masks).
	pub index: u32,
	/// Stake still on hold.
	pub stake: Balance,
	/// Declared samples.
	pub samples: u64,
	/// Commitment to the PN seed of the current round.
	pub commitment: H256,
	/// Rewards accrued, paid at settlement.
	pub earned: Balance,
}

/// Where an update blob lives and what the chain knows of it.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct UpdateRecord<BlockNumber> {
	/// Blake2-256 of the blob.
	pub hash: H256,
	/// Blob length in bytes.
	pub size: u32,
	/// Block whose body holds the blob.
	pub block: BlockNumber,
	/// Index of the `submit_update` extrinsic in that block.
	pub extrinsic_index: u32,
	/// Commitment to the seed of the trainer's next round.
	pub next_commitment: H256,
	/// This round's chip key, once the seed is revealed:
	/// `blade_fl_primitives::pn::round_key(trainer, task, round, previous, seed)`; the watermark's
	/// chips are `Chips::new(key)`.
	pub seed: Option<Seed>,
}

/// A live task and the block at which its current phase ends: an entry of
/// [`crate::ActiveTasks`] and of `FlTasksApi::active_tasks`. Encodes exactly as the
/// `(TaskId, BlockNumber)` tuple it replaced (no storage migration).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub struct ActiveTask<BlockNumber> {
	/// The task.
	pub task: TaskId,
	/// Block at which its current phase ends.
	pub phase_end: BlockNumber,
}

/// A bid with its bidder (`FlTasksApi::bids`).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct BidEntry<AccountId, Balance> {
	/// The bidder.
	pub bidder: AccountId,
	/// The bid.
	pub bid: Bid<Balance>,
}

/// A selected trainer with its record (`FlTasksApi::participants`).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct ParticipantEntry<AccountId, Balance> {
	/// The trainer.
	pub trainer: AccountId,
	/// Stake, samples, commitment, rewards.
	pub participant: Participant<Balance>,
}

/// A trainer's update of the current round (`FlTasksApi::updates`).
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct UpdateEntry<AccountId, BlockNumber> {
	/// The trainer.
	pub trainer: AccountId,
	/// Hash, size, location, next commitment, revealed seed.
	pub update: UpdateRecord<BlockNumber>,
}

/// Votes for one (aggregate hash, included set) pair.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Tally<AccountId> {
	/// Blake2-256 of the aggregate blob.
	pub hash: H256,
	/// Trainers whose updates the aggregate includes.
	pub included: TrainerMask,
	/// Votes received.
	pub votes: u32,
	/// First proposer: earns the aggregation fee if this tally wins.
	pub first: AccountId,
}

/// A finalised round's global model.
#[derive(
	Clone, PartialEq, Eq, Debug, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct GlobalModel<AccountId, Balance, BlockNumber> {
	/// Blake2-256 of the aggregate blob.
	pub hash: H256,
	/// Trainers included.
	pub included: TrainerMask,
	/// Who should publish the blob (the first proposer of the agreed aggregate who was not
	/// proven lazy), and alone may until `exclusive_until`.
	pub aggregator: AccountId,
	/// Aggregation fee, paid on publication to whoever publishes.
	pub fee: Balance,
	/// From this block on anyone holding the agreed blob may publish it and take the fee
	/// (the aggregator then records a miss).
	pub exclusive_until: BlockNumber,
	/// Block and extrinsic index of the publication.
	pub published: Option<(BlockNumber, u32)>,
}

/// A penalty reason (for events).
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum Offence {
	/// No update by the submission deadline.
	NoUpdate,
	/// Update submitted but the seed not revealed by the reveal deadline.
	NoReveal,
	/// Chosen as aggregator but the agreed aggregate not published within its exclusive
	/// window (someone else published it, or nobody did before settlement); also forfeits
	/// the rewards accrued in the task.
	NoPublication,
}

/// A task as the runtime API returns it.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, TypeInfo)]
pub struct TaskView<AccountId, Balance, BlockNumber> {
	/// Who published it.
	pub publisher: AccountId,
	/// The specification.
	pub spec: TaskSpec<Balance, BlockNumber>,
	/// Current phase.
	pub phase: Phase,
	/// Block at whose start the phase ends.
	pub phase_end: BlockNumber,
	/// Current round.
	pub round: RoundIndex,
	/// 0 on a round's first try, 1 on its retry.
	pub attempt: u8,
	/// Escrow still held.
	pub escrow: Balance,
	/// Bids received (bidding phase).
	pub bids: u32,
	/// Selected trainers; bit `i` of the masks is `trainers[i]`.
	pub trainers: alloc::vec::Vec<AccountId>,
	/// Trainers who submitted this round.
	pub submitted: TrainerMask,
	/// Trainers who revealed this round.
	pub revealed: TrainerMask,
	/// Trainers proven lazy.
	pub lazy: TrainerMask,
	/// Agreed aggregate of this round, if any: (hash, included set).
	pub decided: Option<(H256, TrainerMask)>,
}

impl<AccountId, Balance, BlockNumber> TaskView<AccountId, Balance, BlockNumber> {
	/// Trainers whose update counts this round: revealed and not lazy.
	pub fn eligible(&self) -> TrainerMask {
		self.revealed & !self.lazy
	}
}
