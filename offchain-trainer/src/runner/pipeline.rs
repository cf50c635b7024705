//! The two steps of a round that do not touch the chain, shared by the runner and by the
//! chain-free baseline ([`super::baseline`]) so that both learn through the very same code:
//! turning a trained (or copied) update into what a trainer publishes, and turning the
//! revealed updates into the next global model.

use blade_fl_primitives::pn::Seed;
use rand::Rng;

use crate::{
	aggregation::{self, Rule},
	behaviour::{self, Behaviour},
	chain::TaskSpec,
	dpsgd::{self, DpSgd},
	error::{invalid, Error, Result},
	model::Model,
	privacy::{
		self,
		task::{self, Method, TaskPlan, Wishes},
		Accountant, Budget, Mechanism, Release,
	},
	signature,
	train::{self, Tensors, TrainConfig, TrainStats},
};

/// This trainer's privacy plan for a task of `spec` on `samples` local samples trained by
/// `train`: the task's floor and the trainer's wishes, calibrated over all rounds before
/// it bids. `Err(Error::Refused)` where it cannot meet the floor; `Ok(None)` without noise.
pub(crate) fn privacy_plan(
	privacy: &super::PrivacyConfig,
	train: &TrainConfig,
	spec: &TaskSpec,
	samples: usize,
) -> Result<Option<TaskPlan>> {
	let plan = plan_for(
		privacy,
		train,
		task::floor_budget(spec.privacy),
		spec.rounds,
		samples,
	)?;
	if let Some(why) = plan.as_ref().and_then(drowned) {
		return Err(Error::Refused(why));
	}
	Ok(plan)
}

/// The accountant of a (re)started trainer: what `state` records as released, replayed;
/// and the plan pinned in `state`. A plan that differs from the one the task started with
/// (settings, data or training flags changed across a restart) is refused: the remaining
/// rounds would be calibrated for the whole budget.
pub(crate) fn resume_privacy(
	state: &mut crate::state::TaskState,
	plan: Option<&TaskPlan>,
) -> Result<Accountant> {
	let mut accountant = Accountant::new();
	let Some(plan) = plan else {
		if state.privacy_releases.is_empty() {
			return Ok(accountant);
		}
		return Err(Error::Refused(
			"this task started with a privacy plan and the trainer now has none: restart it with the same privacy settings".into(),
		));
	};
	if !state.privacy_plan.is_empty() && state.privacy_plan != plan.plan.per_round {
		return Err(Error::Refused(format!(
			"the privacy plan {:?} differs from the one this task started with {:?}: restart with the same privacy, data and training settings",
			plan.plan.per_round, state.privacy_plan
		)));
	}
	state.privacy_plan = plan.plan.per_round.clone();
	for (_, value) in &state.privacy_releases {
		accountant.record(task::release(plan.method, *value));
	}
	Ok(accountant)
}

/// [`privacy_plan`] for a task of `rounds` rounds whose floor is `floor`.
pub(crate) fn plan_for(
	privacy: &super::PrivacyConfig,
	train: &TrainConfig,
	floor: Option<Budget>,
	rounds: u32,
	samples: usize,
) -> Result<Option<TaskPlan>> {
	let method = match privacy.noise {
		super::Noise::DpSgd => {
			let q = (train.batch_size as f64 / samples.max(1) as f64).min(1.0);
			Method::DpSgd {
				sample_rate: q,
				steps: dpsgd::steps_per_round(train.epochs, q),
			}
		}
		super::Noise::Gaussian => Method::Gaussian,
		super::Noise::Laplace => Method::Laplace,
		super::Noise::Off => Method::Off,
	};
	let wishes = Wishes {
		epsilon: privacy.epsilon,
		delta: privacy.delta,
		noise_multiplier: privacy.noise_multiplier,
		schedule: privacy.schedule(),
	};
	let plan = task::plan_task(floor, rounds, method, &wishes)
		.map_err(|refusal| Error::Refused(refusal.to_string()))?;

	if let Some(plan) = &plan {
		tracing::info!(
			method = ?plan.method,
			epsilon = plan.plan.epsilon,
			budget = plan.budget.epsilon,
			delta = plan.budget.delta,
			first_round_noise = plan.plan.per_round.first().copied().unwrap_or_default(),
			"privacy plan for the task"
		);
	}
	Ok(plan)
}

