//! Pseudo-noise (PN) signatures: the watermark every trainer adds to its update so that a
//! lazy trainer who copies someone's update carries the victim's watermark.
//!
//! Chips come from `blade_fl_primitives::pn` (the generator the runtime uses). The
//! amplitude is set from a target signal-to-watermark ratio in dB relative to the update's
//! power: `a = sqrt(P / 10^(snr/10))`. Detection is the normalised correlation
//! `rho = <x, c> / (|x| sqrt(n))`; for an update independent of the chips `rho` is
//! approximately `N(0, 1/n)`, so the threshold for a false-positive rate `fpr` is
//! `z(1 - fpr) / sqrt(n)`. That plain correlation can be gamed by a copier who piles
//! energy on its own chips; the chain's verdicts ([`chain_copy`], [`chain_weak_watermark`],
//! bit-exact with `report_lazy` and `report_weak_watermark`) remove the accused's own
//! watermark and use a sign statistic instead (see `blade_fl_primitives::verdict`).

use blade_fl_primitives::{
	blob::Blob,
	correlation::{correlate, Correlation},
	pn::{Chips, Seed},
	verdict::{copy_proven, own_watermark, weak_watermark},
};

use crate::error::{invalid, Error, Result};

/// Watermark amplitude for `values` at `snr_db` (update power over watermark power).
pub fn amplitude_for_snr(values: &[f32], snr_db: f64) -> f64 {
	crate::privacy::rms(values) / 10f64.powf(snr_db / 20.0)
}

/// Add `sign * amplitude * chips(seed)` to `values` in place (`sign` 1 adds, -1 removes).
pub fn apply(values: &mut [f32], seed: &Seed, amplitude: f64, sign: f64) {
	let a = (sign * amplitude) as f32;
	for (v, c) in values.iter_mut().zip(Chips::new(seed)) {
		*v += a * f32::from(c);
	}
}

/// Remove the watermark of `seed` from a published update whose amplitude the remover does
/// not know: the least-squares estimate `a = <x, c> / n` (chips are +-1) is subtracted.
/// The sum runs in `f64` in parameter order, so every trainer removes exactly the same
/// values from the same blob (the aggregate's hash depends on it). Returns `a`.
pub fn remove(values: &mut [f32], seed: &Seed) -> f64 {
	if values.is_empty() {
		return 0.0;
	}
	let dot: f64 = values
		.iter()
		.zip(Chips::new(seed))
		.map(|(v, c)| f64::from(*v) * f64::from(c))
		.sum();
	let amplitude = dot / values.len() as f64;
	apply(values, seed, amplitude, -1.0);
	amplitude
}

/// Normalised correlation of `values` with the chips of `seed` (floating point).
pub fn correlation(values: &[f32], seed: &Seed) -> f64 {
	let (mut dot, mut energy) = (0f64, 0f64);
	for (v, c) in values.iter().zip(Chips::new(seed)) {
		let v = f64::from(*v);
		dot += v * f64::from(c);
		energy += v * v;
	}
	if energy == 0.0 {
		return 0.0;
	}
	dot / (energy.sqrt() * (values.len() as f64).sqrt())
}

/// A blob's fixed-point correlation with `seed`'s chips and its parameter count.
fn blob_correlation(blob: &[u8], seed: &Seed) -> Result<(Correlation, u64)> {
	let parsed = Blob::parse(blob, blob.len()).map_err(Error::Blob)?;
	Ok((
		correlate(parsed.fixed_values(), seed),
		u64::from(parsed.header.param_count),
	))
}

/// The runtime's verdict input: correlation of a blob with a seed in parts per billion,
/// computed in the shared fixed-point code (bit-exact with `report_lazy`).
pub fn chain_correlation(blob: &[u8], seed: &Seed) -> Result<u32> {
	Ok(blob_correlation(blob, seed)?.0 .0)
}

