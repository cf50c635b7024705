//! Rényi differential privacy of the mechanisms the trainer uses, and the conversion to
//! `(epsilon, delta)`.
//!
//! - Gaussian mechanism with noise multiplier `z` (noise standard deviation over the L2
//!   sensitivity): `alpha / (2 z^2)` (Mironov 2017, Prop. 7).
//! - **Sampled Gaussian mechanism** (DP-SGD with Poisson sampling at rate `q`): Mironov,
//!   Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian Mechanism",
//!   Section 3.3: the closed sum for integer orders and the two-sided series for fractional
//!   orders, both evaluated in log space.
//! - Laplace mechanism with scale `lambda` relative to the L1 sensitivity (Mironov 2017,
//!   Prop. 6).
//! - Conversion (Balle et al. 2020, "Hypothesis testing interpretations and Rényi
//!   differential privacy", Thm. 21): `eps = rdp - (ln delta + ln alpha) / (alpha - 1) +
//!   ln((alpha - 1) / alpha)`, minimised over the orders. This is the conversion Opacus and
//!   TF-Privacy use, so the figures here can be compared with theirs one to one.

/// The orders `alpha` the accountant tracks: Opacus's default grid (1.1 .. 10.9 in steps of
/// 0.1, then 12 .. 63) and a few large orders for very small epsilons.
pub fn orders() -> Vec<f64> {
	let mut a: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
	a.extend((12..64).map(f64::from));
	a.extend([80.0, 96.0, 128.0, 256.0, 512.0, 1024.0]);
	a
}

/// RDP of one Gaussian release with noise multiplier `z` at order `alpha`.
pub fn gaussian(alpha: f64, z: f64) -> f64 {
	alpha / (2.0 * z * z)
}

/// RDP of the Laplace mechanism with scale `lambda` relative to the L1 sensitivity, for
/// order `alpha > 1` (never more than the pure epsilon `1 / lambda`).
pub fn laplace(alpha: f64, lambda: f64) -> f64 {
	let log_a = (alpha / (2.0 * alpha - 1.0)).ln() + (alpha - 1.0) / lambda;
	let log_b = ((alpha - 1.0) / (2.0 * alpha - 1.0)).ln() - alpha / lambda;
	(log_add(log_a, log_b) / (alpha - 1.0)).min(1.0 / lambda)
}

/// RDP of one step of the sampled Gaussian mechanism (sampling rate `q`, noise multiplier
/// `z`) at order `alpha > 1`.
pub fn sampled_gaussian(alpha: f64, q: f64, z: f64) -> f64 {
	if q <= 0.0 {
		return 0.0;
	}
	if q >= 1.0 {
		return gaussian(alpha, z);
	}
	if z <= 0.0 {
		return f64::INFINITY;
	}
	let log_a = if alpha.fract() == 0.0 {
		log_a_integer(alpha as u64, q, z)
	} else {
		log_a_fractional(alpha, q, z)
	};
	(log_a / (alpha - 1.0)).max(0.0)
}

/// `ln A_alpha` for integer `alpha`: `sum_k C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2-k)/(2z^2))`.
fn log_a_integer(alpha: u64, q: f64, z: f64) -> f64 {
	let (lq, l1q) = (q.ln(), (-q).ln_1p());
	let a = alpha as f64;
	(0..=alpha)
		.map(|k| {
			let k = k as f64;
			log_binomial(a, k) + k * lq + (a - k) * l1q + (k * k - k) / (2.0 * z * z)
		})
		.fold(f64::NEG_INFINITY, log_add)
}

