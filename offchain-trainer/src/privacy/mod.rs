//! Differential privacy for trainers: the accountant, the budget plan, and the
//! output-perturbation mechanism.
//!
//! Two mechanisms protect a trainer's data, and they protect different things:
//!
//! - **DP-SGD** (record-level, the default; [`crate::dpsgd`]): every training step clips
//!   each sample's gradient to L2 norm `C` and adds `N(0, (z C)^2)` to their sum, with
//!   Poisson sampling at rate `q`. Two neighbouring data sets differ in **one training
//!   record**; the guarantee covers every step of every round of the task, accounted with
//!   the sampled Gaussian mechanism's RDP ([`rdp::sampled_gaussian`]).
//! - **Output perturbation** (the paper's mechanism, user-level): the whole update is
//!   clipped to `C` and noise is added once per round: Gaussian `N(0, (z 2C)^2)` (L2) or
//!   Laplace `Lap(2C / eps)` per coordinate (L1). Neighbours are **any two updates** inside
//!   the clipping ball, i.e. the trainer's whole data set may change: a much stronger
//!   unit, which is why it needs so much more noise for the same epsilon.
//!
//! Either way the trainer has one **budget** `(epsilon, delta)` for the whole task: the
//! task's privacy floor (or the trainer's own, if smaller). [`plan_output`] and
//! [`plan_dp_sgd`] calibrate the noise of every round *before the trainer bids* so that all
//! rounds together spend at most the budget; a trainer that cannot (no noise, or a noise
//! multiplier fixed too low) refuses the task. The schedule is constant, or **adaptive**:
//! the paper's decay, noise falling by a fixed factor each round (more noise early, when
//! updates are large, less as the model converges), calibrated so the total is the same.
//!
//! [`Accountant`] composes what was actually released (Rényi DP over a grid of orders,
//! [`rdp`]) and converts to `(epsilon, delta)`; Laplace releases also compose purely.

pub mod rdp;
pub mod task;

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{invalid, Result};

/// L2 norm.
pub fn l2_norm(values: &[f32]) -> f64 {
	values
		.iter()
		.map(|v| f64::from(*v).powi(2))
		.sum::<f64>()
		.sqrt()
}

/// Root mean square of the values (0 for none).
pub fn rms(values: &[f32]) -> f64 {
	l2_norm(values) / (values.len().max(1) as f64).sqrt()
}

/// L1 norm.
pub fn l1_norm(values: &[f32]) -> f64 {
	values.iter().map(|v| f64::from(v.abs())).sum()
}

/// Scale `values` down so their L2 norm is at most `clip`; returns the factor applied.
pub fn clip_l2(values: &mut [f32], clip: f64) -> f64 {
	scale_to(values, l2_norm(values), clip)
}

/// Scale `values` down so their L1 norm is at most `clip`; returns the factor applied.
pub fn clip_l1(values: &mut [f32], clip: f64) -> f64 {
	scale_to(values, l1_norm(values), clip)
}

fn scale_to(values: &mut [f32], norm: f64, clip: f64) -> f64 {
	if norm <= clip || norm == 0.0 {
		return 1.0;
	}
	// Round the factor down in f32 so the clipped norm never exceeds `clip`.
	let factor = (clip / norm) as f32 * (1.0 - 2.0 * f32::EPSILON);
	values.iter_mut().for_each(|v| *v *= factor);
	f64::from(factor)
}

/// Output perturbation of one update (the paper's mechanism; see the module docs for its
/// privacy unit).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mechanism {
	/// Clip to L2 norm `clip`, add `N(0, (noise_multiplier * 2 clip)^2)` per coordinate.
	Gaussian {
		/// Noise standard deviation over the L2 sensitivity `2 clip`.
		noise_multiplier: f64,
		/// L2 clipping norm `C`.
		clip: f64,
	},
	/// Clip to L1 norm `clip`, add `Lap(2 clip / epsilon)` per coordinate.
	Laplace {
		/// This release's pure epsilon.
		epsilon: f64,
		/// L1 clipping norm `C`.
		clip: f64,
	},
	/// No noise (must be chosen explicitly).
	Off,
}

