//! This trainer's own work each round: bid, train -> behaviour -> privacy -> watermark,
//! submit, reveal.

use super::*;

impl<'a> Runner<'a> {
	pub(super) fn bid(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		let me = self.me().clone();
		let phases = view.spec.phases;
		let shortest = phases.submit.min(phases.reveal).min(phases.aggregate);
		let needed = self.client.confirmations.saturating_add(2);
		if shortest < needed {
			return Err(invalid(format!(
				"not bidding on task {}: its shortest round phase is {shortest} blocks, but this trainer acts on blocks {} deep and needs at least {needed} blocks per phase to see a phase, act and have its transaction included; it would miss deadlines and be slashed",
				self.cfg.task, self.client.confirmations
			)));
		}
		if self
			.client
			.bids(self.cfg.task, Some(head))?
			.iter()
			.any(|(a, _)| *a == me)
		{
			return Ok(Step::Wait);
		}
		let seed = state::fresh_seed();
		let commitment = chain::commitment(&me, &seed);
		self.state
			.seeds
			.insert(state::hex(commitment.as_bytes()), state::hex(&seed));
		self.save()?;
		tracing::info!(
			task = self.cfg.task,
			samples = self.samples,
			stake = view.spec.min_stake,
			"bidding"
		);
		self.client.fl(FlCall::bid {
			task: self.cfg.task,
			samples: self.samples.min(view.spec.max_samples),
			price: self.cfg.price,
			capability: self.cfg.capability,
			commitment,
		})?;
		Ok(Step::Again)
	}

	/// The seed opening this trainer's current commitment.
	pub(super) fn current_seed(&self, head: H256) -> Result<Seed> {
		let me = self.me().clone();
		let participant = self
			.client
			.participants(self.cfg.task, Some(head))?
			.into_iter()
			.find(|(a, _)| *a == me)
			.map(|(_, p)| p)
			.ok_or_else(|| invalid("not a participant"))?;
		let key = state::hex(participant.commitment.as_bytes());
		let seed = self.state.seeds.get(&key).ok_or_else(|| {
			invalid(format!(
				"no seed for commitment {key} in the state directory: it was lost, the reveal will be missed"
			))
		})?;
		seed_from_hex(seed)
	}

	pub(super) fn submit(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		let (round, attempt) = (view.round, view.attempt);
		if self.done_at_best(|v| v.submitted)? {
			return Ok(Step::Wait);
		}
		let name = update_name(round, attempt);
		let blob = match self.store.load_blob(self.cfg.task, &name)? {
			Some(blob) => {
				tracing::info!(round, "resending the update saved before a restart");
				blob
			}
			None => {
				let Some(values) = self.make_update(view, head)? else {
					return Ok(Step::Wait);
				};
				let blob = if let Behaviour::CraftedBlob = self.cfg.behaviour {
					behaviour::overflowing_blob(self.cfg.task, round, values.len())?
				} else {
					codec::encode(self.cfg.task, round, self.spec.codec, &values)?
				};
				self.store.save_blob(self.cfg.task, &name, &blob)?;
				blob
			}
		};
		let me = self.me().clone();
		let next = state::fresh_seed();
		let next_commitment = chain::commitment(&me, &next);
		self.state
			.seeds
			.insert(state::hex(next_commitment.as_bytes()), state::hex(&next));
		self.state
			.submitted
			.insert(round, state::hex(&codec::hash(&blob)));
		self.save()?;
		let bytes = blob.len();
		let bounded = blob.try_into().map_err(|_| {
			invalid(format!(
				"update of {bytes} bytes exceeds the runtime's bound"
			))
		})?;
		self.client.fl(FlCall::submit_update {
			task: self.cfg.task,
			round,
			blob: bounded,
			next_commitment,
		})?;
		self.outcome.submitted += 1;
		crate::metrics::get().updates_sent.inc();
		Ok(Step::Again)
	}

