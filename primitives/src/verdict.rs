//! The chain's verdicts on a trainer's update, in integer arithmetic so that the runtime and
//! every trainer reach them bit for bit: *is it a copy?* ([`copy_proven`]), *does it carry
//! its own watermark at the task's strength?* ([`weak_watermark`]), and *how much is it
//! worth?* ([`contribution_weight`]).
//!
//! ## The copy test
//!
//! The plain correlation of [`crate::correlation`] can be gamed: a copier adds its *own*
//! chips at many times the update's energy (or one huge parameter) and the victim's
//! watermark drowns in the normalisation. The copy test therefore
//!
//! 1. removes the accused's own revealed watermark first: the least-squares amplitude
//!    `a = <x, c_own> / n` is subtracted (whatever energy the accused put on its own chips
//!    is gone, up to `|x| / sqrt(n)`);
//! 2. uses the **sign** of each residual value, not its size: the statistic
//!    `S = sum_i sign(r_i) * c_i` over the victim's chips `c`. For an update that does not
//!    carry the victim's chips each term is an independent fair ±1 (the chips are secret
//!    until after the update is on chain), so `S / sqrt(m)` (over the `m` non-zero residuals)
//!    is standard normal *whatever the values are*: no value, however large, moves `S` by
//!    more than one. A copy at watermark amplitude `a` over values of spread `s` has
//!    `E[S] / sqrt(m) ~ 0.8 * (a / s) * sqrt(m)`.
//! 3. may test against **all** other revealed trainers at once: a copier who averages `k`
//!    updates carries each watermark at `a / k`, but the sum of the `K` per-victim statistics
//!    over `sqrt(K)` still grows as `sqrt(m) * a / (s * sqrt(K))`, and is standard normal for
//!    an honest update. Only two forms exist (one named victim, or every revealed trainer),
//!    so a reporter cannot fish for a favourable subset.
//!
//! The verdict is `S >= z * sqrt(k * m)` for `k` victims, i.e. one false proof in about
//! 10^9 tests at `z = 6`.
//!
//! ## The watermark-strength test
//!
//! Every update must carry its owner's chips at no less than the task's power (SNR in dB
//! below the update). A trainer that submits without a watermark could be copied by an
//! accomplice without trace. With the owner's revealed chips the runtime estimates the
//! amplitude `a` and the residual power `P`; the update is *proven weak* when even the
//! optimistic amplitude `a + z * sqrt(P / n)` is more than the tolerance below the task's
//! amplitude: `10 log10(P / (a + z sigma)^2) > snr + tolerance`.

use crate::{
	correlation::isqrt,
	pn::{Chips, Seed},
};
use alloc::vec::Vec;

/// Least-squares estimate of the watermark of `own` in `values` (Q24 fixed point).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct OwnWatermark {
	/// Estimated amplitude `<x, c> / n`, Q24 (negative when the chips were subtracted).
	pub amplitude: i64,
	/// Power of what remains after removing it: `|x - a c|^2 / n`, Q48.
	pub residual_power: u128,
	/// Number of values.
	pub n: u64,
}

/// Estimate the watermark of `own` in `values` (one pass; saturating, never panics).
pub fn own_watermark(values: impl Iterator<Item = i64>, own: &Seed) -> OwnWatermark {
	let mut dot: i128 = 0;
	let mut energy: u128 = 0;
	let mut n: u64 = 0;
	for (value, chip) in values.zip(Chips::new(own)) {
		let v = i128::from(value);
		dot = dot.saturating_add(if chip > 0 { v } else { -v });
		energy = energy.saturating_add(v.unsigned_abs().saturating_mul(v.unsigned_abs()));
		n = n.saturating_add(1);
	}
	if n == 0 {
		return OwnWatermark::default();
	}
	let a = dot / i128::from(n);
	let amplitude = a.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
	// |x - a c|^2 = E - 2 a <x, c> + n a^2.
	let a = i128::from(amplitude);
	let cross = a.saturating_mul(dot).saturating_mul(2);
	let square = a
		.saturating_mul(a)
		.saturating_mul(i128::from(n))
		.unsigned_abs();
	let residual = if cross >= 0 {
		energy
			.saturating_sub(cross.unsigned_abs())
			.saturating_add(square)
	} else {
		energy
			.saturating_add(cross.unsigned_abs())
			.saturating_add(square)
	};
	OwnWatermark {
		amplitude,
		residual_power: residual / u128::from(n),
		n,
	}
}