/// Why output perturbation under `plan` cannot be used: noise so large that no update
/// could pass the contribution screen ([`aggregation::SCREEN_Z`]), so the trainer would
/// stake, train and never be paid. An update clipped to `C` under Gaussian noise of norm
/// `2 z C sqrt(d)` scores at most `1 / (2z)` on the screen; under Laplace noise at `eps` per
/// round at most `eps / (2 sqrt 2)`. DP-SGD's noise is averaged over a whole round of steps
/// and is not limited so.
fn drowned(plan: &TaskPlan) -> Option<String> {
	let z_max = 1.0 / (2.0 * aggregation::SCREEN_Z);
	let eps_min = 2.0 * std::f64::consts::SQRT_2 * aggregation::SCREEN_Z;
	match plan.method {
		Method::Gaussian => plan.plan.per_round.iter().find(|z| **z > z_max).map(|z| {
			format!(
				"output perturbation at this budget needs noise multiplier {z:.3} > {z_max}: the noise would drown every update and the screen would leave it out (unpaid); use --noise dp-sgd"
			)
		}),
		Method::Laplace => plan.plan.per_round.iter().find(|e| **e < eps_min).map(|e| {
			format!(
				"Laplace output perturbation at epsilon {e:.3} per round (< {eps_min:.1}) would drown every update and the screen would leave it out (unpaid); use --noise dp-sgd"
			)
		}),
		Method::DpSgd { .. } | Method::Off => None,
	}
}

/// Output-perturbation mechanism of round `round` under `plan` (`None` for DP-SGD, whose
/// noise is in training, and without a plan).
pub(crate) fn mechanism(
	plan: Option<&TaskPlan>,
	clip: f64,
	round: u32,
) -> Result<Option<Mechanism>> {
	let Some(plan) = plan else { return Ok(None) };
	let value = planned(plan, round)?;
	Ok(match plan.method {
		Method::Gaussian => Some(Mechanism::Gaussian {
			noise_multiplier: value,
			clip,
		}),
		Method::Laplace => Some(Mechanism::Laplace {
			epsilon: value,
			clip,
		}),
		Method::DpSgd { .. } | Method::Off => None,
	})
}

/// The plan's noise of round `round`.
fn planned(plan: &TaskPlan, round: u32) -> Result<f64> {
	plan.plan
		.per_round
		.get(round as usize)
		.copied()
		.ok_or_else(|| invalid(format!("round {round} is beyond the privacy plan")))
}

/// One local round: `global` loaded into `model`, trained on `data` by `config`, with
/// DP-SGD where `plan` says so (noise from `rng`). Returns the update (trained minus
/// `global`), the run's statistics and what DP-SGD released.
pub(crate) fn local_training(
	model: &mut Model,
	global: &[f32],
	data: &Tensors,
	config: &TrainConfig,
	(plan, clip): (Option<&TaskPlan>, f64),
	round: u32,
	rng: &mut impl Rng,
) -> Result<(Vec<f32>, TrainStats, Option<Release>)> {
	let Some((plan, Method::DpSgd { sample_rate, .. })) = plan.map(|p| (p, p.method)) else {
		let (update, stats) = train::local_update(model, global, data, config)?;
		return Ok((update, stats, None));
	};
	if config.weight_decay != 0.0 {
		return Err(invalid(
			"DP-SGD has no weight decay: train with --weight-decay 0",
		));
	}
	model.load_flat(global)?;
	let dp = DpSgd {
		clip,
		noise_multiplier: planned(plan, round)?,
		sample_rate,
		epochs: config.epochs,
		lr: config.lr,
		momentum: config.momentum,
	};
	let (stats, release) = dpsgd::train(model, data, &dp, config.threads, rng)?;
	Ok((model.delta_from(global)?, stats, Some(release)))
}

/// Record `release` in `accountant` unless it would take the total past `plan`'s budget
/// (which a correct plan never does: this is the last line of defence).
pub(crate) fn spend(
	accountant: &mut Accountant,
	plan: Option<&TaskPlan>,
	release: Release,
) -> Result<()> {
	if let Some(plan) = plan {
		let mut after = accountant.clone();
		after.record(release);
		let spent = plan.spent(&after);
		if spent > plan.budget.epsilon * (1.0 + 1e-9) {
			return Err(Error::Refused(format!(
				"this release would spend epsilon {spent:.3}, above the budget {} (delta {:e})",
				plan.budget.epsilon, plan.budget.delta
			)));
		}
	}
	accountant.record(release);
	Ok(())
}