/// What one privatised release cost, for the [`Accountant`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Release {
	/// One Gaussian release with this noise multiplier (standard deviation over sensitivity).
	Gaussian {
		/// `sigma / sensitivity`.
		noise_multiplier: f64,
	},
	/// `steps` DP-SGD steps: sampled Gaussian mechanism.
	SampledGaussian {
		/// Poisson sampling rate `q` (expected batch over the data set's size).
		sample_rate: f64,
		/// Noise standard deviation over the per-sample clipping norm.
		noise_multiplier: f64,
		/// Steps taken.
		steps: u64,
	},
	/// Laplace noise with pure `epsilon`.
	Laplace {
		/// The release's epsilon.
		epsilon: f64,
	},
	/// Nothing added.
	None,
}

/// Clip `values` and add noise per `mechanism` with `rng`; returns what to account.
pub fn privatise(values: &mut [f32], mechanism: Mechanism, rng: &mut impl Rng) -> Result<Release> {
	match mechanism {
		Mechanism::Gaussian {
			noise_multiplier,
			clip,
		} => {
			if !(clip > 0.0 && noise_multiplier > 0.0 && noise_multiplier.is_finite()) {
				return Err(invalid(format!(
					"Gaussian mechanism needs a positive clipping norm and noise multiplier (got {clip}, {noise_multiplier})"
				)));
			}
			clip_l2(values, clip);
			let sigma = noise_multiplier * 2.0 * clip;
			let normal = Normal::new(0.0, sigma).map_err(|e| invalid(e.to_string()))?;
			values
				.iter_mut()
				.for_each(|v| *v += normal.sample(rng) as f32);
			Ok(Release::Gaussian { noise_multiplier })
		}
		Mechanism::Laplace { epsilon, clip } => {
			if clip <= 0.0 || !(epsilon > 0.0 && epsilon.is_finite()) {
				return Err(invalid(
					"Laplace mechanism needs eps > 0 and a positive clipping norm",
				));
			}
			clip_l1(values, clip);
			let b = 2.0 * clip / epsilon;
			values.iter_mut().for_each(|v| *v += laplace(b, rng) as f32);
			Ok(Release::Laplace { epsilon })
		}
		Mechanism::Off => Ok(Release::None),
	}
}

/// One draw of Laplace(0, b) by inversion.
fn laplace(b: f64, rng: &mut impl Rng) -> f64 {
	let u: f64 = rng.gen_range(-0.5..0.5);
	-b * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()
}

/// Rényi-DP accountant over everything a trainer released in a task.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accountant {
	rdp: Vec<f64>,
	pure_epsilon: f64,
	releases: u32,
}

impl Accountant {
	/// An accountant with nothing spent.
	pub fn new() -> Self {
		Accountant {
			rdp: vec![0.0; rdp::orders().len()],
			pure_epsilon: 0.0,
			releases: 0,
		}
	}

	/// Add one release.
	pub fn record(&mut self, release: Release) {
		if self.rdp.is_empty() {
			*self = Accountant::new();
		}
		for (total, alpha) in self.rdp.iter_mut().zip(rdp::orders()) {
			*total += match release {
				Release::Gaussian { noise_multiplier } => rdp::gaussian(alpha, noise_multiplier),
				Release::SampledGaussian {
					sample_rate,
					noise_multiplier,
					steps,
				} => steps as f64 * rdp::sampled_gaussian(alpha, sample_rate, noise_multiplier),
				Release::Laplace { epsilon } => rdp::laplace(alpha, 1.0 / epsilon),
				Release::None => 0.0,
			};
		}
		match release {
			Release::Laplace { epsilon } => self.pure_epsilon += epsilon,
			Release::Gaussian { .. } | Release::SampledGaussian { .. } => {
				self.pure_epsilon = f64::INFINITY
			}
			Release::None => {}
		}
		self.releases += 1;
	}

	/// Releases recorded.
	pub fn releases(&self) -> u32 {
		self.releases
	}