/// The runtime's verdict on `blob` as a copy of the owners of `victims` (their round
/// keys), exactly as `report_lazy` computes it: the accused's own watermark (`own`, its
/// revealed round key) removed, then the sign statistic against the victims' chips at
/// `z_centi`. Returns the verdict and the z-score in hundredths.
pub fn chain_copy(
	blob: &[u8],
	own: Option<&Seed>,
	victims: &[Seed],
	z_centi: u32,
) -> Result<(bool, i64)> {
	let parsed = Blob::parse(blob, blob.len()).map_err(Error::Blob)?;
	let own = own.map(|key| (key, own_watermark(parsed.fixed_values(), key).amplitude));
	let (proven, evidence) = copy_proven(parsed.fixed_values(), own, victims, z_centi);
	Ok((proven, evidence.z_centi()))
}

/// The runtime's verdict on whether `blob` carries its owner's watermark (`own`) more
/// weakly than the task's `snr_centi_db` allows, exactly as `report_weak_watermark`
/// computes it. Returns the verdict and the measured SNR in hundredths of a dB.
pub fn chain_weak_watermark(
	blob: &[u8],
	own: &Seed,
	snr_centi_db: u32,
	tolerance_centi_db: u32,
	z_centi: u32,
) -> Result<(bool, i64)> {
	let parsed = Blob::parse(blob, blob.len()).map_err(Error::Blob)?;
	Ok(weak_watermark(
		parsed.fixed_values(),
		own,
		snr_centi_db,
		tolerance_centi_db,
		z_centi,
	))
}

/// The norm an update may have *before* its watermark at `snr_db` is added so that the
/// watermarked update (and its int8 rounding) stays within the task's `bound`: the chips
/// are independent of the update, so `|x + a c|^2 ~ |x|^2 (1 + 10^(-snr/10))`; 2 % margin
/// for the cross term and the rounding.
pub fn norm_before_watermark(bound: f64, snr_db: f64) -> f64 {
	0.98 * bound / (1.0 + 10f64.powf(-snr_db / 10.0)).sqrt()
}

