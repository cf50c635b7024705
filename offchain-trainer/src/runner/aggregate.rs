//! Screening, aggregation and the vote; publishing agreed aggregates (own, or withheld
//! ones after the aggregator's window).

use super::*;

impl<'a> Runner<'a> {
	pub(super) fn propose(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		let round = view.round;
		// A quorum may already have formed above the confirmed head: a late vote would
		// only be refused (and cost its fee).
		if self
			.client
			.task(self.cfg.task, None)?
			.is_some_and(|best| best.round == round && best.decided.is_some())
		{
			return Ok(Step::Wait);
		}
		let Some(global) = self.global(round, head)? else {
			return Ok(Step::Wait);
		};
		let updates = self.client.updates(self.cfg.task, Some(head))?;
		let participants = self.client.participants(self.cfg.task, Some(head))?;
		let eligible = view.eligible();
		let bound = norm_bound(&view.spec);
		let mut clean = Vec::new();
		let mut weights = Vec::new();
		let mut bits = Vec::new();
		for (i, who) in view.trainers.iter().enumerate() {
			if eligible & (1u64 << i) == 0 {
				continue;
			}
			let Some((_, record)) = updates.iter().find(|(a, _)| a == who) else {
				continue;
			};
			let Some(seed) = record.seed else { continue };
			let Some(mut values) = self.update(record, bound)?.1 else {
				continue;
			};
			signature::remove(&mut values, &seed);
			let samples = participants
				.iter()
				.find(|(a, _)| a == who)
				.map_or(0, |(_, p)| p.samples);
			let reputation = self.client.reputation(who, Some(head))?;
			weights.push(contribution_weight(samples, reputation.deconstruct()));
			clean.push(values);
			bits.push(i);
		}
		if clean.is_empty() {
			return Ok(Step::Wait);
		}
		// Only updates that carry training count (and are paid): the screen leaves out noise,
		// empty updates, sign flips and replays of the last global step.
		let previous = match round.checked_sub(1) {
			Some(before) => self.global(before, head)?.map(|g| {
				global
					.iter()
					.zip(&g)
					.map(|(now, then)| now - then)
					.collect::<Vec<f32>>()
			}),
			None => None,
		};
		let Some((next, kept)) = pipeline::next_global(
			&global,
			clean,
			&weights,
			previous.as_deref(),
			rule_of(view.spec.rule),
			&|k| view.trainers[bits[k]].to_string(),
		)?
		else {
			tracing::warn!(round, "no update carries training: not voting");
			return Ok(Step::Wait);
		};
		let included = kept.iter().fold(0u64, |mask, k| mask | (1u64 << bits[*k]));
		let blob = codec::encode(self.cfg.task, round, Codec::F32, &next)?;
		let hash = H256(codec::hash(&blob));
		self.store
			.save_blob(self.cfg.task, &aggregate_name(round), &blob)?;
		self.state.voted.push((round, view.attempt));
		self.save()?;
		tracing::info!(round, included = format!("{included:#b}"), hash = ?hash, "proposing the aggregate");
		let sent = self.client.fl(FlCall::propose_aggregate {
			task: self.cfg.task,
			round,
			hash,
			included,
		});
		if let Err(e @ Error::Dispatch { .. }) = sent {
			// Refused (say, the eligible set changed above the head this trainer acted on):
			// the round still needs a vote, so forget this one and vote again on a later head.
			self.state.voted.retain(|v| *v != (round, view.attempt));
			self.save()?;
			return Err(e);
		}
		sent?;
		Ok(Step::Again)
	}

	/// Publish the aggregates this trainer must or may publish; true if it sent something.
	/// Its own as aggregator at once; another aggregator's agreed blob once that
	/// aggregator's exclusive window has passed (at once if it was proven lazy), staggered
	/// by trainer index so that not everyone pays for the same publication.
	pub(super) fn publish(&mut self, view: &TaskView, head: H256) -> Result<bool> {
		let me = self.me().clone();
		if let Behaviour::Withhold = self.cfg.behaviour {
			return Ok(false);
		}
		let my_index = view.trainers.iter().position(|a| *a == me).unwrap_or(0) as u32;
		for round in [view.round.saturating_sub(1), view.round] {
			if self.state.published.contains(&round) {
				continue;
			}
			let Some(gm) = self.client.global_model(self.cfg.task, round, Some(head))? else {
				continue;
			};
			if gm.published.is_some() {
				continue;
			}
			let mine = gm.aggregator == me;
			if !mine {
				let aggregator_lazy = view
					.trainers
					.iter()
					.position(|a| *a == gm.aggregator)
					.is_some_and(|p| view.lazy & (1u64 << p) != 0);
				let my_turn = gm.exclusive_until.saturating_add(my_index);
				if !aggregator_lazy && self.head_number < my_turn {
					continue;
				}
				// Someone may have published it above the confirmed head.
				if self
					.client
					.global_model(self.cfg.task, round, None)?
					.is_some_and(|g| g.published.is_some())
				{
					continue;
				}
			}
			let Some(blob) = self
				.store
				.load_blob(self.cfg.task, &aggregate_name(round))?
				.filter(|b| H256(codec::hash(b)) == gm.hash)
			else {
				if mine {
					tracing::warn!(round, "aggregator without the agreed blob; cannot publish");
				}
				continue;
			};
			self.state.published.push(round);
			self.save()?;
			if mine {
				tracing::info!(round, fee = gm.fee, "publishing the aggregate");
			} else {
				tracing::warn!(round, aggregator = %gm.aggregator, "the aggregator withheld the agreed aggregate; publishing it");
			}
			self.client.fl(FlCall::publish_aggregate {
				task: self.cfg.task,
				round,
				blob: blob
					.try_into()
					.map_err(|_| invalid("aggregate exceeds the runtime's bound"))?,
			})?;
			crate::metrics::get().aggregates_published.inc();
			return Ok(true);
		}
		Ok(false)
	}
}