	/// Cumulative `(epsilon, delta)` guarantee (the best of the RDP bound and, for Laplace
	/// alone, pure composition).
	pub fn epsilon(&self, delta: f64) -> f64 {
		if self.releases == 0 {
			return 0.0;
		}
		rdp::to_epsilon(&self.rdp, delta).0.min(self.pure_epsilon)
	}

	/// Cumulative pure epsilon when only Laplace (or no) noise was used; infinite otherwise.
	pub fn pure_epsilon(&self) -> f64 {
		self.pure_epsilon
	}
}

/// A privacy budget for a whole task: `(epsilon, delta)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
	/// Total epsilon.
	pub epsilon: f64,
	/// Delta.
	pub delta: f64,
}

impl Budget {
	/// A budget, checked: `epsilon > 0` finite, `0 < delta < 1`.
	pub fn new(epsilon: f64, delta: f64) -> Result<Budget> {
		if !(epsilon > 0.0 && epsilon.is_finite() && delta > 0.0 && delta < 1.0) {
			return Err(invalid(format!(
				"a privacy budget needs epsilon > 0 and 0 < delta < 1 (got {epsilon}, {delta})"
			)));
		}
		Ok(Budget { epsilon, delta })
	}
}

/// How the noise is spread over the rounds of a task.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
	/// The same noise every round.
	Constant,
	/// The paper's adaptive decay: the noise multiplier of round `k` is `decay^k` times the
	/// first round's (`0 < decay <= 1`), the first round's calibrated so that the total is
	/// the budget.
	Adaptive {
		/// Per-round factor of the noise multiplier.
		decay: f64,
	},
}

impl Schedule {
	/// Relative noise of round `round`.
	fn factor(self, round: u32) -> f64 {
		match self {
			Schedule::Constant => 1.0,
			Schedule::Adaptive { decay } => decay.powi(round as i32),
		}
	}

	fn check(self) -> Result<()> {
		match self {
			Schedule::Adaptive { decay } if !(decay > 0.0 && decay <= 1.0) => Err(invalid(
				format!("adaptive decay must be in (0, 1], got {decay}"),
			)),
			_ => Ok(()),
		}
	}
}

/// The noise of every round of a task, calibrated to a budget.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
	/// Per round: the noise multiplier (Gaussian, DP-SGD) or the epsilon (Laplace).
	pub per_round: Vec<f64>,
	/// What the plan spends over all rounds at the budget's delta (pure epsilon for Laplace).
	pub epsilon: f64,
}

/// Output perturbation over `rounds` rounds within `budget`: Gaussian noise multipliers
/// (`laplace == false`) or Laplace epsilons per round.
pub fn plan_output(budget: Budget, rounds: u32, schedule: Schedule, laplace: bool) -> Result<Plan> {
	schedule.check()?;
	if rounds == 0 {
		return Err(invalid("a task has at least one round"));
	}
	if laplace {
		// Pure composition: epsilon_k proportional to 1 / factor_k, summing to the budget.
		let weights: Vec<f64> = (0..rounds).map(|k| 1.0 / schedule.factor(k)).collect();
		let sum: f64 = weights.iter().sum();
		// A hair under the budget so rounding never overspends it.
		let scale = budget.epsilon * (1.0 - 1e-9) / sum;
		let per_round: Vec<f64> = weights.iter().map(|w| w * scale).collect();
		let epsilon = per_round.iter().sum();
		return Ok(Plan { per_round, epsilon });
	}
	calibrate(budget, rounds, schedule, |z| Release::Gaussian {
		noise_multiplier: z,
	})
}

/// DP-SGD over `rounds` rounds of `steps` steps each at sampling rate `sample_rate`,
/// within `budget`: the noise multiplier of each round.
pub fn plan_dp_sgd(
	budget: Budget,
	rounds: u32,
	steps: u64,
	sample_rate: f64,
	schedule: Schedule,
) -> Result<Plan> {
	schedule.check()?;
	if rounds == 0 || steps == 0 || !(sample_rate > 0.0 && sample_rate <= 1.0) {
		return Err(invalid(format!(
			"DP-SGD needs rounds, steps and a sampling rate in (0, 1] (got {rounds}, {steps}, {sample_rate})"
		)));
	}
	calibrate(budget, rounds, schedule, |z| Release::SampledGaussian {
		sample_rate,
		noise_multiplier: z,
		steps,
	})
}