/// Inverse of the standard normal CDF (Acklam's rational approximation, relative error
/// below 1.2e-9 on (0, 1)).
pub fn normal_quantile(p: f64) -> f64 {
	const A: [f64; 6] = [
		-3.969683028665376e1,
		2.209460984245205e2,
		-2.759285104469687e2,
		1.38357751867269e2,
		-3.066479806614716e1,
		2.506628277459239,
	];
	const B: [f64; 5] = [
		-5.447609879822406e1,
		1.615858368580409e2,
		-1.556989798598866e2,
		6.680131188771972e1,
		-1.328068155288572e1,
	];
	const C: [f64; 6] = [
		-7.784894002430293e-3,
		-3.223964580411365e-1,
		-2.400758277161838,
		-2.549732539343734,
		4.374664141464968,
		2.938163982698783,
	];
	const D: [f64; 4] = [
		7.784695709041462e-3,
		3.224671290700398e-1,
		2.445134137142996,
		3.754408661907416,
	];
	let low = 0.02425;
	if p <= 0.0 {
		return f64::NEG_INFINITY;
	}
	if p >= 1.0 {
		return f64::INFINITY;
	}
	if p < low {
		let q = (-2.0 * p.ln()).sqrt();
		(((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
			/ ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
	} else if p <= 1.0 - low {
		let q = p - 0.5;
		let r = q * q;
		(((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
			/ (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
	} else {
		-normal_quantile(1.0 - p)
	}
}

/// A lazy-copy detector holding a false-positive rate per (update, seed) test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detector {
	/// Correlation at or above which an update is flagged.
	pub threshold: f64,
}

impl Detector {
	/// Threshold for `n` parameters and false-positive rate `fpr` in (0, 0.5).
	pub fn for_false_positive_rate(n: usize, fpr: f64) -> Result<Detector> {
		if n == 0 || !(fpr > 0.0 && fpr < 0.5) {
			return Err(invalid(format!(
				"need n > 0 and 0 < fpr < 0.5, got n = {n}, fpr = {fpr}"
			)));
		}
		Ok(Detector {
			threshold: normal_quantile(1.0 - fpr) / (n as f64).sqrt(),
		})
	}

	/// Indices of the `seeds` whose watermark `values` carries, with the correlations.
	pub fn detect(&self, values: &[f32], seeds: &[Seed]) -> Vec<(usize, f64)> {
		seeds
			.iter()
			.enumerate()
			.map(|(i, s)| (i, correlation(values, s)))
			.filter(|(_, rho)| *rho >= self.threshold)
			.collect()
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use rand::SeedableRng;
	use rand_distr::{Distribution, Normal};

	fn gaussian(n: usize, seed: u64, sd: f32) -> Vec<f32> {
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
		let normal = Normal::new(0.0f32, sd).unwrap();
		(0..n).map(|_| normal.sample(&mut rng)).collect()
	}

	fn seed(i: u8) -> Seed {
		[i; 32]
	}

	#[test]
	fn removal_estimates_the_amplitude_and_strips_the_watermark() {
		use rand::{Rng, SeedableRng};
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
		let clean: Vec<f32> = (0..50_000).map(|_| rng.gen_range(-1.0..1.0)).collect();
		let seed = [7u8; 32];
		let amplitude = amplitude_for_snr(&clean, 6.0);
		let mut marked = clean.clone();
		apply(&mut marked, &seed, amplitude, 1.0);
		assert!(correlation(&marked, &seed) > 0.3);
		let estimate = remove(&mut marked, &seed);
		// The estimate's error is the clean update's projection on the chips:
		// rms / sqrt(n) = 0.577 / 224 = 0.0026.
		assert!(
			(estimate - amplitude).abs() < 0.013,
			"{estimate} vs {amplitude}"
		);
		assert!(correlation(&marked, &seed).abs() < 1e-6);
		let residual = crate::privacy::rms(
			&marked
				.iter()
				.zip(&clean)
				.map(|(a, b)| a - b)
				.collect::<Vec<_>>(),
		);
		assert!(residual < 0.013, "{residual}");
	}

	#[test]
	fn quantile_matches_reference_values() {
		for (p, z) in [
			(0.5, 0.0),
			(0.975, 1.959963984540054),
			(0.999, 3.090232306167813),
			(1e-6, -4.753424308822899),
		] {
			assert!((normal_quantile(p) - z).abs() < 1e-8, "p = {p}");
		}
	}

	#[test]
	fn amplitude_hits_the_target_snr() {
		let values = gaussian(50_000, 1, 0.05);
		for snr in [9.0, 6.0, 3.0] {
			let a = amplitude_for_snr(&values, snr);
			let mut marked = values.clone();
			apply(&mut marked, &seed(1), a, 1.0);
			let wm_power = a * a;
			let power =
				values.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / values.len() as f64;
			assert!((10.0 * (power / wm_power).log10() - snr).abs() < 1e-9);
			// Removing the watermark restores the update (up to f32 rounding).
			apply(&mut marked, &seed(1), a, -1.0);
			assert!(values
				.iter()
				.zip(&marked)
				.all(|(x, y)| (x - y).abs() < 1e-6));
		}
	}

	/// Copies (with their own watermark and extra noise) are caught at 9/6/3 dB while honest
	/// updates stay below the threshold; the runtime's fixed-point verdict agrees.
	#[test]
	fn copies_are_detected_at_the_papers_snrs() {
		let n = 20_000;
		let detector = Detector::for_false_positive_rate(n, 1e-6).unwrap();
		let trials = 40;
		for snr in [9.0, 6.0, 3.0] {
			let (mut caught, mut false_alarms) = (0, 0);
			for t in 0..trials {
				let victim_seed = seed(2 * t as u8 + 1);
				let mut victim = gaussian(n, t, 0.05);
				let a = amplitude_for_snr(&victim, snr);
				apply(&mut victim, &victim_seed, a, 1.0);
				let mut honest = gaussian(n, 1_000 + t, 0.05);
				apply(&mut honest, &seed(2 * t as u8 + 2), a, 1.0);
				// The copier perturbs the copy with noise as strong as the update and adds its
				// own watermark.
				let mut copy: Vec<f32> = victim
					.iter()
					.zip(gaussian(n, 2_000 + t, 0.05))
					.map(|(v, e)| v + e)
					.collect();
				apply(&mut copy, &seed(200), a, 1.0);
				caught += usize::from(!detector.detect(&copy, &[victim_seed]).is_empty());
				false_alarms += usize::from(!detector.detect(&honest, &[victim_seed]).is_empty());

				let blob = crate::codec::encode(0, 0, blade_fl_primitives::blob::Codec::F32, &copy)
					.unwrap();
				let chain = f64::from(chain_correlation(&blob, &victim_seed).unwrap()) / 1e9;
				assert!((chain - correlation(&copy, &victim_seed).max(0.0)).abs() < 1e-4);
			}
			assert_eq!(caught, trials as usize, "snr {snr} dB");
			assert_eq!(false_alarms, 0, "snr {snr} dB");
		}
	}

	/// The energy-inflating copier: a copy of the victim's update plus the copier's own
	/// chips at 30x the update's RMS. The plain correlation misses it; the chain's verdict,
	/// which removes the copier's own watermark first, proves it; honest updates are never
	/// proven, and an update without its own watermark is proven weak.
	#[test]
	fn inflating_copier_is_proven_by_the_chain_verdict() {
		let n = 20_000;
		let detector = Detector::for_false_positive_rate(n, 1e-6).unwrap();
		for t in 0..20u64 {
			let (victim_key, copier_key, honest_key) = (
				seed(3 * t as u8 + 1),
				seed(3 * t as u8 + 2),
				seed(3 * t as u8 + 3),
			);
			let mut victim = gaussian(n, t, 0.05);
			let a = amplitude_for_snr(&victim, 9.0);
			apply(&mut victim, &victim_key, a, 1.0);
			let mut copy = victim.clone();
			apply(
				&mut copy,
				&copier_key,
				30.0 * crate::privacy::rms(&victim),
				1.0,
			);
			assert!(detector.detect(&copy, &[victim_key]).is_empty());
			let blob =
				crate::codec::encode(0, 0, blade_fl_primitives::blob::Codec::F32, &copy).unwrap();
			let (proven, z) = chain_copy(&blob, Some(&copier_key), &[victim_key], 600).unwrap();
			assert!(proven, "z = {z}");

			let mut honest = gaussian(n, 100 + t, 0.05);
			apply(&mut honest, &honest_key, a, 1.0);
			let blob =
				crate::codec::encode(0, 0, blade_fl_primitives::blob::Codec::F32, &honest).unwrap();
			assert!(
				!chain_copy(&blob, Some(&honest_key), &[victim_key], 600)
					.unwrap()
					.0
			);
			assert!(
				!chain_weak_watermark(&blob, &honest_key, 900, 300, 600)
					.unwrap()
					.0
			);
			let bare = crate::codec::encode(
				0,
				0,
				blade_fl_primitives::blob::Codec::F32,
				&gaussian(n, 200 + t, 0.05),
			)
			.unwrap();
			assert!(
				chain_weak_watermark(&bare, &honest_key, 900, 300, 600)
					.unwrap()
					.0
			);
		}
	}

	#[test]
	fn clipping_respects_the_bound_after_the_watermark() {
		let mut values = gaussian(10_000, 5, 1.0);
		let bound = 20.0;
		let snr = 3.0;
		crate::privacy::clip_l2(&mut values, norm_before_watermark(bound, snr));
		let a = amplitude_for_snr(&values, snr);
		apply(&mut values, &seed(9), a, 1.0);
		let norm = values
			.iter()
			.map(|v| f64::from(*v).powi(2))
			.sum::<f64>()
			.sqrt();
		assert!(norm <= bound, "{norm}");
		assert!(norm > 0.9 * bound, "{norm}");
	}

	#[test]
	fn detector_rejects_bad_parameters() {
		assert!(Detector::for_false_positive_rate(0, 0.01).is_err());
		assert!(Detector::for_false_positive_rate(10, 0.0).is_err());
		assert!(Detector::for_false_positive_rate(10, 0.7).is_err());
	}
}
