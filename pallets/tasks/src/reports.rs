//! Proofs of dishonest updates (`report_lazy`, `report_weak_watermark`), the slash they
//! trigger, and the quorum check that a smaller eligible set may complete.

use crate::{pallet::*, types::*, weights::WeightInfo};
use alloc::vec::Vec;
use blade_fl_primitives::{
	blob::{blob_hash, Blob},
	pn::Seed,
	traits::{Behaviour, Reputation},
	verdict::{copy_proven, own_watermark, weak_watermark},
};
use frame_support::{
	dispatch::DispatchResultWithPostInfo,
	pallet_prelude::*,
	traits::{
		fungible::{Mutate, MutateHold},
		tokens::{Fortitude, Precision, Preservation, Restriction},
	},
};
use frame_system::pallet_prelude::BlockNumberFor;
use sp_core::H256;
use sp_runtime::traits::{Saturating, Zero};

impl<T: Config> Pallet<T> {
	/// Work a blob may cost the verifier: its length in bytes (one value per byte in the
	/// int8 codec, the densest; the weights are benchmarked on int8 blobs).
	pub fn blob_work(blob: &[u8]) -> u32 {
		blob.len() as u32
	}

	/// The accused's recorded update and the blob, checked against its hash and parsed.
	fn accused_update<'b>(
		task: TaskId,
		info: &TaskOf<T>,
		reporter: &T::AccountId,
		accused: &T::AccountId,
		blob: &'b [u8],
	) -> Result<(UpdateRecord<BlockNumberFor<T>>, Blob<'b>), DispatchError> {
		ensure!(reporter != accused, Error::<T>::SelfReport);
		let participant = Participants::<T>::get(task, accused).ok_or(Error::<T>::NotTrainer)?;
		ensure!(
			info.lazy & (1u64 << participant.index) == 0,
			Error::<T>::Excluded
		);
		let update = Updates::<T>::get(task, accused).ok_or(Error::<T>::NoUpdate)?;
		ensure!(
			H256(blob_hash(blob)) == update.hash,
			Error::<T>::BlobHashMismatch
		);
		// Validated at submission; parse again to read the values.
		let parsed = Blob::parse(blob, T::MaxBlobLen::get() as usize).map_err(Error::<T>::from)?;
		Ok((update, parsed))
	}

	/// The chip keys a copy report tests against: the named victim's, or (in the aggregate
	/// phase) those of every other revealed trainer not proven lazy, in trainer order.
	fn victim_keys(
		task: TaskId,
		info: &TaskOf<T>,
		accused: &T::AccountId,
		victim: Option<&T::AccountId>,
	) -> Result<Vec<Seed>, DispatchError> {
		match victim {
			Some(victim) => {
				ensure!(victim != accused, Error::<T>::SelfReport);
				ensure!(
					Participants::<T>::contains_key(task, victim),
					Error::<T>::NotTrainer
				);
				let key = Updates::<T>::get(task, victim)
					.and_then(|u| u.seed)
					.ok_or(Error::<T>::VictimSeedUnknown)?;
				Ok(alloc::vec![key])
			}
			None => {
				ensure!(
					info.phase == Phase::Aggregate,
					Error::<T>::AllVictimsTooEarly
				);
				let eligible = info.eligible();
				let keys: Vec<Seed> = info
					.trainers
					.iter()
					.enumerate()
					.filter(|(i, who)| eligible & (1u64 << i) != 0 && *who != accused)
					.filter_map(|(_, who)| Updates::<T>::get(task, who).and_then(|u| u.seed))
					.collect();
				ensure!(!keys.is_empty(), Error::<T>::NoVictims);
				Ok(keys)
			}
		}
	}

	pub(crate) fn do_report_lazy(
		task: TaskId,
		round: RoundIndex,
		reporter: T::AccountId,
		accused: T::AccountId,
		victim: Option<T::AccountId>,
		blob: &[u8],
	) -> DispatchResultWithPostInfo {
		let info = Self::open_round(task, round, &[Phase::Reveal, Phase::Aggregate])?;
		ensure!(info.decided.is_none(), Error::<T>::AlreadyDecided);
		let (update, parsed) = Self::accused_update(task, &info, &reporter, &accused, blob)?;
		let keys = Self::victim_keys(task, &info, &accused, victim.as_ref())?;
		let own = update.seed.map(|key| {
			let mark = own_watermark(parsed.fixed_values(), &key);
			(key, mark.amplitude)
		});
		let (proven, evidence) = copy_proven(
			parsed.fixed_values(),
			own.as_ref().map(|(key, a)| (key, *a)),
			&keys,
			T::LazyZScore::get(),
		);
		let z_centi = evidence.z_centi();
		let actual = T::WeightInfo::report_lazy(Self::blob_work(blob), keys.len() as u32);
		if !proven {
			let penalty = Self::charge_false_report(&reporter, &accused)?;
			Self::deposit_event(Event::FalseAccusation {
				task,
				round,
				reporter,
				accused,
				victim,
				z_centi,
				penalty,
			});
			return Ok(Some(actual).into());
		}
		let (slashed, reporter_reward) = Self::punish(task, info, &accused, &reporter)?;
		Self::deposit_event(Event::LazyProven {
			task,
			round,
			accused,
			victim,
			reporter,
			z_centi,
			slashed,
			reporter_reward,
		});
		Ok(Some(actual).into())
	}

	pub(crate) fn do_report_weak_watermark(
		task: TaskId,
		round: RoundIndex,
		reporter: T::AccountId,
		accused: T::AccountId,
		blob: &[u8],
	) -> DispatchResult {
		let info = Self::open_round(task, round, &[Phase::Reveal, Phase::Aggregate])?;
		ensure!(info.decided.is_none(), Error::<T>::AlreadyDecided);
		let (update, parsed) = Self::accused_update(task, &info, &reporter, &accused, blob)?;
		let key = update.seed.ok_or(Error::<T>::AccusedSeedUnknown)?;
		let (weak, snr_centi_db) = weak_watermark(
			parsed.fixed_values(),
			&key,
			info.spec.pn_snr_centi_db,
			T::WatermarkTolerance::get(),
			T::LazyZScore::get(),
		);
		if !weak {
			let penalty = Self::charge_false_report(&reporter, &accused)?;
			Self::deposit_event(Event::FalseWatermarkReport {
				task,
				round,
				reporter,
				accused,
				snr_centi_db,
				penalty,
			});
			return Ok(());
		}
		let (slashed, reporter_reward) = Self::punish(task, info, &accused, &reporter)?;
		Self::deposit_event(Event::WeakWatermarkProven {
			task,
			round,
			accused,
			reporter,
			snr_centi_db,
			slashed,
			reporter_reward,
		});
		Ok(())
	}

	/// A failed report: the reporter pays `FalseReportPenalty` to the accused.
	fn charge_false_report(
		reporter: &T::AccountId,
		accused: &T::AccountId,
	) -> Result<BalanceOf<T>, DispatchError> {
		let penalty = T::FalseReportPenalty::get();
		T::Currency::transfer(reporter, accused, penalty, Preservation::Preserve)
			.map_err(|_| Error::<T>::CannotPayPenalty)?;
		Ok(penalty)
	}

	/// Slash a proven-dishonest trainer: `LazySlash` of its stake (`ReporterShare` of that
	/// to the reporter, the rest burnt), the rest released, accrued rewards and its vote
	/// gone, excluded for the rest of the task. Ends the reveal phase early or completes the
	/// quorum when the smaller eligible set allows. Returns (slashed, paid to reporter).
	fn punish(
		task: TaskId,
		mut info: TaskOf<T>,
		accused: &T::AccountId,
		reporter: &T::AccountId,
	) -> Result<(BalanceOf<T>, BalanceOf<T>), DispatchError> {
		let mut participant =
			Participants::<T>::get(task, accused).ok_or(Error::<T>::NotTrainer)?;
		let bit = 1u64 << participant.index;
		let slash = T::LazySlash::get().mul_floor(participant.stake);
		let reporter_reward = T::ReporterShare::get().mul_floor(slash);
		let stake_reason = HoldReason::Stake.into();
		let to_reporter = T::Currency::transfer_on_hold(
			&stake_reason,
			accused,
			reporter,
			reporter_reward,
			Precision::Exact,
			Restriction::Free,
			Fortitude::Force,
		)?;
		let burnt = T::Currency::burn_held(
			&stake_reason,
			accused,
			slash.saturating_sub(to_reporter),
			Precision::Exact,
			Fortitude::Force,
		)?;
		let rest = participant
			.stake
			.saturating_sub(to_reporter)
			.saturating_sub(burnt);
		T::Currency::release(&stake_reason, accused, rest, Precision::Exact)?;
		participant.stake = Zero::zero();
		participant.earned = Zero::zero();
		Participants::<T>::insert(task, accused, participant);
		T::Reputation::record(accused, Behaviour::Lazy);
		Self::exclude(task, &mut info, bit, accused);
		Tasks::<T>::insert(task, info);
		Ok((to_reporter.saturating_add(burnt), to_reporter))
	}

	/// Put the trainer at `bit` out of the rest of the task (a proven copier, an aggregator
	/// that withheld its publication): its vote this round is withdrawn, and the reveal
	/// phase ends early or the quorum completes when the smaller eligible set allows. The
	/// caller stores `info`.
	pub(crate) fn exclude(
		task: TaskId,
		info: &mut TaskOf<T>,
		bit: TrainerMask,
		who: &T::AccountId,
	) {
		if info.lazy & bit != 0 {
			return;
		}
		info.lazy |= bit;
		if let Some(vote) = Votes::<T>::take(task, who) {
			Tallies::<T>::mutate(task, |tallies| {
				if let Some(tally) = tallies.get_mut(vote as usize) {
					tally.votes = tally.votes.saturating_sub(1);
				}
			});
		}
		let now = frame_system::Pallet::<T>::block_number();
		match info.phase {
			// The dishonest trainer may have been the last one whose reveal was awaited.
			Phase::Reveal if info.awaiting_reveal() == 0 => {
				Self::end_phase_early(task, info, now);
			}
			// Fewer eligible voters: a tally may now hold the quorum.
			Phase::Aggregate => Self::check_quorum(task, info, now),
			_ => {}
		}
	}

	/// Decide the round if some tally's votes exceed `Quorum` of the eligible trainers.
	/// The caller stores `info`.
	pub(crate) fn check_quorum(task: TaskId, info: &mut TaskOf<T>, now: BlockNumberFor<T>) {
		if info.decided.is_some() {
			return;
		}
		let needed = T::Quorum::get().mul_floor(info.eligible().count_ones());
		let tallies = Tallies::<T>::get(task);
		let Some((index, tally)) = tallies
			.iter()
			.enumerate()
			.find(|(_, t)| t.votes > needed && t.votes > 0)
		else {
			return;
		};
		info.decided = Some(index as u32);
		Self::end_phase_early(task, info, now);
		Self::deposit_event(Event::AggregateAgreed {
			task,
			round: info.round,
			hash: tally.hash,
			votes: tally.votes,
		});
	}
}
