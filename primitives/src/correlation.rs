//! Normalised correlation of fixed-point values with PN chips, in integer arithmetic.
//!
//! For values `x_i` and chips `c_i` (±1) over `n` positions:
//! `rho = sum(c_i * x_i) / (sqrt(sum(x_i^2)) * sqrt(n))`, the cosine between the update and
//! the chip sequence. An update carrying the chips at amplitude `a` on top of an
//! independent signal of power `P` has `rho ~ a / sqrt(P + a^2)`; an unrelated update has
//! `rho ~ N(0, 1/n)`. The result is reported in parts per billion; negative correlations
//! count as zero.
//!
//! The verdict ([`proves_copy`]) is a z-test: `rho * sqrt(n) >= z`. For an unrelated update
//! `rho * sqrt(n)` is standard normal whatever the model size, so `z` fixes the false-proof
//! rate (6 sigma: about 1e-9 per test) while the correlation a copy needs shrinks as
//! `1 / sqrt(n)` (3.8 % at 25 450 parameters). A fixed correlation threshold would be
//! unsound for small models and needlessly blind for large ones.

use crate::pn::{Chips, Seed};

/// Correlation in parts per billion, clamped to `[0, 1e9]`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Correlation(pub u32);

/// Integer square root (floor) of a `u128`.
pub fn isqrt(value: u128) -> u128 {
	if value < 2 {
		return value;
	}
	// Newton's iteration from an upper bound; converges monotonically downwards.
	let mut x = 1u128 << (128 - value.leading_zeros()).div_ceil(2);
	loop {
		let y = (x + value / x) / 2;
		if y >= x {
			return x;
		}
		x = y;
	}
}

/// Whether `correlation` over `n` values proves a copy at `z_centi` hundredths of a
/// standard deviation: `rho * sqrt(n) >= z`, evaluated exactly in integers as
/// `rho_ppb^2 * n >= (z_centi * 1e7)^2`.
pub fn proves_copy(correlation: Correlation, n: u64, z_centi: u32) -> bool {
	let rho = u128::from(correlation.0);
	let lhs = rho.saturating_mul(rho).saturating_mul(u128::from(n));
	let z = u128::from(z_centi).saturating_mul(10_000_000);
	lhs >= z.saturating_mul(z)
}

/// Correlation of `values` (Q24 fixed point) with the chips of `seed`.
pub fn correlate(values: impl Iterator<Item = i64>, seed: &Seed) -> Correlation {
	let mut dot: i128 = 0;
	let mut energy: u128 = 0;
	let mut n: u128 = 0;
	for (value, chip) in values.zip(Chips::new(seed)) {
		let value = i128::from(value);
		dot = dot.saturating_add(if chip > 0 { value } else { -value });
		energy = energy.saturating_add(value.unsigned_abs().saturating_mul(value.unsigned_abs()));
		n = n.saturating_add(1);
	}
	if dot <= 0 || energy == 0 {
		return Correlation(0);
	}
	// rho * 1e9 = dot * 1e9 / sqrt(energy * n). Take one root of the product (flooring each
	// factor's root separately would cost up to 1/sqrt(n) of relative precision); when the
	// product would overflow, drop pairs of low bits of `energy` and restore them outside.
	let mut shift = 0u32;
	let mut reduced = energy;
	let product = loop {
		match reduced.checked_mul(n) {
			Some(product) => break product,
			None => {
				reduced >>= 2;
				shift += 1;
			}
		}
	};
	let denominator = (isqrt(product) << shift).max(1);
	let scaled = (dot.unsigned_abs()).saturating_mul(1_000_000_000) / denominator;
	Correlation(scaled.min(1_000_000_000) as u32)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use proptest::prelude::*;

	#[test]
	fn z_test_verdict() {
		// 6 sigma at n = 10 000: rho must reach 6 %.
		assert!(proves_copy(Correlation(60_000_000), 10_000, 600));
		assert!(!proves_copy(Correlation(59_999_999), 10_000, 600));
		// At n = 25 450 the bar is 3.761 %.
		assert!(proves_copy(Correlation(37_611_000), 25_450, 600));
		assert!(!proves_copy(Correlation(37_600_000), 25_450, 600));
		// Extremes do not overflow.
		assert!(proves_copy(Correlation(1_000_000_000), u64::MAX, u32::MAX));
		assert!(!proves_copy(Correlation(0), u64::MAX, 1));
		assert!(proves_copy(Correlation(0), 0, 0));
	}

	#[test]
	fn chips_correlate_perfectly_with_themselves() {
		let seed = [9u8; 32];
		let values = Chips::new(&seed).take(10_000).map(|c| i64::from(c) << 24);
		let rho = correlate(values, &seed);
		assert!(rho.0 > 999_000_000, "{rho:?}");
	}

	#[test]
	fn matches_the_float_formula_closely() {
		// 20 000 values: a separate floor of sqrt(n) alone would be 0.3 % off.
		let seed = [4u8; 32];
		let values: Vec<i64> = Chips::new(&[5; 32])
			.zip(Chips::new(&seed))
			.take(20_000)
			.enumerate()
			.map(|(i, (a, b))| ((i64::from(a) * 3 + i64::from(b)) * ((i % 5) as i64 + 1)) << 20)
			.collect();
		let (mut dot, mut energy) = (0f64, 0f64);
		for (v, c) in values.iter().zip(Chips::new(&seed)) {
			dot += *v as f64 * f64::from(c);
			energy += (*v as f64).powi(2);
		}
		let expected = dot / (energy.sqrt() * (values.len() as f64).sqrt()) * 1e9;
		let got = f64::from(correlate(values.into_iter(), &seed).0);
		assert!((got - expected).abs() < 2.0, "{got} vs {expected}");
		// Values near the top of the fixed-point range take the overflow path.
		let big = vec![i64::MAX / 2; 1_000];
		assert!(correlate(big.into_iter(), &seed).0 <= 1_000_000_000);
	}

	#[test]
	fn unrelated_and_negated_sequences_score_low() {
		let values: Vec<i64> = Chips::new(&[1; 32])
			.take(10_000)
			.map(|c| i64::from(c) << 24)
			.collect();
		assert!(correlate(values.iter().copied(), &[2; 32]).0 < 50_000_000);
		let negated = values.iter().map(|v| -v);
		assert_eq!(correlate(negated, &[1; 32]), Correlation(0));
		assert_eq!(correlate(core::iter::empty(), &[1; 32]), Correlation(0));
	}

	proptest! {
		#[test]
		fn isqrt_is_floor_sqrt(v in any::<u128>()) {
			let r = isqrt(v);
			prop_assert!(r.checked_mul(r).is_some_and(|sq| sq <= v));
			prop_assert!((r + 1).checked_mul(r + 1).is_none_or(|sq| sq > v));
		}

		#[test]
		fn never_panics_on_extremes(values in proptest::collection::vec(any::<i64>(), 0..300)) {
			let rho = correlate(values.into_iter(), &[7; 32]);
			prop_assert!(rho.0 <= 1_000_000_000);
		}
	}
}