/// Evidence that values carry some victims' chips: the sign statistics after removing the
/// owner's watermark.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct CopyEvidence {
	/// `S_j = sum_i sign(r_i) * c_ij` for each victim `j`, in the order given.
	pub sums: Vec<i64>,
	/// Number of non-zero residuals `m` (the zero ones count for nobody).
	pub nonzero: u64,
}

impl CopyEvidence {
	/// Combined statistic `sum_j S_j` over all victims.
	pub fn total(&self) -> i64 {
		self.sums.iter().fold(0i64, |acc, s| acc.saturating_add(*s))
	}

	/// Combined z-score `sum_j S_j / sqrt(k m)` in hundredths (for events and logs).
	pub fn z_centi(&self) -> i64 {
		let k = self.sums.len() as u128;
		let denominator = isqrt(k.saturating_mul(u128::from(self.nonzero))).max(1);
		let total = i128::from(self.total()).saturating_mul(100);
		(total / denominator as i128).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
	}

	/// The verdict: `sum_j S_j >= z * sqrt(k m)` at `z_centi` hundredths of a standard
	/// deviation, evaluated exactly as `(100 S)^2 >= z_centi^2 k m` with `S > 0`.
	pub fn proves_copy(&self, z_centi: u32) -> bool {
		let total = self.total();
		if total <= 0 || self.sums.is_empty() {
			return false;
		}
		let lhs = u128::from(total.unsigned_abs()).saturating_mul(100);
		let lhs = lhs.saturating_mul(lhs);
		let z = u128::from(z_centi);
		let rhs = z
			.saturating_mul(z)
			.saturating_mul(self.sums.len() as u128)
			.saturating_mul(u128::from(self.nonzero));
		lhs >= rhs
	}
}

/// Sign statistics of `values` against each of `victims`, after removing the watermark of
/// `own` at `own_amplitude` (pass `None` when the owner's seed is not known yet: its chips
/// are then part of the residual, which only costs power).
///
/// `values` is called once; pair it with [`own_watermark`] over the same values for the
/// amplitude. Cost: one pass, `1 + k` chip generators.
pub fn copy_evidence(
	values: impl Iterator<Item = i64>,
	own: Option<(&Seed, i64)>,
	victims: &[Seed],
) -> CopyEvidence {
	let mut own_chips = own.map(|(seed, amplitude)| (Chips::new(seed), amplitude));
	let mut chips: Vec<Chips> = victims.iter().map(Chips::new).collect();
	let mut sums = alloc::vec![0i64; victims.len()];
	let mut nonzero: u64 = 0;
	for value in values {
		let residual = match own_chips.as_mut() {
			Some((generator, amplitude)) => {
				let c = generator.next().unwrap_or(1);
				if c > 0 {
					value.saturating_sub(*amplitude)
				} else {
					value.saturating_add(*amplitude)
				}
			}
			None => value,
		};
		let sign = residual.signum();
		if sign != 0 {
			nonzero = nonzero.saturating_add(1);
		}
		for (sum, generator) in sums.iter_mut().zip(chips.iter_mut()) {
			let c = i64::from(generator.next().unwrap_or(1));
			*sum = sum.saturating_add(sign * c);
		}
	}
	CopyEvidence { sums, nonzero }
}

/// The copy verdict on `values` (Q24) of an accused whose own watermark is `own` (seed
/// and [`own_watermark`] amplitude, if revealed), against `victims`, at `z_centi`.
pub fn copy_proven(
	values: impl Iterator<Item = i64>,
	own: Option<(&Seed, i64)>,
	victims: &[Seed],
	z_centi: u32,
) -> (bool, CopyEvidence) {
	let evidence = copy_evidence(values, own, victims);
	(evidence.proves_copy(z_centi), evidence)
}

