//! Local differential privacy for model updates.
//!
//! The protected object is the trainer's whole update: two neighbouring inputs are any
//! two updates inside the clipping ball, so the sensitivity is twice the clipping norm
//! (`2C` in L2 for the Gaussian mechanism, `2C` in L1 for the Laplace mechanism).
//!
//! - Gaussian mechanism with per-client `(epsilon, delta)`: the noise is calibrated through
//!   Rényi DP, which is sound for every epsilon (the classic `sqrt(2 ln(1.25/delta))/eps`
//!   bound only holds for `eps < 1`). One release of `N(0, sigma^2)` with sensitivity `D`
//!   is `(alpha, alpha D^2 / (2 sigma^2))`-RDP for all `alpha > 1`; converting with
//!   `eps = rdp(alpha) + ln(1/delta) / (alpha - 1)` and optimising `alpha` gives
//!   `eps = rho + 2 sqrt(rho ln(1/delta))` with `rho = D^2 / (2 sigma^2)`, which we invert.
//! - Laplace mechanism with per-client `epsilon`: `Lap(2C / eps)` per coordinate after L1
//!   clipping, pure `eps`-DP per release.
//! - [`AdaptiveNoise`]: the paper's adaptive decay: when validation accuracy stops
//!   improving for `patience` rounds the per-round epsilon grows by `growth` (less noise),
//!   never beyond the task's privacy floor `max_epsilon`.
//! - [`Accountant`]: Rényi-DP accountant over a fixed grid of orders (Mironov 2017; the
//!   Laplace mechanism's RDP curve from the same paper), composed additively over rounds
//!   and converted to `(epsilon, delta)`; it also reports the pure-DP sum of Laplace
//!   releases.

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

/// Gaussian noise standard deviation for one `(epsilon, delta)` release with L2
/// sensitivity `sensitivity` (RDP calibration, see the module docs).
pub fn gaussian_sigma(epsilon: f64, delta: f64, sensitivity: f64) -> Result<f64> {
	let valid =
		epsilon > 0.0 && epsilon.is_finite() && delta > 0.0 && delta < 1.0 && sensitivity > 0.0;
	if !valid {
		return Err(invalid(format!(
			"Gaussian mechanism needs eps > 0, 0 < delta < 1, sensitivity > 0 (got {epsilon}, {delta}, {sensitivity})"
		)));
	}
	let l = (1.0 / delta).ln();
	let rho = ((l + epsilon).sqrt() - l.sqrt()).powi(2);
	Ok(sensitivity / (2.0 * rho).sqrt())
}

/// Which mechanism protects the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mechanism {
	/// Clip to L2 norm `clip`, add `N(0, sigma^2)` calibrated to `(epsilon, delta)`.
	Gaussian {
		/// Per-release epsilon.
		epsilon: f64,
		/// Per-release delta.
		delta: f64,
		/// L2 clipping norm `C`.
		clip: f64,
	},
	/// Clip to L1 norm `clip`, add `Lap(2C / epsilon)` per coordinate.
	Laplace {
		/// Per-release epsilon.
		epsilon: f64,
		/// L1 clipping norm `C`.
		clip: f64,
	},
	/// No noise (must be chosen explicitly).
	Off,
}

/// What one privatised release did: the noise scale it used.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Release {
	/// Gaussian noise: standard deviation over sensitivity (`sigma / 2C`).
	Gaussian {
		/// `sigma / sensitivity`.
		noise_multiplier: f64,
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
			epsilon,
			delta,
			clip,
		} => {
			if clip <= 0.0 {
				return Err(invalid("clipping norm must be positive"));
			}
			clip_l2(values, clip);
			let sensitivity = 2.0 * clip;
			let sigma = gaussian_sigma(epsilon, delta, sensitivity)?;
			let normal = Normal::new(0.0, sigma).map_err(|e| invalid(e.to_string()))?;
			values
				.iter_mut()
				.for_each(|v| *v += normal.sample(rng) as f32);
			Ok(Release::Gaussian {
				noise_multiplier: sigma / sensitivity,
			})
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

/// The paper's adaptive noise decay: less noise once accuracy stops improving.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveNoise {
	/// Current per-round epsilon.
	pub epsilon: f64,
	/// The task's privacy floor: the per-round epsilon never exceeds it.
	pub max_epsilon: f64,
	/// Factor applied to epsilon on a plateau (> 1 lowers the noise).
	pub growth: f64,
	/// Rounds without improvement that make a plateau.
	pub patience: u32,
	/// Smallest accuracy gain that counts as improvement.
	pub min_gain: f64,
	best: f64,
	stale: u32,
}

impl AdaptiveNoise {
	/// Start at `epsilon`, capped by `max_epsilon`.
	pub fn new(epsilon: f64, max_epsilon: f64, growth: f64, patience: u32) -> Result<Self> {
		let valid = epsilon > 0.0 && max_epsilon > 0.0 && growth >= 1.0 && patience > 0;
		if !valid {
			return Err(invalid(
				"adaptive noise needs eps > 0, max_eps > 0, growth >= 1, patience >= 1",
			));
		}
		Ok(AdaptiveNoise {
			epsilon: epsilon.min(max_epsilon),
			max_epsilon,
			growth,
			patience,
			min_gain: 1e-3,
			best: f64::NEG_INFINITY,
			stale: 0,
		})
	}

	/// Record this round's validation accuracy; returns the epsilon for the next round.
	pub fn observe(&mut self, accuracy: f64) -> f64 {
		if accuracy > self.best + self.min_gain {
			self.best = accuracy;
			self.stale = 0;
		} else {
			self.stale += 1;
			if self.stale >= self.patience {
				self.epsilon = (self.epsilon * self.growth).min(self.max_epsilon);
				self.stale = 0;
			}
		}
		self.epsilon
	}
}

