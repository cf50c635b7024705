//! What a trainer publishes instead of its honest update, for experiments and tests
//! (`--behaviour`): lazy copying (plain, noisy or energy-inflating), sign flipping,
//! scaling, random noise, and the protocol attacks the runner plays (a crafted blob that
//! overflows decoders, a withheld aggregate).

use rand::Rng;
use rand_distr::{Distribution, Normal};

use crate::{
	error::{invalid, Result},
	privacy::rms,
};

/// A trainer's behaviour.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
	/// Publish the trained update.
	Honest,
	/// Copy another trainer's published update and perturb it with Gaussian noise of
	/// `noise` times its RMS (the paper's lazy client).
	Lazy {
		/// Noise standard deviation relative to the copied update's RMS.
		noise: f64,
	},
	/// Publish the negated update.
	SignFlip,
	/// Publish the update times `factor`.
	Scale {
		/// The factor.
		factor: f32,
	},
	/// Publish Gaussian noise with the honest update's RMS.
	Random,
	/// Copy another trainer's published update and hide the copy under its own watermark
	/// at `factor` times the update's RMS (the energy-inflating copier; the runner puts the
	/// watermark on, then scales to the task's norm bound).
	Inflate {
		/// Own watermark amplitude relative to the copied update's RMS.
		factor: f64,
	},
	/// Submit a blob whose decoded values sit at `f32`'s limit (int8 at the largest scale
	/// the parser accepts), trying to overflow every trainer that aggregates it (the runner
	/// crafts the blob).
	CraftedBlob,
	/// Train honestly but never publish the aggregate when chosen as aggregator.
	Withhold,
}

impl Behaviour {
	/// Whether this behaviour copies another trainer's update instead of training.
	pub fn copies(&self) -> bool {
		matches!(self, Behaviour::Lazy { .. } | Behaviour::Inflate { .. })
	}
}

/// The update to publish. `honest` is this trainer's own update; `victim` is another
/// trainer's published update (needed by [`Behaviour::Lazy`] only).
pub fn apply(
	behaviour: Behaviour,
	honest: &[f32],
	victim: Option<&[f32]>,
	rng: &mut impl Rng,
) -> Result<Vec<f32>> {
	let noise = |scale: f64, rng: &mut dyn rand::RngCore| -> Result<Vec<f32>> {
		let normal = Normal::new(0.0, scale.max(0.0)).map_err(|e| invalid(e.to_string()))?;
		Ok((0..honest.len())
			.map(|_| normal.sample(rng) as f32)
			.collect())
	};
	Ok(match behaviour {
		Behaviour::Honest | Behaviour::CraftedBlob | Behaviour::Withhold => honest.to_vec(),
		Behaviour::Inflate { .. } => {
			let victim = victim.ok_or_else(|| invalid("a copier needs an update to copy"))?;
			if victim.len() != honest.len() {
				return Err(invalid("the copied update has another size"));
			}
			victim.to_vec()
		}
		Behaviour::Lazy { noise: relative } => {
			let victim = victim.ok_or_else(|| invalid("a lazy trainer needs an update to copy"))?;
			if victim.len() != honest.len() {
				return Err(invalid("the copied update has another size"));
			}
			let n = noise(relative * rms(victim), rng)?;
			victim.iter().zip(n).map(|(v, e)| v + e).collect()
		}
		Behaviour::SignFlip => honest.iter().map(|v| -v).collect(),
		Behaviour::Scale { factor } => honest.iter().map(|v| v * factor).collect(),
		Behaviour::Random => noise(rms(honest), rng)?,
	})
}

/// The [`Behaviour::CraftedBlob`] attack: a well-formed int8 blob of `params` values at the
/// largest scale the parser accepts (`f32::MAX / 128`), so every value decodes to nearly
/// `f32::MAX` and any sum of two overflows. The chain refuses it (the task's norm bound);
/// a trainer that aggregated it naively would overflow to infinity. (A larger scale, which
/// decoded to infinities outright, is refused by the parser since `spec_version` 106.)
pub fn overflowing_blob(task: u64, round: u32, params: usize) -> Result<Vec<u8>> {
	use blade_fl_primitives::blob::{BlobHeader, Codec};
	let header = BlobHeader {
		task,
		round,
		param_count: u32::try_from(params).map_err(|_| invalid("too many parameters"))?,
		codec: Codec::Int8,
		scale_bits: blade_fl_primitives::blob::MAX_INT8_SCALE_BITS,
	};
	let mut blob = header.encode().to_vec();
	blob.resize(blob.len() + params, 127);
	Ok(blob)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use rand::SeedableRng;

	#[test]
	fn behaviours_do_what_they_say() {
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
		let honest: Vec<f32> = (0..10_000).map(|i| ((i % 7) as f32 - 3.0) * 0.01).collect();
		let victim: Vec<f32> = honest.iter().map(|v| v * 2.0 + 0.001).collect();
		assert_eq!(
			apply(Behaviour::Honest, &honest, None, &mut rng).unwrap(),
			honest
		);
		assert_eq!(
			apply(Behaviour::SignFlip, &honest, None, &mut rng).unwrap()[1],
			-honest[1]
		);
		assert_eq!(
			apply(Behaviour::Scale { factor: 3.0 }, &honest, None, &mut rng).unwrap()[1],
			3.0 * honest[1]
		);
		let lazy = apply(
			Behaviour::Lazy { noise: 0.5 },
			&honest,
			Some(&victim),
			&mut rng,
		)
		.unwrap();
		let diff: Vec<f32> = lazy.iter().zip(&victim).map(|(a, b)| a - b).collect();
		assert!((rms(&diff) / rms(&victim) - 0.5).abs() < 0.02);
		let random = apply(Behaviour::Random, &honest, None, &mut rng).unwrap();
		assert!((rms(&random) / rms(&honest) - 1.0).abs() < 0.03);
		assert!(apply(Behaviour::Lazy { noise: 0.5 }, &honest, None, &mut rng).is_err());
		let inflating = Behaviour::Inflate { factor: 15.0 };
		assert!(inflating.copies() && !Behaviour::Withhold.copies());
		assert_eq!(
			apply(inflating, &honest, Some(&victim), &mut rng).unwrap(),
			victim
		);
		// The crafted blob parses (the codec and scale are valid) but every value is at
		// f32's limit: two of them overflow.
		let crafted = overflowing_blob(1, 0, 100).unwrap();
		let (_, values) = crate::codec::decode(&crafted, crafted.len()).unwrap();
		assert!(values.iter().all(|v| v.is_finite() && *v > 1e38));
		assert!((values[0] + values[1]).is_infinite());
		assert!(apply(
			Behaviour::Lazy { noise: 0.5 },
			&honest,
			Some(&victim[1..]),
			&mut rng
		)
		.is_err());
	}
}