/// `ln A_alpha` for fractional `alpha` (the two series of Mironov et al. 2019, Sec. 3.3),
/// summed until both terms fall below `e^-30` relative to nothing (absolute, as the sums
/// are at least of order one).
fn log_a_fractional(alpha: f64, q: f64, z: f64) -> f64 {
	let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
	let z0 = z * z * (1.0 / q - 1.0).ln() + 0.5;
	let (lq, l1q) = (q.ln(), (-q).ln_1p());
	// The generalised binomial coefficient C(alpha, i), as log of its magnitude and a sign.
	let (mut log_coef, mut positive) = (0.0f64, true);
	for i in 0..10_000u32 {
		let i_f = f64::from(i);
		if i > 0 {
			let ratio = (alpha - i_f + 1.0) / i_f;
			log_coef += ratio.abs().ln();
			positive ^= ratio < 0.0;
		}
		let j = alpha - i_f;
		let log_t0 = log_coef + i_f * lq + j * l1q;
		let log_t1 = log_coef + j * lq + i_f * l1q;
		let log_e0 = 0.5f64.ln() + log_erfc((i_f - z0) / (std::f64::consts::SQRT_2 * z));
		let log_e1 = 0.5f64.ln() + log_erfc((z0 - j) / (std::f64::consts::SQRT_2 * z));
		let log_s0 = log_t0 + (i_f * i_f - i_f) / (2.0 * z * z) + log_e0;
		let log_s1 = log_t1 + (j * j - j) / (2.0 * z * z) + log_e1;
		if positive {
			log_a0 = log_add(log_a0, log_s0);
			log_a1 = log_add(log_a1, log_s1);
		} else {
			log_a0 = log_sub(log_a0, log_s0);
			log_a1 = log_sub(log_a1, log_s1);
		}
		if log_s0.max(log_s1) < -30.0 {
			break;
		}
	}
	log_add(log_a0, log_a1)
}

