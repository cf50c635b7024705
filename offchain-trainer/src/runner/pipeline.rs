//! The two steps of a round that do not touch the chain, shared by the runner and by the
//! chain-free baseline ([`super::baseline`]) so that both learn through the very same code:
//! turning a trained (or copied) update into what a trainer publishes, and turning the
//! revealed updates into the next global model.

use blade_fl_primitives::pn::Seed;
use rand::Rng;

use crate::{
	aggregation::{self, Rule},
	behaviour::{self, Behaviour},
	error::Result,
	privacy::{self, Accountant, AdaptiveNoise, Mechanism},
	signature,
};

/// Local-DP mechanism of `config` at `epsilon` this round.
pub(crate) fn mechanism(config: &super::PrivacyConfig, epsilon: f64) -> Mechanism {
	match config.noise {
		super::Noise::Gaussian => Mechanism::Gaussian {
			epsilon,
			delta: config.delta,
			clip: config.clip,
		},
		super::Noise::Laplace => Mechanism::Laplace {
			epsilon,
			clip: config.clip,
		},
		super::Noise::Off => Mechanism::Off,
	}
}

/// The adaptive local-DP state of a trainer with `config` on a task whose per-round cap is
/// `max_epsilon`; `None` without noise.
pub(crate) fn adaptive_noise(
	config: &super::PrivacyConfig,
	max_epsilon: f64,
) -> Result<Option<AdaptiveNoise>> {
	Ok(match config.noise {
		super::Noise::Off => None,
		_ => Some(AdaptiveNoise::new(
			config.epsilon.unwrap_or(max_epsilon),
			max_epsilon,
			config.growth,
			config.patience,
		)?),
	})
}

/// What a trainer publishes: `trained` (zeros for a copier) through its `behaviour` (a
/// copier takes `victim`), local DP by `privacy` for an update of its own (accounted in
/// `accountant`), clipped to the task's norm bound less the watermark's share, then the
/// PN watermark of `key` at the task's SNR.
#[allow(clippy::too_many_arguments)]
pub(crate) fn publishable(
	behaviour: Behaviour,
	trained: &[f32],
	victim: Option<&[f32]>,
	privacy: Option<Mechanism>,
	accountant: &mut Accountant,
	(snr_db, bound): (f64, f64),
	key: &Seed,
	rng: &mut impl Rng,
) -> Result<Vec<f32>> {
	let mut update = behaviour::apply(behaviour, trained, victim, rng)?;
	if let (None, Some(mechanism)) = (victim, privacy) {
		let release = privacy::privatise(&mut update, mechanism, rng)?;
		accountant.record(release);
	}
	privacy::clip_l2(&mut update, signature::norm_before_watermark(bound, snr_db));
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
