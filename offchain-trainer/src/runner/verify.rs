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
		for (accused, record) in &updates {
			let position = view.trainers.iter().position(|a| a == accused);
			let excluded = position.is_none_or(|p| view.lazy & (1u64 << p) != 0);
			let key = format!("{}/{}/{accused}", view.round, view.attempt);
			// The runtime removes the accused's own watermark once it is revealed: only
			// then is the verdict final (an unrevealed update is excluded anyway).
			let Some(own) = record.seed else { continue };
			if *accused == me || excluded || self.state.reported.contains(&key) {
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
					return self.report(view, accused, key, blob, Accusation::Weak);
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
					return self.report(view, accused, key, blob, Accusation::Copy(victim));
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
						return self.report(view, accused, key, blob, Accusation::Copy(None));
					}
				}
			}
		}
		Ok(Step::Wait)
	}

	/// Send a report the runtime's verdict upholds, unless the best block shows the
	/// accused already proven or the round decided.
	fn report(
		&mut self,
		view: &TaskView,
		accused: &AccountId,
		key: String,
		blob: Vec<u8>,
		accusation: Accusation,
	) -> Result<Step> {
		let position = view.trainers.iter().position(|a| a == accused);
		let best = self.client.task(self.cfg.task, None)?;
		if best.as_ref().is_some_and(|b| {
			position.is_some_and(|p| b.lazy & (1u64 << p) != 0) || b.decided.is_some()
		}) {
			tracing::info!(%accused, "already proven, or the round decided; not reporting");
			self.state.reported.push(key);
			return Ok(Step::Wait);
		}
		if best.as_ref().is_some_and(|b| b.lazy != view.lazy) {
			// The eligible set moved above the confirmed head: the verdict against all
			// victims may differ there. Test again on a later head.
			let hash = H256(codec::hash(&blob));
			self.checked.retain(|(h, _)| *h != hash);
			return Ok(Step::Wait);
		}
		self.state.reported.push(key);
		self.save()?;
		let accused_blob = blob
			.try_into()
			.map_err(|_| invalid("accused blob exceeds the runtime's bound"))?;
		let (task, round, accused) = (self.cfg.task, view.round, accused.clone());
		let call = match accusation {
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
		let confirmed = self.client.fl(call)?;
		let upheld = chain::fl_events(&confirmed.events).any(|e| {
			matches!(
				e,
				chain::FlEvent::LazyProven { .. } | chain::FlEvent::WeakWatermarkProven { .. }
			)
		});
		if upheld {
			self.outcome.reports_upheld += 1;
		}
		crate::metrics::get()
			.lazy_reports
			.with_label_values(&[if upheld { "upheld" } else { "refused" }])
			.inc();
		Ok(Step::Again)
	}
}

/// What a report accuses an update of.
enum Accusation {
	/// A copy of the named victim (or of all revealed others: `None`).
	Copy(Option<AccountId>),
	/// Its own watermark weaker than the task allows.
	Weak,
}