/// What a trainer publishes: `trained` (zeros for a copier) through its `behaviour` (a
/// copier takes `victim`), output perturbation by `privacy` for an update of its own
/// (accounted in `accountant` within the plan's budget), clipped to the task's norm bound
/// less the watermark's share (handed to `keep`), then the PN watermark of `key` at the
/// task's SNR.
#[allow(clippy::too_many_arguments)]
pub(crate) fn publishable(
	behaviour: Behaviour,
	trained: &[f32],
	victim: Option<&[f32]>,
	privacy: Option<(Mechanism, &TaskPlan)>,
	accountant: &mut Accountant,
	(snr_db, bound): (f64, f64),
	key: &Seed,
	rng: &mut impl Rng,
	mut keep: impl FnMut(&[f32]) -> Result<()>,
) -> Result<Vec<f32>> {
	let mut update = behaviour::apply(behaviour, trained, victim, rng)?;
	if let (None, Some((mechanism, plan))) = (victim, privacy) {
		let mut private = update.clone();
		let release = privacy::privatise(&mut private, mechanism, rng)?;
		spend(accountant, Some(plan), release)?;
		update = private;
	}
	privacy::clip_l2(&mut update, signature::norm_before_watermark(bound, snr_db));
	// What the trainer released, before this round's watermark: kept for a retried round.
	keep(&update)?;
	let amplitude = match behaviour {
		Behaviour::Inflate { factor } => factor * privacy::rms(&update),
		_ => signature::amplitude_for_snr(&update, snr_db),
	};
	signature::apply(&mut update, key, amplitude, 1.0);
	if let Behaviour::Inflate { .. } = behaviour {
		// The inflating copier must still fit the norm bound the chain enforces.
		privacy::clip_l2(&mut update, 0.98 * bound);
	}
	Ok(update)
}

