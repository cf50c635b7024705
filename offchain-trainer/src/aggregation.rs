//! Deterministic aggregation rules: FedAvg, coordinate-wise median, trimmed mean and
//! Multi-Krum.
//!
//! Bit-exactness: every output coordinate is computed from the inputs in one fixed order
//! (client order) with IEEE-754 `f64` operations that Rust never reorders or fuses, then
//! rounded once to `f32`. Work is split across threads by coordinate ranges only, so the
//! thread count and the machine do not change a single bit; every trainer that aggregates
//! the same updates gets the same blob and the same hash.

use rayon::prelude::*;

use crate::error::{invalid, Result};

/// Coordinates per parallel work item.
const CHUNK: usize = 4096;

/// An aggregation rule (mirrors the task's on-chain rule).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
	/// Weighted mean with integer weights (declared samples x reputation in ppb).
	FedAvg,
	/// Coordinate-wise median (mean of the two middle values for an even count).
	Median,
	/// Coordinate-wise mean after dropping `floor(trim x n)` values at each end.
	TrimmedMean {
		/// Share dropped at each end, in [0, 0.5).
		trim: f64,
	},
	/// Multi-Krum: keep the `n - f` updates with the smallest Krum scores (sum of squared
	/// distances to their `n - f - 2` nearest neighbours), then FedAvg them.
	MultiKrum {
		/// Assumed Byzantine updates `f`; needs `2f + 2 < n`.
		byzantine: usize,
	},
}

/// An aggregate and the updates it includes (indices into the input).
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
	/// The aggregated parameters.
	pub values: Vec<f32>,
	/// Indices of the updates that count (all but Multi-Krum's rejects).
	pub included: Vec<usize>,
}

fn check(updates: &[Vec<f32>], weights: &[u128]) -> Result<usize> {
	let first = updates
		.first()
		.ok_or_else(|| invalid("no updates to aggregate"))?;
	let n = first.len();
	if updates.iter().any(|u| u.len() != n) {
		return Err(invalid("updates differ in length"));
	}
	if weights.len() != updates.len() {
		return Err(invalid(format!(
			"{} weights for {} updates",
			weights.len(),
			updates.len()
		)));
	}
	if updates.iter().flatten().any(|v| !v.is_finite()) {
		return Err(invalid("non-finite parameter in an update"));
	}
	Ok(n)
}

fn weighted_mean(updates: &[&Vec<f32>], weights: &[u128], n: usize) -> Result<Vec<f32>> {
	let total: u128 = weights.iter().sum();
	if total == 0 {
		return Err(invalid("all aggregation weights are zero"));
	}
	// Normalised weights, computed once in a fixed order.
	let w: Vec<f64> = weights.iter().map(|w| *w as f64 / total as f64).collect();
	// Client-major inside each chunk (vectorises); every coordinate still sums its clients
	// in client order, so the bits do not depend on the chunking.
	let mut out = vec![0f32; n];
	out.par_chunks_mut(CHUNK)
		.enumerate()
		.for_each(|(chunk, slice)| {
			let start = chunk * CHUNK;
			let mut acc = vec![0f64; slice.len()];
			for (u, w) in updates.iter().zip(&w) {
				for (a, x) in acc.iter_mut().zip(&u[start..start + slice.len()]) {
					*a += f64::from(*x) * w;
				}
			}
			for (o, a) in slice.iter_mut().zip(&acc) {
				*o = *a as f32;
			}
		});
	Ok(out)
}

fn sorted_column(updates: &[Vec<f32>], j: usize, buf: &mut Vec<f32>) {
	buf.clear();
	buf.extend(updates.iter().map(|u| u[j]));
	buf.sort_unstable_by(f32::total_cmp);
}