/// `ln C(n, k)` for real `n >= k >= 0` with integer-valued `k`.
fn log_binomial(n: f64, k: f64) -> f64 {
	ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// `ln Gamma(x)` for `x > 0` (Lanczos, g = 7, n = 9; relative error below 1e-13).
fn ln_gamma(x: f64) -> f64 {
	const G: [f64; 9] = [
		0.999_999_999_999_809_9,
		676.520_368_121_885_1,
		-1_259.139_216_722_402_8,
		771.323_428_777_653_1,
		-176.615_029_162_140_6,
		12.507_343_278_686_905,
		-0.138_571_095_265_720_12,
		9.984_369_578_019_572e-6,
		1.505_632_735_149_311_6e-7,
	];
	if x < 0.5 {
		// Reflection.
		let pi = std::f64::consts::PI;
		return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
	}
	let x = x - 1.0;
	let t = x + 7.5;
	let series = G[1..]
		.iter()
		.enumerate()
		.fold(G[0], |acc, (i, g)| acc + g / (x + i as f64 + 1.0));
	0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + series.ln()
}

/// `ln erfc(x)` without underflow for large `x` (Chebyshev fit of Numerical Recipes,
/// fractional error of `erfc` below 1.2e-7 everywhere, so below 1.2e-7 absolute in the log).
fn log_erfc(x: f64) -> f64 {
	let z = x.abs();
	let t = 1.0 / (1.0 + 0.5 * z);
	let poly = -z * z - 1.265_512_23
		+ t * (1.000_023_68
			+ t * (0.374_091_96
				+ t * (0.096_784_18
					+ t * (-0.186_288_06
						+ t * (0.278_868_07
							+ t * (-1.135_203_98
								+ t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
	let log_erfc_abs = t.ln() + poly;
	if x >= 0.0 {
		log_erfc_abs
	} else {
		// erfc(-z) = 2 - erfc(z).
		(2.0 - log_erfc_abs.exp()).ln()
	}
}

/// `ln(e^a + e^b)`.
fn log_add(a: f64, b: f64) -> f64 {
	let (hi, lo) = if a > b { (a, b) } else { (b, a) };
	if lo == f64::NEG_INFINITY {
		return hi;
	}
	hi + (lo - hi).exp().ln_1p()
}

/// `ln(e^a - e^b)` for `a >= b` (`-inf` when they are equal). A larger `b` (which only
/// rounding in the series could cause) gives `+inf`: that order's bound is then dropped
/// rather than underestimated.
fn log_sub(a: f64, b: f64) -> f64 {
	if b == f64::NEG_INFINITY {
		return a;
	}
	if b > a {
		return f64::INFINITY;
	}
	if b == a {
		return f64::NEG_INFINITY;
	}
	a + (-(b - a).exp()).ln_1p()
}

/// Smallest `(epsilon, order)` over the grid for the RDP curve `rdp` (one value per
/// [`orders`] entry) at `delta`.
pub fn to_epsilon(rdp: &[f64], delta: f64) -> (f64, f64) {
	let ld = delta.ln();
	rdp.iter()
		.zip(orders())
		.map(|(r, a)| {
			let eps = r - (ld + a.ln()) / (a - 1.0) + ((a - 1.0) / a).ln();
			(eps.max(0.0), a)
		})
		.filter(|(e, _)| !e.is_nan())
		.fold(
			(f64::INFINITY, 0.0),
			|best, x| if x.0 < best.0 { x } else { best },
		)
}

#[cfg(test)]
mod tests {
	use super::*;

	fn sgm_epsilon(q: f64, z: f64, steps: u32, delta: f64) -> f64 {
		let rdp: Vec<f64> = orders()
			.iter()
			.map(|a| f64::from(steps) * sampled_gaussian(*a, q, z))
			.collect();
		to_epsilon(&rdp, delta).0
	}

	/// Reference values from Opacus 1.6.0 (`opacus.accountants.analysis.rdp.compute_rdp` and
	/// `get_privacy_spent` on its default orders), the accountant most DP-SGD results are
	/// reported with; the command is in `docs/privacy.md`.
	#[test]
	fn sampled_gaussian_matches_opacus() {
		let cases = [
			// MNIST-style: 60 000 samples, batch 256, 60 epochs, sigma 1.1.
			(256.0 / 60000.0, 1.1, 14_062, 1e-5, 2.596_555_868_960_748_6),
			(0.01, 1.0, 1000, 1e-5, 2.101_365_271_643_056_4),
			// One BLADE-FL trainer: 3 000 samples, batch 64, 30 epochs, sigma 1.2.
			(64.0 / 3000.0, 1.2, 1406, 1e-5, 3.933_623_695_605_491),
			(1.0, 1.0, 1, 1e-5, 4.728_507_067_217_623),
			(0.1, 2.0, 500, 1e-6, 6.678_998_968_928_415),
		];
		for (q, z, steps, delta, reference) in cases {
			let eps = sgm_epsilon(q, z, steps, delta);
			assert!(
				(eps / reference - 1.0).abs() < 1e-4,
				"q {q} z {z} steps {steps}: {eps} vs Opacus {reference}"
			);
		}
	}

	#[test]
	fn integer_and_fractional_series_agree_between_orders() {
		// The RDP curve is continuous in alpha: the fractional series at 3.999 and 4.001
		// brackets the integer sum at 4.
		for (q, z) in [(0.01, 0.8), (0.05, 1.5), (0.3, 4.0)] {
			let lo = sampled_gaussian(3.999, q, z);
			let mid = sampled_gaussian(4.0, q, z);
			let hi = sampled_gaussian(4.001, q, z);
			assert!(
				lo <= mid * (1.0 + 1e-6) && mid <= hi * (1.0 + 1e-6),
				"{lo} {mid} {hi}"
			);
			assert!((hi - lo) / mid < 1e-2);
			// Subsampling only helps.
			assert!(mid < gaussian(4.0, z));
		}
	}

	#[test]
	fn special_functions() {
		assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-12);
		assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-12);
		assert!((log_erfc(0.0) - 0.0).abs() < 1e-6);
		// erfc(3) = 2.209049699858544e-5; erfc(-1) = 1.8427007929497148.
		assert!((log_erfc(3.0) - 2.209_049_699_858_544e-5f64.ln()).abs() < 1e-6);
		assert!((log_erfc(-1.0) - 1.842_700_792_949_714_8f64.ln()).abs() < 1e-6);
		assert!(log_erfc(40.0).is_finite());
		assert!((log_add(0.0, 0.0) - 2f64.ln()).abs() < 1e-15);
		assert!((log_sub(2f64.ln(), 0.0)).abs() < 1e-15);
		assert_eq!(log_sub(0.0, 1.0), f64::INFINITY);
		assert_eq!(log_sub(1.0, 1.0), f64::NEG_INFINITY);
	}
}
