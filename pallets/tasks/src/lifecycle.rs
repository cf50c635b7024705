//! Phase transitions, run by `on_initialize` when a phase's deadline arrives: selection,
//! deadline penalties, round finalisation with reward accrual, retries, and settlement.
//! Every transition touches at most `MaxBids` bids or `MaxTrainers` trainers.

use crate::{pallet::*, types::*, weights::WeightInfo, LOG_TARGET};
use alloc::vec::Vec;
use blade_fl_primitives::{
	traits::{Behaviour, Reputation},
	verdict::contribution_weight,
};
use frame_support::{
	pallet_prelude::*,
	traits::{
		fungible::MutateHold,
		tokens::{Fortitude, Precision, Restriction},
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_runtime::traits::{CheckedDiv, Saturating, UniqueSaturatedInto, Zero};

/// A bid with its score and arrival order, as ranked at selection.
type Ranked<T> = (
	u64,
	u32,
	<T as frame_system::Config>::AccountId,
	Bid<BalanceOf<T>>,
);

impl<T: Config> Pallet<T> {
	/// Advance up to `MaxTransitionsPerBlock` tasks whose phase ends at or before `now`,
	/// the most overdue first (ties by task id): a publisher who lists many tasks early
	/// cannot push other tasks' deadlines back.
	pub(crate) fn process_deadlines(now: BlockNumberFor<T>) -> Weight {
		let mut weight = T::DbWeight::get().reads(1);
		let mut due: Vec<(BlockNumberFor<T>, TaskId)> = ActiveTasks::<T>::get()
			.iter()
			.filter(|a| a.phase_end <= now)
			.map(|a| (a.phase_end, a.task))
			.collect();
		due.sort_unstable();
		let due = due
			.into_iter()
			.map(|(_, id)| id)
			.take(T::MaxTransitionsPerBlock::get() as usize);
		for task in due {
			weight.saturating_accrue(Self::advance(task, now));
		}
		weight
	}

	/// Perform the transition due for `task`; returns the weight used.
	pub(crate) fn advance(task: TaskId, now: BlockNumberFor<T>) -> Weight {
		let Some(mut info) = Tasks::<T>::get(task) else {
			// Cannot happen (try_state checks it); drop the stray deadline.
			ActiveTasks::<T>::mutate(|active| active.retain(|a| a.task != task));
			return T::DbWeight::get().reads_writes(1, 1);
		};
		let trainers = info.trainers.len() as u32;
		match info.phase {
			Phase::Bidding => {
				let bids = info.bids;
				Self::close_bidding(task, &mut info, now);
				T::WeightInfo::close_bidding(bids)
			}
			Phase::Submit => {
				Self::close_submit(task, &mut info, now);
				T::WeightInfo::close_round(trainers)
			}
			Phase::Reveal => {
				Self::close_reveal(task, &mut info, now);
				T::WeightInfo::close_round(trainers)
			}
			Phase::Aggregate => {
				Self::close_aggregate(task, &mut info, now);
				T::WeightInfo::close_round(trainers)
			}
			Phase::Publishing => {
				let rounds = info.spec.rounds;
				Self::settle(task, info, None);
				T::WeightInfo::settle(trainers, rounds)
			}
			Phase::Failing(failure) => {
				let (bids, rounds) = (info.bids, info.spec.rounds);
				Self::settle(task, info, Some(failure));
				T::WeightInfo::settle(trainers.max(bids), rounds)
			}
		}
	}

	fn fail(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>, failure: Failure) {
		Self::enter_phase(task, info, Phase::Failing(failure), now, 1u32.into());
		Tasks::<T>::insert(task, &*info);
	}

	/// Select the winners by score; release the losers.
	fn close_bidding(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
		let bids: Vec<(T::AccountId, Bid<BalanceOf<T>>)> = Bids::<T>::iter_prefix(task).collect();
		if (bids.len() as u32) < info.spec.trainers_min {
			return Self::fail(task, info, now, Failure::TooFewBids);
		}
		let max_samples = bids.iter().map(|(_, b)| b.samples).max().unwrap_or(1);
		let max_capability = bids.iter().map(|(_, b)| b.capability).max().unwrap_or(1);
		let max_price = bids
			.iter()
			.map(|(_, b)| b.price)
			.max()
			.unwrap_or_else(BalanceOf::<T>::zero);
		let mut ranked: Vec<Ranked<T>> = bids
			.into_iter()
			.map(|(who, bid)| {
				let score = Self::bid_score(
					T::Reputation::score(&who),
					&bid,
					max_samples,
					max_capability,
					max_price,
				);
				(score, bid.seq, who, bid)
			})
			.collect();
		// Best score first; earlier bid first among equals.
		ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));

		let wanted = info.spec.trainers_wanted as usize;
		let mut trainers = BoundedVec::<T::AccountId, T::MaxTrainers>::new();
		for (rank, (_, _, who, bid)) in ranked.into_iter().enumerate() {
			Bids::<T>::remove(task, &who);
			if rank < wanted && trainers.try_push(who.clone()).is_ok() {
				Participants::<T>::insert(
					task,
					&who,
					Participant {
						index: rank as u32,
						stake: bid.stake,
						samples: bid.samples,
						commitment: bid.commitment,
						earned: Zero::zero(),
					},
				);
			} else {
				Self::release_stake(&who, bid.stake);
				Self::deposit_event(Event::BidReleased { task, bidder: who });
			}
		}
		info.bids = 0;
		info.trainers = trainers.clone();
		Self::deposit_event(Event::TrainersSelected { task, trainers });
		Self::start_round(task, info, now, 0);
	}

	/// Penalise trainers without an update; go on to the reveal phase.
	fn close_submit(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
		let missing = info.awaiting_update();
		Self::penalise(task, info, info.round, missing, Offence::NoUpdate);
		if (info.submitted & !info.lazy).count_ones() < info.spec.trainers_min {
			return Self::fail(task, info, now, Failure::TooFewUpdates);
		}
		let length = info.spec.phases.reveal;
		Self::enter_phase(task, info, Phase::Reveal, now, length);
		Tasks::<T>::insert(task, &*info);
	}

	/// Penalise submitters who kept their seed; go on to aggregation.
	fn close_reveal(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
		let missing = info.awaiting_reveal();
		Self::penalise(task, info, info.round, missing, Offence::NoReveal);
		if info.eligible().count_ones() < info.spec.trainers_min {
			return Self::fail(task, info, now, Failure::TooFewUpdates);
		}
		let length = info.spec.phases.aggregate;
		Self::enter_phase(task, info, Phase::Aggregate, now, length);
		Tasks::<T>::insert(task, &*info);
	}

	/// Finalise the agreed aggregate, or retry the round once, or fail the task.
	fn close_aggregate(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
		let round = info.round;
		let Some(decided) = info.decided else {
			if info.attempt == 0 {
				info.attempt = 1;
				Self::deposit_event(Event::RoundRetried { task, round });
				return Self::start_round(task, info, now, round);
			}
			return Self::fail(task, info, now, Failure::NoQuorum);
		};
		let tallies = Tallies::<T>::get(task);
		let Some(tally) = tallies.get(decided as usize).cloned() else {
			log::error!(target: LOG_TARGET, "task {task}: decided tally {decided} missing");
			return Self::fail(task, info, now, Failure::NoQuorum);
		};
		let eligible = info.eligible();
		let included = tally.included & eligible;
		let aggregator = Self::aggregator_of(task, info, &tally, decided);

		// This round's budget: reward / K, of which the aggregation fee.
		let rounds: BalanceOf<T> = info.spec.rounds.into();
		let budget = info
			.spec
			.reward
			.checked_div(&rounds)
			.unwrap_or_else(Zero::zero);
		let fee = T::AggregationFee::get().mul_floor(budget);
		let pool = budget.saturating_sub(fee);

		let mut shares: Vec<(T::AccountId, Participant<BalanceOf<T>>, u128)> = Vec::new();
		let mut total_weight: u128 = 0;
		for (index, who) in info.trainers.iter().enumerate() {
			let bit = 1u64 << index;
			if eligible & bit == 0 {
				continue;
			}
			let vote = Votes::<T>::get(task, who);
			let behaviour = if included & bit == 0 {
				Some(Behaviour::Outlier)
			} else if vote.is_some_and(|v| v != decided) {
				Some(Behaviour::Dissent)
			} else if vote == Some(decided) {
				Some(Behaviour::Good)
			} else {
				None
			};
			if included & bit != 0 {
				if let Some(participant) = Participants::<T>::get(task, who) {
					let weight = contribution_weight(
						participant.samples,
						T::Reputation::score(who).deconstruct(),
					);
					total_weight = total_weight.saturating_add(weight);
					shares.push((who.clone(), participant, weight));
				}
			}
			if let Some(behaviour) = behaviour {
				T::Reputation::record(who, behaviour);
			}
		}
		let pool_units: u128 = pool.unique_saturated_into();
		let mut rewarded = BalanceOf::<T>::zero();
		for (who, mut participant, weight) in shares {
			let share: BalanceOf<T> =
				Self::share_of(pool_units, weight, total_weight).unique_saturated_into();
			participant.earned = participant.earned.saturating_add(share);
			rewarded = rewarded.saturating_add(share);
			Participants::<T>::insert(task, &who, participant);
		}
		let next = round.saturating_add(1);
		let last = next >= info.spec.rounds;
		// The aggregator alone may publish for the first half of the following phase (the
		// next submission, or the publishing phase); then anyone may, leaving trainers that
		// wait for the published model half a phase to train on it.
		// Never shorter than `MinPhaseLength`, so that an honest aggregator acting on
		// confirmed blocks lands its publication before anyone may take it over.
		let half = |length: BlockNumberFor<T>| (length / 2u32.into()).max(T::MinPhaseLength::get());
		let window = if last {
			info.spec.phases.aggregate
		} else {
			half(info.spec.phases.submit)
		};
		GlobalModels::<T>::insert(
			task,
			round,
			GlobalModel {
				hash: tally.hash,
				included,
				aggregator: aggregator.clone(),
				fee,
				exclusive_until: now.saturating_add(window),
				published: None,
			},
		);
		Self::deposit_event(Event::RoundFinalized {
			task,
			round,
			hash: tally.hash,
			aggregator,
			rewarded,
		});
		if !last {
			info.attempt = 0;
			Self::start_round(task, info, now, next);
		} else {
			Self::clear_round(task, info);
			let length = info.spec.phases.aggregate.saturating_mul(2u32.into());
			Self::enter_phase(task, info, Phase::Publishing, now, length);
			Tasks::<T>::insert(task, &*info);
		}
	}

	/// Who publishes the decided tally's aggregate: its first proposer, unless that trainer
	/// was proven lazy since; then the first trainer (in selection order) who voted for it.
	fn aggregator_of(
		task: TaskId,
		info: &TaskOf<T>,
		tally: &Tally<T::AccountId>,
		decided: u32,
	) -> T::AccountId {
		let lazy = |who: &T::AccountId| {
			info.trainers
				.iter()
				.position(|t| t == who)
				.is_some_and(|i| info.lazy & (1u64 << i) != 0)
		};
		if !lazy(&tally.first) {
			return tally.first.clone();
		}
		info.trainers
			.iter()
			.enumerate()
			.find(|(i, who)| {
				info.lazy & (1u64 << i) == 0 && Votes::<T>::get(task, *who) == Some(decided)
			})
			.map(|(_, who)| who.clone())
			// The quorum needs at least one honest vote for the tally.
			.unwrap_or_else(|| tally.first.clone())
	}

	/// Roll commitments forward and clear the round's updates and votes.
	fn clear_round(task: TaskId, info: &mut TaskOf<T>) {
		for who in info.trainers.iter() {
			if let Some(update) = Updates::<T>::take(task, who) {
				Participants::<T>::mutate(task, who, |p| {
					if let Some(p) = p {
						p.commitment = update.next_commitment;
					}
				});
			}
			Votes::<T>::remove(task, who);
		}
		Tallies::<T>::remove(task);
		info.submitted = 0;
		info.revealed = 0;
		info.decided = None;
	}

	/// Begin (or retry) `round` with its submission phase.
	fn start_round(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>, round: RoundIndex) {
		Self::clear_round(task, info);
		info.round = round;
		let length = info.spec.phases.submit;
		Self::enter_phase(task, info, Phase::Submit, now, length);
		Tasks::<T>::insert(task, &*info);
	}

	/// Burn `MissSlash` of the stake of every trainer in `mask` and record a miss in `round`.
	pub(crate) fn penalise(
		task: TaskId,
		info: &TaskOf<T>,
		round: RoundIndex,
		mask: TrainerMask,
		offence: Offence,
	) {
		for (index, who) in info.trainers.iter().enumerate() {
			if mask & (1u64 << index) == 0 {
				continue;
			}
			let Some(mut participant) = Participants::<T>::get(task, who) else {
				continue;
			};
			let slash = T::MissSlash::get().mul_floor(participant.stake);
			let burnt = T::Currency::burn_held(
				&HoldReason::Stake.into(),
				who,
				slash,
				Precision::BestEffort,
				Fortitude::Force,
			)
			.unwrap_or_default();
			participant.stake = participant.stake.saturating_sub(burnt);
			Participants::<T>::insert(task, who, participant);
			T::Reputation::record(who, Behaviour::Missed);
			Self::deposit_event(Event::Penalised {
				task,
				round,
				trainer: who.clone(),
				offence,
				slashed: burnt,
			});
		}
	}

	/// An aggregator that did not publish in its window stalled the task: it forfeits the
	/// rewards it accrued in the task, pays `MissSlash`, records a miss and is out of the
	/// rest of the task, so that withholding an early round cannot be followed by paid
	/// rounds (nothing more for one already out: a proven copier lost all that then). The
	/// caller stores `info`.
	pub(crate) fn penalise_withholder(
		task: TaskId,
		info: &mut TaskOf<T>,
		round: RoundIndex,
		aggregator: &T::AccountId,
	) {
		let Some(index) = info.trainers.iter().position(|a| a == aggregator) else {
			return;
		};
		let bit = 1u64 << index;
		if info.lazy & bit == 0 {
			Participants::<T>::mutate(task, aggregator, |p| {
				if let Some(p) = p {
					p.earned = Zero::zero();
				}
			});
			Self::penalise(task, info, round, bit, Offence::NoPublication);
			Self::exclude(task, info, bit, aggregator);
		}
	}

	fn release_stake(who: &T::AccountId, amount: BalanceOf<T>) {
		if let Err(e) = T::Currency::release(
			&HoldReason::Stake.into(),
			who,
			amount,
			Precision::BestEffort,
		) {
			log::error!(target: LOG_TARGET, "stake release failed: {e:?}");
		}
	}

	/// Pay accrued rewards, release stakes and the remaining escrow, and remove the task.
	pub(crate) fn settle(task: TaskId, mut info: TaskOf<T>, failure: Option<Failure>) {
		let escrow_reason = HoldReason::Escrow.into();
		for (who, bid) in Bids::<T>::drain_prefix(task) {
			Self::release_stake(&who, bid.stake);
			Self::deposit_event(Event::BidReleased { task, bidder: who });
		}
		// Aggregators who never published although their window had passed lose the fee
		// (it stays in the escrow), their rewards and `MissSlash` (a missed deadline),
		// unless already proven lazy. One whose window was still open (the task failed or
		// ended early) only loses the fee.
		let now = frame_system::Pallet::<T>::block_number();
		for (round, model) in GlobalModels::<T>::drain_prefix(task) {
			if model.published.is_none() && now >= model.exclusive_until {
				Self::penalise_withholder(task, &mut info, round, &model.aggregator);
				Self::deposit_event(Event::PublicationMissed {
					task,
					round,
					aggregator: model.aggregator,
				});
			}
		}
		let mut paid = BalanceOf::<T>::zero();
		for who in info.trainers.iter() {
			let Some(participant) = Participants::<T>::take(task, who) else {
				continue;
			};
			if !participant.earned.is_zero() {
				match T::Currency::transfer_on_hold(
					&escrow_reason,
					&info.publisher,
					who,
					participant.earned.min(info.escrow),
					Precision::Exact,
					Restriction::Free,
					Fortitude::Force,
				) {
					Ok(amount) => {
						info.escrow = info.escrow.saturating_sub(amount);
						paid = paid.saturating_add(amount);
					}
					Err(e) => log::error!(target: LOG_TARGET, "task {task}: payout failed: {e:?}"),
				}
			}
			Self::release_stake(who, participant.stake);
			Updates::<T>::remove(task, who);
			Votes::<T>::remove(task, who);
		}
		let refunded = T::Currency::release(
			&escrow_reason,
			&info.publisher,
			info.escrow,
			Precision::BestEffort,
		)
		.unwrap_or_default();
		Tallies::<T>::remove(task);
		PublisherTasks::<T>::mutate_exists(&info.publisher, |live| {
			*live = live.map(|n| n.saturating_sub(1)).filter(|n| *n > 0);
		});
		Tasks::<T>::remove(task);
		ActiveTasks::<T>::mutate(|active| active.retain(|a| a.task != task));
		Self::deposit_event(Event::TaskSettled {
			task,
			failure,
			paid,
			refunded,
		});
	}

	/// A trainer's share of a round's pool: `pool * weight / total`, rounded down.
	pub fn share_of(pool: u128, weight: u128, total: u128) -> u128 {
		if total == 0 {
			return 0;
		}
		sp_runtime::helpers_128bit::multiply_by_rational_with_rounding(
			pool,
			weight,
			total,
			sp_runtime::Rounding::Down,
		)
		.unwrap_or(0)
	}
}