/// `log2(x)` in Q16 fixed point for `x >= 1` (0 for `x = 0`), exact to the last bit of
/// the 16 fractional bits by repeated squaring of the normalised mantissa.
pub fn log2_q16(x: u128) -> i64 {
	if x == 0 {
		return 0;
	}
	let int = 127 - i64::from(x.leading_zeros());
	// Mantissa in [2^63, 2^64): 1.f in Q63.
	let mut m: u128 = if int >= 63 {
		x >> (int - 63)
	} else {
		x << (63 - int)
	};
	let mut frac = 0i64;
	for bit in (0..16).rev() {
		m = m.saturating_mul(m) >> 63;
		if m >= 1u128 << 64 {
			m >>= 1;
			frac |= 1 << bit;
		}
	}
	(int << 16) | frac
}

/// `100 * 10 log10(num / den)`: a power ratio in hundredths of a decibel (both at least 1).
pub fn centi_db(num: u128, den: u128) -> i64 {
	let delta = log2_q16(num.max(1)) - log2_q16(den.max(1));
	// centi-dB = 1000 log10(2) * log2(ratio) = 301.02999566 * delta / 2^16.
	(i128::from(delta) * 30_103_000 / (100_000 * 65_536)) as i64
}

/// Whether `values` (Q24) are proven to carry their owner's watermark (`own`) more weakly
/// than `snr_centi_db` allows, with `tolerance_centi_db` of slack and a `z_centi` margin
/// for the estimate's error. Returns the verdict and the measured SNR in centi-dB.
pub fn weak_watermark(
	values: impl Iterator<Item = i64>,
	own: &Seed,
	snr_centi_db: u32,
	tolerance_centi_db: u32,
	z_centi: u32,
) -> (bool, i64) {
	let mark = own_watermark(values, own);
	if mark.n == 0 {
		return (false, 0);
	}
	let power = mark.residual_power.max(1);
	let measured = if mark.amplitude > 0 {
		let a = mark.amplitude.unsigned_abs() as u128;
		centi_db(power, a.saturating_mul(a))
	} else {
		i64::MAX
	};
	// Standard error of the amplitude: sqrt(P / n), Q24.
	let sigma = isqrt(power / u128::from(mark.n));
	let optimistic = i128::from(mark.amplitude)
		.saturating_add((sigma as i128).saturating_mul(i128::from(z_centi)) / 100);
	if optimistic <= 0 {
		return (true, measured);
	}
	let b = optimistic.unsigned_abs();
	let limit = i64::from(snr_centi_db) + i64::from(tolerance_centi_db);
	(centi_db(power, b.saturating_mul(b)) > limit, measured)
}

/// Weight of a trainer's update in the reward split and in FedAvg: the square root of its
/// declared samples (capped by the task) times its reputation in parts per billion (at
/// least 1). Sub-linear, so that a trainer who claims four times its data gains at most
/// twice the weight, and the task's cap bounds even that.
pub fn contribution_weight(samples: u64, reputation_parts: u32) -> u128 {
	isqrt(u128::from(samples)).saturating_mul(u128::from(reputation_parts.max(1)))
}

/// Sum of squares of `values` (Q48), saturating: `|x|^2` for the task's norm bound.
pub fn energy(values: impl Iterator<Item = i64>) -> u128 {
	values.fold(0u128, |acc, v| {
		acc.saturating_add(v.unsigned_abs() as u128 * v.unsigned_abs() as u128)
	})
}

