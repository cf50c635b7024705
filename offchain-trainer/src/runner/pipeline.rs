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
	plan_for(
		privacy,
		train,
		task::floor_budget(spec.privacy),
		spec.rounds,
		samples,
	)
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
		let spent = match plan.method {
			Method::Laplace => after.pure_epsilon(),
			_ => after.epsilon(plan.budget.delta),
		};
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
}