/// Smallest first-round noise multiplier `z0` such that the releases `release(z0 *
/// factor_k)` of all rounds account to at most the budget (bisection in `ln z0`).
fn calibrate(
	budget: Budget,
	rounds: u32,
	schedule: Schedule,
	release: impl Fn(f64) -> Release,
) -> Result<Plan> {
	let spend = |z0: f64| {
		let mut acc = Accountant::new();
		for k in 0..rounds {
			acc.record(release(z0 * schedule.factor(k)));
		}
		acc.epsilon(budget.delta)
	};
	let (mut lo, mut hi) = (1e-3f64, 1e4f64);
	if spend(hi) > budget.epsilon {
		return Err(invalid(format!(
			"no noise below {hi:e} times the sensitivity meets epsilon {} over {rounds} rounds",
			budget.epsilon
		)));
	}
	if spend(lo) <= budget.epsilon {
		hi = lo;
	}
	for _ in 0..80 {
		if hi / lo < 1.0 + 1e-7 {
			break;
		}
		let mid = (lo * hi).sqrt();
		if spend(mid) <= budget.epsilon {
			hi = mid;
		} else {
			lo = mid;
		}
	}
	Ok(Plan {
		per_round: (0..rounds).map(|k| hi * schedule.factor(k)).collect(),
		epsilon: spend(hi),
	})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use rand::SeedableRng;

	fn rng() -> rand_chacha::ChaCha8Rng {
		rand_chacha::ChaCha8Rng::seed_from_u64(42)
	}

	fn std_dev(v: &[f32]) -> f64 {
		let mean = v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len() as f64;
		(v.iter()
			.map(|x| (f64::from(*x) - mean).powi(2))
			.sum::<f64>()
			/ v.len() as f64)
			.sqrt()
	}

	#[test]
	fn clipping_bounds_the_norm() {
		let mut v: Vec<f32> = (0..1000).map(|i| (i as f32).sin() * 3.0).collect();
		assert!(clip_l2(&mut v, 1.0) < 1.0);
		assert!(l2_norm(&v) <= 1.0);
		let mut small = vec![0.1f32; 4];
		assert_eq!(clip_l2(&mut small, 1.0), 1.0);
		let mut w: Vec<f32> = (0..1000).map(|i| (i as f32).cos()).collect();
		clip_l1(&mut w, 2.0);
		assert!(l1_norm(&w) <= 2.0);
	}

	#[test]
	fn gaussian_noise_matches_its_formula() {
		let n = 200_000;
		let mut v = vec![0f32; n];
		let mechanism = Mechanism::Gaussian {
			noise_multiplier: 1.5,
			clip: 0.5,
		};
		let release = privatise(&mut v, mechanism, &mut rng()).unwrap();
		// sigma = z * 2C = 1.5.
		let measured = std_dev(&v);
		assert!((measured / 1.5 - 1.0).abs() < 0.01, "{measured}");
		assert_eq!(
			release,
			Release::Gaussian {
				noise_multiplier: 1.5
			}
		);
	}

	#[test]
	fn laplace_noise_matches_its_formula() {
		let n = 200_000;
		let mut v = vec![0f32; n];
		privatise(
			&mut v,
			Mechanism::Laplace {
				epsilon: 2.0,
				clip: 1.0,
			},
			&mut rng(),
		)
		.unwrap();
		let b = 2.0 * 1.0 / 2.0;
		let measured = std_dev(&v);
		assert!(
			(measured / (2f64.sqrt() * b) - 1.0).abs() < 0.01,
			"{measured}"
		);
	}

	#[test]
	fn accountant_matches_reference_values() {
		// Gaussian, noise multiplier 1, one release, delta 1e-5: Opacus 1.6.0 gives 4.7285
		// (the same release as a sampled Gaussian at q = 1).
		let mut acc = Accountant::new();
		assert_eq!(acc.epsilon(1e-5), 0.0);
		acc.record(Release::Gaussian {
			noise_multiplier: 1.0,
		});
		assert!(
			(acc.epsilon(1e-5) - 4.728_507).abs() < 1e-3,
			"{}",
			acc.epsilon(1e-5)
		);
		// DP-SGD steps recorded in two parts compose like one run (Opacus: 2.5966 for
		// q = 256/60000, sigma 1.1, 14 062 steps, delta 1e-5).
		let mut sgd = Accountant::new();
		for steps in [7_000, 7_062] {
			sgd.record(Release::SampledGaussian {
				sample_rate: 256.0 / 60000.0,
				noise_multiplier: 1.1,
				steps,
			});
		}
		assert!((sgd.epsilon(1e-5) / 2.596_555_87 - 1.0).abs() < 1e-4);
		// Laplace: pure composition 3 x 0.5 = 1.5, and the RDP bound never exceeds it.
		let mut lap = Accountant::new();
		for _ in 0..3 {
			lap.record(Release::Laplace { epsilon: 0.5 });
		}
		assert_eq!(lap.pure_epsilon(), 1.5);
		assert!(lap.epsilon(1e-5) <= 1.5);
		assert!(lap.epsilon(1e-5) > 0.0);
	}

	#[test]
	fn plans_spend_the_budget_and_no_more() {
		let budget = Budget::new(3.0, 1e-5).unwrap();
		for schedule in [Schedule::Constant, Schedule::Adaptive { decay: 0.8 }] {
			let dp = plan_dp_sgd(budget, 10, 470, 64.0 / 3000.0, schedule).unwrap();
			assert!(dp.epsilon <= 3.0 && dp.epsilon > 2.99, "{dp:?}");
			let out = plan_output(budget, 10, schedule, false).unwrap();
			assert!(out.epsilon <= 3.0 && out.epsilon > 2.99, "{out:?}");
			let lap = plan_output(budget, 10, schedule, true).unwrap();
			assert!(lap.epsilon <= 3.0 && lap.epsilon > 2.999, "{lap:?}");
			// Replaying the plan through the accountant spends what it says.
			let mut acc = Accountant::new();
			for z in &dp.per_round {
				acc.record(Release::SampledGaussian {
					sample_rate: 64.0 / 3000.0,
					noise_multiplier: *z,
					steps: 470,
				});
			}
			assert!((acc.epsilon(1e-5) - dp.epsilon).abs() < 1e-12);
		}
		// Adaptive: less noise every round, more than constant at first.
		let constant = plan_output(budget, 5, Schedule::Constant, false).unwrap();
		let adaptive = plan_output(budget, 5, Schedule::Adaptive { decay: 0.8 }, false).unwrap();
		assert!(adaptive.per_round.windows(2).all(|w| w[1] < w[0]));
		assert!(adaptive.per_round[0] > constant.per_round[0]);
		assert!(adaptive.per_round[4] < constant.per_round[4]);
		// More rounds at the same budget need more noise per round.
		let longer = plan_output(budget, 20, Schedule::Constant, false).unwrap();
		assert!(longer.per_round[0] > constant.per_round[0]);
		assert!(Budget::new(0.0, 1e-5).is_err());
		assert!(Budget::new(1.0, 1.0).is_err());
		assert!(plan_output(budget, 5, Schedule::Adaptive { decay: 1.5 }, false).is_err());
	}

	#[test]
	fn off_is_explicit_and_adds_nothing() {
		let mut v = vec![1.0f32; 10];
		assert_eq!(
			privatise(&mut v, Mechanism::Off, &mut rng()).unwrap(),
			Release::None
		);
		assert_eq!(v, vec![1.0; 10]);
		assert!(privatise(
			&mut v,
			Mechanism::Gaussian {
				noise_multiplier: 0.0,
				clip: 1.0
			},
			&mut rng()
		)
		.is_err());
	}
}