/// Aggregate `updates` (watermarks already removed) with `rule`; `weights` are the FedAvg
/// weights (Multi-Krum uses them for its final mean, median and trimmed mean ignore them).
pub fn aggregate(updates: &[Vec<f32>], weights: &[u128], rule: Rule) -> Result<Aggregate> {
	let n = check(updates, weights)?;
	let m = updates.len();
	let all: Vec<usize> = (0..m).collect();
	match rule {
		Rule::FedAvg => {
			let refs: Vec<&Vec<f32>> = updates.iter().collect();
			Ok(Aggregate {
				values: weighted_mean(&refs, weights, n)?,
				included: all,
			})
		}
		Rule::Median | Rule::TrimmedMean { .. } => {
			let trim = match rule {
				Rule::TrimmedMean { trim } if (0.0..0.5).contains(&trim) => {
					(trim * m as f64).floor() as usize
				}
				Rule::TrimmedMean { trim } => {
					return Err(invalid(format!("trim {trim} outside [0, 0.5)")))
				}
				_ => 0,
			};
			let median = matches!(rule, Rule::Median);
			let mut out = vec![0f32; n];
			out.par_chunks_mut(CHUNK)
				.enumerate()
				.for_each(|(chunk, slice)| {
					let mut buf = Vec::with_capacity(m);
					for (k, v) in slice.iter_mut().enumerate() {
						sorted_column(updates, chunk * CHUNK + k, &mut buf);
						*v = if median {
							if m % 2 == 1 {
								buf[m / 2]
							} else {
								((f64::from(buf[m / 2 - 1]) + f64::from(buf[m / 2])) / 2.0) as f32
							}
						} else {
							let kept = &buf[trim..m - trim];
							(kept.iter().map(|x| f64::from(*x)).sum::<f64>() / kept.len() as f64)
								as f32
						};
					}
				});
			Ok(Aggregate {
				values: out,
				included: all,
			})
		}
		Rule::MultiKrum { byzantine } => {
			if 2 * byzantine + 2 >= m {
				return Err(invalid(format!(
					"Multi-Krum with f = {byzantine} needs more than {} updates",
					2 * byzantine + 2
				)));
			}
			// Pairwise squared distances; each pair summed in coordinate order.
			let pairs: Vec<(usize, usize)> = (0..m)
				.flat_map(|a| (a + 1..m).map(move |b| (a, b)))
				.collect();
			let distances: Vec<f64> = pairs
				.par_iter()
				.map(|(a, b)| {
					updates[*a]
						.iter()
						.zip(&updates[*b])
						.map(|(x, y)| {
							let d = f64::from(*x) - f64::from(*y);
							d * d
						})
						.sum()
				})
				.collect();
			let mut matrix = vec![vec![0f64; m]; m];
			for ((a, b), d) in pairs.iter().zip(&distances) {
				matrix[*a][*b] = *d;
				matrix[*b][*a] = *d;
			}
			let neighbours = m - byzantine - 2;
			let mut scores: Vec<(f64, usize)> = (0..m)
				.map(|i| {
					let mut row: Vec<f64> =
						(0..m).filter(|j| *j != i).map(|j| matrix[i][j]).collect();
					row.sort_unstable_by(f64::total_cmp);
					(row[..neighbours].iter().sum(), i)
				})
				.collect();
			scores.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
			let mut included: Vec<usize> =
				scores[..m - byzantine].iter().map(|(_, i)| *i).collect();
			included.sort_unstable();
			let refs: Vec<&Vec<f32>> = included.iter().map(|i| &updates[*i]).collect();
			let w: Vec<u128> = included.iter().map(|i| weights[*i]).collect();
			Ok(Aggregate {
				values: weighted_mean(&refs, &w, n)?,
				included,
			})
		}
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use rand::SeedableRng;
	use rand_distr::{Distribution, Normal};

	fn updates(m: usize, n: usize, seed: u64) -> Vec<Vec<f32>> {
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
		let normal = Normal::new(0.1f32, 0.05).unwrap();
		(0..m)
			.map(|_| (0..n).map(|_| normal.sample(&mut rng)).collect())
			.collect()
	}

	fn with_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
		rayon::ThreadPoolBuilder::new()
			.num_threads(threads)
			.build()
			.unwrap()
			.install(f)
	}

	fn bits(v: &[f32]) -> Vec<u32> {
		v.iter().map(|x| x.to_bits()).collect()
	}

	#[test]
	fn every_rule_is_bit_exact_across_thread_counts() {
		let u = updates(9, 50_000, 1);
		let w: Vec<u128> = (1..=9).map(|i| i * 1_000_000_007).collect();
		for rule in [
			Rule::FedAvg,
			Rule::Median,
			Rule::TrimmedMean { trim: 0.2 },
			Rule::MultiKrum { byzantine: 2 },
		] {
			let one = with_threads(1, || aggregate(&u, &w, rule).unwrap());
			let four = with_threads(4, || aggregate(&u, &w, rule).unwrap());
			assert_eq!(bits(&one.values), bits(&four.values), "{rule:?}");
			assert_eq!(one.included, four.included);
		}
	}

	#[test]
	fn fedavg_weights_and_small_cases() {
		let u = vec![vec![1.0, 2.0], vec![3.0, 6.0]];
		assert_eq!(
			aggregate(&u, &[1, 3], Rule::FedAvg).unwrap().values,
			vec![2.5, 5.0]
		);
		assert_eq!(
			aggregate(&u, &[1, 1], Rule::Median).unwrap().values,
			vec![2.0, 4.0]
		);
		let three = vec![vec![1.0], vec![100.0], vec![2.0]];
		assert_eq!(
			aggregate(&three, &[1, 1, 1], Rule::Median).unwrap().values,
			vec![2.0]
		);
		assert!(aggregate(&[], &[], Rule::FedAvg).is_err());
		assert!(aggregate(&u, &[1], Rule::FedAvg).is_err());
		assert!(aggregate(&u, &[0, 0], Rule::FedAvg).is_err());
		assert!(aggregate(&[vec![1.0], vec![f32::NAN]], &[1, 1], Rule::FedAvg).is_err());
		assert!(aggregate(&u, &[1, 1], Rule::MultiKrum { byzantine: 1 }).is_err());
		assert!(aggregate(&u, &[1, 1], Rule::TrimmedMean { trim: 0.5 }).is_err());
	}

	/// One attacker scales its update by -10 (sign flip and scale): FedAvg is dragged away,
	/// the robust rules stay near the honest mean and Multi-Krum leaves the attacker out.
	#[test]
	fn robust_rules_resist_a_scaled_sign_flipped_update() {
		let mut u = updates(10, 5_000, 7);
		let honest = aggregate(&u[..9], &[1; 9], Rule::FedAvg).unwrap().values;
		u[9] = u[9].iter().map(|x| -10.0 * x).collect();
		let error = |v: &[f32]| {
			(v.iter()
				.zip(&honest)
				.map(|(a, b)| f64::from(a - b).powi(2))
				.sum::<f64>()
				/ v.len() as f64)
				.sqrt()
		};
		let fedavg = error(&aggregate(&u, &[1; 10], Rule::FedAvg).unwrap().values);
		let median = error(&aggregate(&u, &[1; 10], Rule::Median).unwrap().values);
		let trimmed = error(
			&aggregate(&u, &[1; 10], Rule::TrimmedMean { trim: 0.1 })
				.unwrap()
				.values,
		);
		let krum = aggregate(&u, &[1; 10], Rule::MultiKrum { byzantine: 2 }).unwrap();
		assert!(fedavg > 0.1, "FedAvg error {fedavg}");
		assert!(
			median < 0.03 && trimmed < 0.03,
			"median {median}, trimmed {trimmed}"
		);
		assert!(!krum.included.contains(&9), "{:?}", krum.included);
		assert!(error(&krum.values) < 0.03);
	}
}
