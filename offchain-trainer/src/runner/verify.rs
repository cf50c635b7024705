//! Everyone else's updates: download and decode them, run the chain's exact verdicts,
//! and report what the runtime will uphold.

use super::*;

impl<'a> Runner<'a> {
	/// Blob and decoded values of a recorded update (downloaded once per round). The values
	/// are `None` when they are unusable: non-finite once decoded (an int8 scale near
	/// `f32::MAX`), beyond the task's norm bound, or undecodable. Such an update is left out
	/// of the aggregate (it is outside the included set), never a reason to stop.
	pub(super) fn update(
		&mut self,
		record: &chain::UpdateRecord,
		bound: f64,
	) -> Result<(Vec<u8>, Option<Vec<f32>>)> {
		if let Some(known) = self.updates.get(&record.hash) {
			return Ok(known.clone());
		}
		let blob = self
			.client
			.blob_at(record.block, record.extrinsic_index, record.hash)?;
		let values = match codec::decode(&blob, blob.len()) {
			Ok((_, values)) => {
				let norm = privacy::l2_norm(&values);
				if norm.is_finite() && norm <= bound * 1.0001 {
					Some(values)
				} else {
					tracing::warn!(hash = ?record.hash, norm, bound, "update unusable (non-finite or beyond the norm bound); leaving it out");
					None
				}
			}
			Err(e) => {
				tracing::warn!(hash = ?record.hash, error = %e, "update undecodable; leaving it out");
				None
			}
		};
		self.updates
			.insert(record.hash, (blob.clone(), values.clone()));
		Ok((blob, values))
	}