/// Rényi-DP accountant over rounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accountant {
	rdp: Vec<f64>,
	pure_epsilon: f64,
	releases: u32,
}

/// Orders `alpha` of the accountant's grid.
pub fn orders() -> Vec<f64> {
	let mut a: Vec<f64> = (0..=100).map(|i| 1.05 + 0.05 * f64::from(i)).collect();
	a.extend((7..=64).map(f64::from));
	a.extend([80.0, 96.0, 128.0, 192.0, 256.0, 512.0, 1024.0]);
	a
}

impl Accountant {
	/// An accountant with nothing spent.
	pub fn new() -> Self {
		Accountant {
			rdp: vec![0.0; orders().len()],
			pure_epsilon: 0.0,
			releases: 0,
		}
	}

	/// Add one release.
	pub fn record(&mut self, release: Release) {
		if self.rdp.is_empty() {
			*self = Accountant::new();
		}
		for (rdp, alpha) in self.rdp.iter_mut().zip(orders()) {
			*rdp += match release {
				Release::Gaussian { noise_multiplier } => alpha / (2.0 * noise_multiplier.powi(2)),
				Release::Laplace { epsilon } => laplace_rdp(alpha, 1.0 / epsilon).min(epsilon),
				Release::None => 0.0,
			};
		}
		match release {
			Release::Laplace { epsilon } => self.pure_epsilon += epsilon,
			Release::Gaussian { .. } => self.pure_epsilon = f64::INFINITY,
			Release::None => {}
		}
		self.releases += 1;
	}

	/// Releases recorded.
	pub fn releases(&self) -> u32 {
		self.releases
	}

	/// Cumulative `(epsilon, delta)` guarantee: `min over alpha of rdp + ln(1/delta)/(alpha-1)`.
	pub fn epsilon(&self, delta: f64) -> f64 {
		let l = (1.0 / delta).ln();
		let rdp = self
			.rdp
			.iter()
			.zip(orders())
			.map(|(r, a)| r + l / (a - 1.0))
			.fold(f64::INFINITY, f64::min);
		rdp.min(self.pure_epsilon)
	}

	/// Cumulative pure epsilon when only Laplace (or no) noise was used; infinite otherwise.
	pub fn pure_epsilon(&self) -> f64 {
		self.pure_epsilon
	}
}

/// RDP of the Laplace mechanism with scale `lambda` relative to the L1 sensitivity
/// (Mironov 2017, Prop. 6), for order `alpha > 1`.
fn laplace_rdp(alpha: f64, lambda: f64) -> f64 {
	let a = alpha / (2.0 * alpha - 1.0) * ((alpha - 1.0) / lambda).exp();
	let b = (alpha - 1.0) / (2.0 * alpha - 1.0) * (-alpha / lambda).exp();
	(a + b).ln() / (alpha - 1.0)
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
		let release = privatise(
			&mut v,
			Mechanism::Gaussian {
				epsilon: 4.0,
				delta: 1e-5,
				clip: 0.5,
			},
			&mut rng(),
		)
		.unwrap();
		let sigma = gaussian_sigma(4.0, 1e-5, 1.0).unwrap();
		let measured = std_dev(&v);
		assert!(
			(measured / sigma - 1.0).abs() < 0.01,
			"{measured} vs {sigma}"
		);
		assert_eq!(
			release,
			Release::Gaussian {
				noise_multiplier: sigma
			}
		);
		// The calibration is exact: one release accounts to the requested epsilon.
		let mut acc = Accountant::new();
		acc.record(release);
		assert!(
			(acc.epsilon(1e-5) - 4.0).abs() < 0.02,
			"{}",
			acc.epsilon(1e-5)
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
		// Gaussian, noise multiplier 1, one release, delta 1e-5: the optimum over alpha is
		// rho + 2 sqrt(rho ln(1/delta)) with rho = 1/2, i.e. 5.2985.
		let mut acc = Accountant::new();
		acc.record(Release::Gaussian {
			noise_multiplier: 1.0,
		});
		assert!(
			(acc.epsilon(1e-5) - 5.2985).abs() < 0.01,
			"{}",
			acc.epsilon(1e-5)
		);
		// Ten releases compose like rho = 5.
		for _ in 0..9 {
			acc.record(Release::Gaussian {
				noise_multiplier: 1.0,
			});
		}
		let rho: f64 = 5.0;
		let reference = rho + 2.0 * (rho * (1e5f64).ln()).sqrt();
		assert!(
			(acc.epsilon(1e-5) - reference).abs() < 0.02,
			"{} vs {reference}",
			acc.epsilon(1e-5)
		);
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
	fn adaptive_decay_lowers_noise_on_a_plateau_up_to_the_floor() {
		let mut a = AdaptiveNoise::new(1.0, 3.0, 1.5, 2).unwrap();
		assert_eq!(a.observe(0.5), 1.0);
		assert_eq!(a.observe(0.6), 1.0);
		assert_eq!(a.observe(0.6), 1.0);
		assert_eq!(a.observe(0.6), 1.5);
		assert_eq!(a.observe(0.6), 1.5);
		assert_eq!(a.observe(0.6), 2.25);
		for _ in 0..10 {
			a.observe(0.6);
		}
		assert_eq!(a.epsilon, 3.0);
		assert!(AdaptiveNoise::new(1.0, 3.0, 0.5, 2).is_err());
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
				epsilon: 0.0,
				delta: 1e-5,
				clip: 1.0
			},
			&mut rng()
		)
		.is_err());
	}
}