	/// Train, apply the behaviour, privatise and watermark this round's update.
	pub(super) fn make_update(&mut self, view: &TaskView, head: H256) -> Result<Option<Vec<f32>>> {
		let round = view.round;
		let Some(global) = self.global(round, head)? else {
			return Ok(None);
		};
		let seed = self.current_seed(head)?;
		// The round key binds the chips to the agreed starting model (see `pn::round_key`).
		let previous = match round.checked_sub(1) {
			None => view.spec.validation_hash,
			Some(before) => {
				self.client
					.global_model(self.cfg.task, before, Some(head))?
					.ok_or_else(|| invalid("the previous round's aggregate is not agreed"))?
					.hash
			}
		};
		let key = round_key(
			&::codec::Encode::encode(self.me()),
			self.cfg.task,
			round,
			&previous.0,
			&seed,
		);
		// The lazy trainer copies someone's update of this round from the chain (the best
		// block: it is in a hurry, not careful).
		let victim = if self.cfg.behaviour.copies() {
			let me = self.me().clone();
			let others: Vec<_> = self
				.client
				.updates(self.cfg.task, None)?
				.into_iter()
				.filter(|(a, _)| *a != me)
				.collect();
			let Some((who, record)) = others.first().cloned() else {
				tracing::info!(round, "lazy: waiting for an update to copy");
				return Ok(None);
			};
			tracing::info!(round, victim = %who, "lazy: copying an update");
			let blob = self
				.client
				.blob_at(record.block, record.extrinsic_index, record.hash)?;
			Some(codec::decode(&blob, blob.len())?.1)
		} else {
			None
		};
		// A round retried after a failed vote reuses the noisy update it already published
		// (post-processing: no new privacy cost); anything else trains afresh.
		let private_name = format!("private-{round}");
		let reused = match (&victim, view.attempt) {
			(None, attempt) if attempt > 0 => self
				.store
				.load_blob(self.cfg.task, &private_name)?
				.map(|blob| codec::decode(&blob, blob.len()).map(|d| d.1))
				.transpose()?,
			_ => None,
		};
		let fresh = victim.is_none() && reused.is_none();
		let trained = if let Some(values) = reused {
			tracing::info!(round, "retried round: reusing the update already released");
			values
		} else if fresh {
			let config = TrainConfig {
				seed: u64::from(round) ^ (self.cfg.shard.0 as u64) << 32,
				..self.cfg.train
			};
			self.progress(format!(
				"round {}: training {} samples",
				round + 1,
				self.samples
			));
			let started = Instant::now();
			let (update, stats, release) = pipeline::local_training(
				&mut self.model,
				&global,
				&self.train,
				&config,
				(self.privacy.as_ref(), self.cfg.privacy.clip),
				round,
				&mut self.rng,
			)?;
			if let Some(release) = release {
				pipeline::spend(&mut self.accountant, self.privacy.as_ref(), release)?;
				tracing::info!(round, ?release, "DP-SGD applied");
			}
			let seconds = started.elapsed().as_secs_f64();
			crate::metrics::get().training_seconds.add(seconds);
			self.split.training += seconds;
			tracing::info!(
				round,
				loss = stats.loss,
				samples_per_s = stats.samples_per_sec,
				"trained"
			);
			update
		} else {
			vec![0.0; global.len()]
		};
		let mechanism = match fresh {
			true => pipeline::mechanism(self.privacy.as_ref(), self.cfg.privacy.clip, round)?,
			false => None,
		};
		if let Some(m) = mechanism {
			tracing::info!(round, mechanism = ?m, "output perturbation applied");
		}
		let plan = self.privacy.as_ref();
		let planned = plan.and_then(|p| p.plan.per_round.get(round as usize).copied());
		let update = pipeline::publishable(
			self.cfg.behaviour,
			&trained,
			victim.as_deref(),
			mechanism.and_then(|m| plan.map(|p| (m, p))),
			&mut self.accountant,
			(
				f64::from(view.spec.pn_snr_centi_db) / 100.0,
				norm_bound(&view.spec),
			),
			&key,
			&mut self.rng,
			|private| {
				if fresh {
					let blob = codec::encode(self.cfg.task, round, Codec::F32, private)?;
					self.store.save_blob(self.cfg.task, &private_name, &blob)?;
				}
				Ok(())
			},
		)?;
		// Spent: recorded with the state the caller saves before submitting, so a restarted
		// trainer knows it (see `pipeline::resume_privacy`).
		if let (true, Some(value)) = (fresh, planned) {
			self.state.privacy_releases.push((round, value));
		}
		Ok(Some(update))
	}

	pub(super) fn reveal(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		if self.done_at_best(|v| v.revealed)? {
			return Ok(Step::Wait);
		}
		let seed = self.current_seed(head)?;
		self.client.fl(FlCall::reveal_seed {
			task: self.cfg.task,
			round: view.round,
			seed,
		})?;
		self.state.revealed.push(view.round);
		self.save()?;
		Ok(Step::Again)
	}
}