	/// Run the runtime's verdicts on every other update of this round and report what the
	/// runtime will uphold: a watermark too weak, a copy of one revealed trainer, or (in the
	/// aggregate phase, when the reveals are final) a copy of all of them together.
	pub(super) fn verify(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		use pallet_fl_tasks::Phase;
		let me = self.me().clone();
		let updates = self.client.updates(self.cfg.task, Some(head))?;
		if updates.iter().all(|(_, r)| r.seed.is_none()) {
			return Ok(Step::Wait);
		}
		let params = FlParams::read(self.client, Some(head))?;
		let bound = norm_bound(&view.spec);
		let eligible = view.eligible();
		let key_of = |who: &AccountId| {
			updates
				.iter()
				.find(|(a, _)| a == who)
				.and_then(|(_, r)| r.seed)
		};
		self.drive_reports(view)?;
		'updates: for (accused, record) in &updates {
			let position = view.trainers.iter().position(|a| a == accused);
			let excluded = position.is_none_or(|p| view.lazy & (1u64 << p) != 0);
			let key = format!("{}/{}/{accused}", view.round, view.attempt);
			// The runtime removes the accused's own watermark once it is revealed: only
			// then is the verdict final (an unrevealed update is excluded anyway).
			let Some(own) = record.seed else { continue };
			if *accused == me
				|| excluded || self.state.reported.contains(&key)
				|| self.queued.contains_key(&key)
			{
				continue;
			}
			let blob = self.update(record, bound)?.0;
			if self.checked.insert((record.hash, own)) {
				let (weak, snr_centi_db) = signature::chain_weak_watermark(
					&blob,
					&own,
					view.spec.pn_snr_centi_db,
					params.watermark_tolerance,
					params.lazy_z_score,
				)?;
				if weak {
					tracing::warn!(%accused, snr_centi_db, "update without its watermark at the task's strength");
					self.queue(view, accused, key, blob, Accusation::Weak);
					continue 'updates;
				}
			}
			// One named victim at a time, in trainer order.
			for (i, victim) in view.trainers.iter().enumerate() {
				let Some(victim_key) = key_of(victim) else {
					continue;
				};
				if victim == accused
					|| view.lazy & (1u64 << i) != 0
					|| !self.checked.insert((record.hash, victim_key))
				{
					continue;
				}
				let (proven, z_centi) =
					signature::chain_copy(&blob, Some(&own), &[victim_key], params.lazy_z_score)?;
				if proven {
					tracing::warn!(%accused, %victim, z_centi, "lazy copy proven");
					let victim = Some(victim.clone());
					self.queue(view, accused, key, blob, Accusation::Copy(victim));
					continue 'updates;
				}
			}
			// All revealed eligible others together (an averaging copier), exactly the set
			// the runtime takes for `victim = None`.
			if view.phase == Phase::Aggregate && self.checked.insert((record.hash, [0; 32])) {
				let keys: Vec<Seed> = view
					.trainers
					.iter()
					.enumerate()
					.filter(|(i, who)| eligible & (1u64 << i) != 0 && *who != accused)
					.filter_map(|(_, who)| key_of(who))
					.collect();
				if !keys.is_empty() {
					let (proven, z_centi) =
						signature::chain_copy(&blob, Some(&own), &keys, params.lazy_z_score)?;
					if proven {
						tracing::warn!(%accused, victims = keys.len(), z_centi, "copy of the revealed updates together proven");
						self.queue(view, accused, key, blob, Accusation::Copy(None));
						continue 'updates;
					}
				}
			}
		}
		self.drive_reports(view)?;
		Ok(Step::Wait)
	}

	/// The blocks this trainer waits, after proving `accused` a copier, before reporting
	/// it: every trainer ranks the eligible trainers by `Blake2(accused, trainer, task,
	/// round, attempt)`, the first reports at once, the next ones `REPORT_STAGGER` blocks
	/// apart (at most `REPORT_RANKS` steps). Honest trainers then send one report per
	/// copier instead of all racing (each refused duplicate costs its sender the fee of a
	/// blob-sized transaction), and a copier whose first-ranked reporter is itself lazy
	/// or offline is still reported a few blocks later.
	fn report_delay(&self, view: &TaskView, accused: &AccountId) -> u32 {
		let eligible = view.eligible();
		let candidates: Vec<&AccountId> = view
			.trainers
			.iter()
			.enumerate()
			.filter(|(i, _)| eligible & (1u64 << i) != 0)
			.map(|(_, who)| who)
			.collect();
		let turn = (self.cfg.task, view.round, view.attempt);
		reporter_rank(turn, accused, &candidates, self.me())
			.min(REPORT_RANKS)
			.saturating_mul(REPORT_STAGGER)
	}

	/// Keep a proven accusation until its turn comes ([`Self::drive_reports`]).
	fn queue(
		&mut self,
		view: &TaskView,
		accused: &AccountId,
		key: String,
		blob: Vec<u8>,
		accusation: Accusation,
	) {
		let delay = self.report_delay(view, accused);
		tracing::debug!(%accused, delay, "accusation queued");
		self.queued.insert(
			key,
			Queued {
				accused: accused.clone(),
				blob,
				accusation,
				due: self.head_number.saturating_add(delay),
			},
		);
	}

	/// Look once at the reports in flight (counting the upheld ones) and send every queued
	/// accusation whose turn has come, unless the best block shows the accused already
	/// proven (by another reporter) or the round decided. Sending does not wait for the
	/// confirmation: several copiers are reported in the same blocks.
	fn drive_reports(&mut self, view: &TaskView) -> Result<()> {
		let mut still = Vec::new();
		for mut watch in std::mem::take(&mut self.in_flight) {
			match self.client.poll(&mut watch)? {
				Some(confirmed) => {
					let failed = confirmed.failure().is_some();
					let upheld = chain::fl_events(&confirmed.events).any(|e| {
						matches!(
							e,
							chain::FlEvent::LazyProven { .. }
								| chain::FlEvent::WeakWatermarkProven { .. }
						)
					});
					if upheld {
						self.outcome.reports_upheld += 1;
					}
					if failed {
						tracing::info!(call = %chain::call_name(&watch.pending.call), "report refused (another reporter was first, or the phase moved on)");
					}
					crate::metrics::get()
						.lazy_reports
						.with_label_values(&[if upheld { "upheld" } else { "refused" }])
						.inc();
				}
				None => still.push(watch),
			}
		}
		self.in_flight = still;
		if self.queued.is_empty() {
			return Ok(());
		}
		let best = self.client.task(self.cfg.task, None)?;
		let keys: Vec<String> = self.queued.keys().cloned().collect();
		for key in keys {
			let Some(item) = self.queued.get(&key) else {
				continue;
			};
			let position = view.trainers.iter().position(|a| *a == item.accused);
			if best.as_ref().is_none_or(|b| {
				position.is_some_and(|p| b.lazy & (1u64 << p) != 0) || b.decided.is_some()
			}) {
				tracing::info!(accused = %item.accused, "already proven (or the round decided); not reporting");
				self.queued.remove(&key);
				self.state.reported.push(key);
				continue;
			}
			if best.as_ref().is_some_and(|b| b.lazy != view.lazy) {
				// The eligible set moved above the confirmed head: the verdict against all
				// victims may differ there. Test again on a later head.
				if let Some(item) = self.queued.remove(&key) {
					let hash = H256(codec::hash(&item.blob));
					self.checked.retain(|(h, _)| *h != hash);
				}
				continue;
			}
			if self.head_number < item.due {
				continue;
			}
			let Some(item) = self.queued.remove(&key) else {
				continue;
			};
			self.state.reported.push(key);
			self.save()?;
			let call = report_call(self.cfg.task, view.round, item)?;
			let pending = self.client.submit(chain::RuntimeCall::FlTasks(call))?;
			self.in_flight.push(chain::Watch::new(pending));
		}
		Ok(())
	}
}