/// `(norm_milli / 1000)^2` in Q48: the largest [`energy`] an update of L2 norm at most
/// `norm_milli` thousandths may have.
pub fn energy_bound(norm_milli: u32) -> u128 {
	// norm in Q24 = norm_milli * 2^24 / 1000.
	let norm = (u128::from(norm_milli) << crate::blob::FRAC_BITS) / 1000;
	norm.saturating_mul(norm)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use proptest::prelude::*;

	const ONE: f64 = (1u64 << 24) as f64;

	/// Deterministic pseudo-Gaussian values of spread `sd` (sum of uniforms).
	fn noise(n: usize, seed: u64, sd: f64) -> Vec<f64> {
		let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
		(0..n)
			.map(|_| {
				let mut acc = 0.0;
				for _ in 0..4 {
					state ^= state << 13;
					state ^= state >> 7;
					state ^= state << 17;
					acc += (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
				}
				acc * sd * 3f64.sqrt()
			})
			.collect()
	}

	fn add_chips(values: &mut [f64], seed: &Seed, amplitude: f64) {
		for (v, c) in values.iter_mut().zip(Chips::new(seed)) {
			*v += amplitude * f64::from(c);
		}
	}

	fn fixed(values: &[f64]) -> Vec<i64> {
		values.iter().map(|v| (v * ONE) as i64).collect()
	}

	/// Amplitude of a watermark `snr_db` below values of spread `sd`.
	fn amp(sd: f64, snr_db: f64) -> f64 {
		sd / 10f64.powf(snr_db / 20.0)
	}

	#[test]
	fn log2_and_decibels_are_exact_enough() {
		assert_eq!(log2_q16(1), 0);
		assert_eq!(log2_q16(2), 1 << 16);
		assert_eq!(log2_q16(1 << 100), 100 << 16);
		let l3 = log2_q16(3) as f64 / 65536.0;
		assert!((l3 - 3f64.log2()).abs() < 2e-5, "{l3}");
		assert!((centi_db(10, 1) - 1000).abs() <= 1);
		assert!((centi_db(4, 1) - 602).abs() <= 1);
		assert!((centi_db(1, 4) + 602).abs() <= 1);
		assert!((centi_db(u128::MAX, 1) - 38_531).abs() <= 2);
	}

	#[test]
	fn honest_updates_are_not_proven_copies() {
		// 2 000 honest (accused, victim) pairs: the statistic stays far below 6 sigma.
		let n = 4_000;
		let mut max = i64::MIN;
		for t in 0..2_000u64 {
			let own = [(t % 251) as u8; 32];
			let victim = [(t % 241) as u8 ^ 0x55; 32];
			let mut x = noise(n, t, 0.01);
			add_chips(&mut x, &own, amp(0.01, 6.0));
			let fx = fixed(&x);
			let mark = own_watermark(fx.iter().copied(), &own);
			let (proven, ev) = copy_proven(
				fx.iter().copied(),
				Some((&own, mark.amplitude)),
				&[victim],
				600,
			);
			assert!(!proven);
			max = max.max(ev.z_centi());
		}
		assert!(max < 500, "largest honest z {max}");
	}

	#[test]
	fn a_copy_is_proven_even_under_a_huge_own_watermark() {
		let n = 25_450;
		let (victim, own) = ([1u8; 32], [2u8; 32]);
		let mut x = noise(n, 7, 0.01);
		add_chips(&mut x, &victim, amp(0.01, 9.0));
		// The copier hides the victim under its own chips at 20x the update's RMS ...
		add_chips(&mut x, &own, 0.2);
		let fx = fixed(&x);
		// ... which the plain correlation does not see through.
		let plain = crate::correlation::correlate(fx.iter().copied(), &victim);
		assert!(!crate::correlation::proves_copy(plain, n as u64, 600));
		let mark = own_watermark(fx.iter().copied(), &own);
		assert!((mark.amplitude as f64 / ONE - 0.2).abs() < 1e-3);
		let (proven, ev) = copy_proven(
			fx.iter().copied(),
			Some((&own, mark.amplitude)),
			&[victim],
			600,
		);
		assert!(proven, "z = {}", ev.z_centi());
		assert!(ev.z_centi() > 3_000);
	}

	#[test]
	fn a_spike_does_not_hide_a_copy() {
		let n = 25_450;
		let victim = [3u8; 32];
		let mut x = noise(n, 9, 0.01);
		add_chips(&mut x, &victim, amp(0.01, 9.0));
		let mut fx = fixed(&x);
		fx[17] = i64::MAX / 2; // one parameter carries all the energy
		let plain = crate::correlation::correlate(fx.iter().copied(), &victim);
		assert!(!crate::correlation::proves_copy(plain, n as u64, 600));
		let (proven, _) = copy_proven(fx.iter().copied(), None, &[victim], 600);
		assert!(proven);
	}

	#[test]
	fn averaging_copier_is_caught_by_the_all_victims_form() {
		let (n, k) = (25_450, 12);
		let seeds: Vec<Seed> = (0..k).map(|i| [10 + i as u8; 32]).collect();
		// Shared direction plus individual differences, like real IID updates.
		let common = noise(n, 100, 0.01);
		let mut mean = vec![0.0; n];
		for (j, s) in seeds.iter().enumerate() {
			let mut u: Vec<f64> = noise(n, 200 + j as u64, 0.005)
				.iter()
				.zip(&common)
				.map(|(a, b)| a + b)
				.collect();
			add_chips(&mut u, s, amp(0.011, 12.0));
			for (m, v) in mean.iter_mut().zip(&u) {
				*m += v / k as f64;
			}
		}
		let fx = fixed(&mean);
		// No single victim's watermark is strong enough ...
		for s in &seeds {
			assert!(!copy_proven(fx.iter().copied(), None, &[*s], 600).0);
		}
		// ... but all of them together are.
		let (proven, ev) = copy_proven(fx.iter().copied(), None, &seeds, 600);
		assert!(proven, "z = {}", ev.z_centi());
	}

	#[test]
	fn watermark_strength_test() {
		let n = 25_450;
		let own = [4u8; 32];
		let x = noise(n, 11, 0.01);
		for (snr, weak) in [
			(6.0, false),
			(9.0, false),
			(5.0, false),
			(12.0, true),
			(30.0, true),
		] {
			let mut y = x.clone();
			add_chips(&mut y, &own, amp(0.01, snr));
			let (verdict, measured) = weak_watermark(fixed(&y).into_iter(), &own, 600, 300, 600);
			assert_eq!(verdict, weak, "snr {snr}: measured {measured}");
			if snr < 20.0 {
				// The amplitude estimate's error is |x| / sqrt(n): 0.2 dB per sigma at 12 dB.
				assert!((measured as f64 / 100.0 - snr).abs() < 0.6, "{measured}");
			}
		}
		// No watermark, or a subtracted one, is weak.
		assert!(weak_watermark(fixed(&x).into_iter(), &own, 600, 300, 600).0);
		let mut y = x.clone();
		add_chips(&mut y, &own, -amp(0.01, 6.0));
		assert!(weak_watermark(fixed(&y).into_iter(), &own, 600, 300, 600).0);
		// A tiny model cannot be proven weak by chance: the estimate's error is allowed for.
		let small: Vec<f64> = noise(64, 5, 0.01)
			.into_iter()
			.zip(Chips::new(&own))
			.map(|(v, c)| v + amp(0.01, 6.0) * f64::from(c))
			.collect();
		assert!(!weak_watermark(fixed(&small).into_iter(), &own, 600, 300, 600).0);
	}

	#[test]
	fn weights_are_sub_linear() {
		assert_eq!(contribution_weight(100, 1), 10);
		assert_eq!(contribution_weight(400, 1), 20);
		assert_eq!(
			contribution_weight(u64::MAX, u32::MAX),
			(u32::MAX as u128) * (u32::MAX as u128)
		);
		assert_eq!(contribution_weight(100, 0), 10);
	}

	#[test]
	fn energy_and_its_bound() {
		let one = 1i64 << 24;
		assert_eq!(energy([3 * one, 4 * one].into_iter()), 25u128 << 48);
		assert_eq!(energy_bound(5_000), 25u128 << 48);
		assert_eq!(
			energy([i64::MIN, i64::MIN, i64::MIN, i64::MIN].into_iter()),
			u128::MAX
		);
	}

	proptest! {
		#[test]
		fn never_panics(values in proptest::collection::vec(any::<i64>(), 0..200), a in any::<i64>()) {
			let own = [1u8; 32];
			let _ = own_watermark(values.iter().copied(), &own);
			let (_, ev) = copy_proven(values.iter().copied(), Some((&own, a)), &[[2; 32], [3; 32]], 600);
			prop_assert!(ev.nonzero <= values.len() as u64);
			let _ = weak_watermark(values.iter().copied(), &own, 600, 300, 600);
			let _ = ev.z_centi();
		}
	}
}