/// The next global model from `global` and the revealed updates `clean` (watermarks
/// removed) with their `weights`: the screen leaves out updates that carry no training
/// (noise, empty, sign flips, replays of `previous`, the last global step), then `rule`
/// aggregates the rest. Returns the next model and the indices into `clean` it includes,
/// or `None` when the screen keeps nothing. `who(k)` names the owner of `clean[k]` in logs.
pub(crate) fn next_global(
	global: &[f32],
	clean: Vec<Vec<f32>>,
	weights: &[u128],
	previous: Option<&[f32]>,
	rule: Rule,
	who: &dyn Fn(usize) -> String,
) -> Result<Option<(Vec<f32>, Vec<usize>)>> {
	let screened = aggregation::screen(&clean, previous)?;
	for (k, why) in &screened.dropped {
		tracing::info!(trainer = who(*k), ?why, "update left out by the screen");
	}
	if screened.kept.is_empty() {
		tracing::warn!(
			updates = screened.dropped.len(),
			median_z = aggregation::lowest_and_median(&screened.alignment).1,
			bound = aggregation::SCREEN_Z,
			"the screen kept no update: none aligns with the others beyond chance; under \
			 heavy local-DP noise honest updates look like noise (docs/privacy.md, \
			 \"On the chain\")"
		);
		return Ok(None);
	}
	// Move the kept updates out (`screened.kept` is ascending): no copy of each model.
	let kept: Vec<Vec<f32>> = clean
		.into_iter()
		.enumerate()
		.filter(|(k, _)| screened.kept.binary_search(k).is_ok())
		.map(|(_, u)| u)
		.collect();
	let kept_weights: Vec<u128> = screened.kept.iter().map(|k| weights[*k]).collect();
	let aggregate =
		aggregation::aggregate(&kept, &kept_weights, super::fit_rule(rule, kept.len()))?;
	let next = global
		.iter()
		.zip(&aggregate.values)
		.map(|(g, d)| g + d)
		.collect();
	let included = aggregate
		.included
		.iter()
		.map(|k| screened.kept[*k])
		.collect();
	Ok(Some((next, included)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use crate::runner::{Noise, PrivacyConfig};

	/// A trainer spends its plan round by round and is stopped at the budget: a release
	/// beyond the planned rounds (say, a retried round trained afresh) is refused rather
	/// than accounted past the floor.
	#[test]
	fn a_trainer_never_spends_past_its_budget() {
		let train = TrainConfig {
			epochs: 2,
			batch_size: 64,
			..TrainConfig::default()
		};
		let floor = Some(Budget::new(3.0, 1e-5).unwrap());
		for noise in [Noise::DpSgd, Noise::Gaussian, Noise::Laplace] {
			let privacy = PrivacyConfig {
				noise,
				..PrivacyConfig::default()
			};
			let plan = plan_for(&privacy, &train, floor, 5, 3000).unwrap().unwrap();
			let mut accountant = Accountant::new();
			for round in 0..5 {
				let value = planned(&plan, round).unwrap();
				spend(
					&mut accountant,
					Some(&plan),
					task::release(plan.method, value),
				)
				.unwrap();
			}
			let spent = match noise {
				Noise::Laplace => accountant.pure_epsilon(),
				_ => accountant.epsilon(1e-5),
			};
			assert!(spent <= 3.0 && spent > 2.9, "{noise:?}: {spent}");
			let extra = task::release(plan.method, plan.plan.per_round[0]);
			assert!(matches!(
				spend(&mut accountant, Some(&plan), extra),
				Err(Error::Refused(_))
			));
			assert!(planned(&plan, 5).is_err());
			// The refused release was not recorded.
			assert_eq!(accountant.releases(), 5);
		}
		// Output perturbation takes the plan's noise; DP-SGD none (its noise is in training).
		let dp = plan_for(&PrivacyConfig::default(), &train, floor, 5, 3000)
			.unwrap()
			.unwrap();
		assert_eq!(mechanism(Some(&dp), 1.0, 0).unwrap(), None);
		let gaussian = PrivacyConfig {
			noise: Noise::Gaussian,
			..PrivacyConfig::default()
		};
		let out = plan_for(&gaussian, &train, floor, 5, 3000)
			.unwrap()
			.unwrap();
		assert!(matches!(
			mechanism(Some(&out), 1.0, 4).unwrap(),
			Some(Mechanism::Gaussian { .. })
		));
	}

	/// A trainer restarted mid-task knows what it spent, and cannot change its plan to spend
	/// more: the attack (or mistake) of restarting with `--decay 0.5` after constant rounds.
	#[test]
	fn a_restart_keeps_the_spent_budget_and_the_plan() {
		let train = TrainConfig::default();
		let floor = Some(Budget::new(3.0, 1e-5).unwrap());
		let plan = plan_for(&PrivacyConfig::default(), &train, floor, 5, 3000)
			.unwrap()
			.unwrap();
		let mut state = crate::state::TaskState::default();
		let fresh = resume_privacy(&mut state, Some(&plan)).unwrap();
		assert_eq!(fresh.releases(), 0);
		assert_eq!(state.privacy_plan, plan.plan.per_round);
		state.privacy_releases = vec![(0, plan.plan.per_round[0]), (1, plan.plan.per_round[1])];
		let resumed = resume_privacy(&mut state, Some(&plan)).unwrap();
		assert_eq!(resumed.releases(), 2);
		assert!(resumed.epsilon(1e-5) > 0.0);
		let changed = PrivacyConfig {
			decay: 0.5,
			..PrivacyConfig::default()
		};
		let other = plan_for(&changed, &train, floor, 5, 3000).unwrap().unwrap();
		assert!(matches!(
			resume_privacy(&mut state, Some(&other)),
			Err(Error::Refused(_))
		));
		assert!(matches!(
			resume_privacy(&mut state, None),
			Err(Error::Refused(_))
		));
	}

	/// Output perturbation whose noise no update could survive the screen with is refused
	/// before bidding (the trainer would stake and never be paid); a loose budget is fine.
	#[test]
	fn output_perturbation_that_drowns_updates_is_refused() {
		let train = TrainConfig::default();
		for noise in [Noise::Gaussian, Noise::Laplace] {
			let privacy = PrivacyConfig {
				noise,
				..PrivacyConfig::default()
			};
			let tight = Some(Budget::new(3.0, 1e-5).unwrap());
			let tight = plan_for(&privacy, &train, tight, 5, 3000).unwrap().unwrap();
			assert!(drowned(&tight).is_some(), "{noise:?}");
			let loose = Some(Budget::new(5000.0, 1e-5).unwrap());
			let loose = plan_for(&privacy, &train, loose, 5, 3000).unwrap().unwrap();
			assert_eq!(drowned(&loose), None, "{noise:?}");
		}
	}
}