/// A proven accusation waiting for its reporting turn.
pub(super) struct Queued {
	accused: AccountId,
	blob: Vec<u8>,
	accusation: Accusation,
	/// Confirmed-head number from which this trainer reports it.
	due: u32,
}

/// Rank of `me` among the `candidates` (the accused left out) as reporter of `accused` in
/// (task, round, attempt): order by `Blake2("blade-fl/reporter", accused, trainer, task,
/// round, attempt)`. Every trainer computes the same order; one who is not a candidate
/// ranks last.
pub(crate) fn reporter_rank(
	(task, round, attempt): (u64, u32, u8),
	accused: &AccountId,
	candidates: &[&AccountId],
	me: &AccountId,
) -> u32 {
	let mut ranked: Vec<([u8; 32], &AccountId)> = candidates
		.iter()
		.filter(|who| **who != accused)
		.map(|who| {
			let seed = (b"blade-fl/reporter", accused, *who, task, round, attempt);
			(
				sp_crypto_hashing::blake2_256(&::codec::Encode::encode(&seed)),
				*who,
			)
		})
		.collect();
	ranked.sort();
	ranked
		.iter()
		.position(|(_, who)| *who == me)
		.unwrap_or(ranked.len()) as u32
}

/// Blocks between one reporter's turn and the next.
const REPORT_STAGGER: u32 = 2;
/// Ranks after which every remaining reporter reports at once.
const REPORT_RANKS: u32 = 2;

fn report_call(task: u64, round: u32, item: Queued) -> Result<FlCall> {
	let accused_blob = item
		.blob
		.try_into()
		.map_err(|_| invalid("accused blob exceeds the runtime's bound"))?;
	let accused = item.accused;
	let call = match item.accusation {
		Accusation::Copy(victim) => FlCall::report_lazy {
			task,
			round,
			accused,
			victim,
			accused_blob,
		},
		Accusation::Weak => FlCall::report_weak_watermark {
			task,
			round,
			accused,
			accused_blob,
		},
	};
	Ok(call)
}

/// What a report accuses an update of.
enum Accusation {
	/// A copy of the named victim (or of all revealed others: `None`).
	Copy(Option<AccountId>),
	/// Its own watermark weaker than the task allows.
	Weak,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
	use super::*;

	fn account(i: u8) -> AccountId {
		AccountId::from([i; 32])
	}

	#[test]
	fn exactly_one_reporter_goes_first_and_the_order_changes_per_copier() {
		let trainers: Vec<AccountId> = (0..10).map(account).collect();
		let refs: Vec<&AccountId> = trainers.iter().collect();
		let mut firsts = std::collections::HashSet::new();
		for accused in 0..10u8 {
			let accused = account(accused);
			let mut ranks: Vec<u32> = trainers
				.iter()
				.filter(|t| **t != accused)
				.map(|me| reporter_rank((7, 1, 0), &accused, &refs, me))
				.collect();
			ranks.sort();
			// A permutation of 0..9: one trainer first, none tied.
			assert_eq!(ranks, (0..9).collect::<Vec<u32>>());
			let first = trainers
				.iter()
				.find(|me| **me != accused && reporter_rank((7, 1, 0), &accused, &refs, me) == 0)
				.unwrap();
			firsts.insert(first.clone());
			// The accused and outsiders rank last.
			assert_eq!(reporter_rank((7, 1, 0), &accused, &refs, &accused), 9);
			assert_eq!(reporter_rank((7, 1, 0), &accused, &refs, &account(99)), 9);
		}
		// The duty rotates: not one trainer first for every copier.
		assert!(firsts.len() > 1, "first reporters: {firsts:?}");
		// Another round, another order.
		let accused = account(0);
		let me = account(1);
		let ranks: std::collections::HashSet<u32> = (0..20)
			.map(|round| reporter_rank((7, round, 0), &accused, &refs, &me))
			.collect();
		assert!(ranks.len() > 1);
	}
}
