//! Splitting a data set among clients: IID, Dirichlet(alpha) label skew, and exactly k
//! labels per client. Seeded (ChaCha8) and reproducible: the same labels, clients and seed
//! give the same partition on every machine.

use rand::{seq::SliceRandom, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Dirichlet, Distribution};

use crate::error::{invalid, Result};

/// How to split samples among clients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scheme {
	/// Uniformly shuffled, equal shares.
	Iid,
	/// For every class, client shares drawn from Dirichlet(alpha): small alpha, strong skew.
	Dirichlet {
		/// Concentration; must be positive.
		alpha: f64,
	},
	/// Every client holds exactly `k` labels: client `i` gets labels `(i k + j) mod C`.
	KLabels {
		/// Labels per client, `1 ..= classes`.
		k: usize,
	},
}

/// Indices of the samples of each client (each list sorted).
pub fn partition(
	labels: &[u8],
	classes: usize,
	clients: usize,
	scheme: Scheme,
	seed: u64,
) -> Result<Vec<Vec<usize>>> {
	if clients == 0 || labels.is_empty() || classes == 0 {
		return Err(invalid("partition needs clients, samples and classes"));
	}
	let mut rng = ChaCha8Rng::seed_from_u64(seed);
	let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); classes];
	for (i, &l) in labels.iter().enumerate() {
		by_class
			.get_mut(l as usize)
			.ok_or_else(|| invalid(format!("label {l} outside 0..{classes}")))?
			.push(i);
	}
	for class in &mut by_class {
		class.shuffle(&mut rng);
	}
	let mut parts: Vec<Vec<usize>> = vec![Vec::new(); clients];
	match scheme {
		Scheme::Iid => {
			let mut all: Vec<usize> = (0..labels.len()).collect();
			all.shuffle(&mut rng);
			for (i, sample) in all.into_iter().enumerate() {
				parts[i % clients].push(sample);
			}
		}
		Scheme::Dirichlet { alpha } => {
			if !(alpha > 0.0 && alpha.is_finite()) {
				return Err(invalid(format!(
					"Dirichlet alpha must be positive, got {alpha}"
				)));
			}
			if clients == 1 {
				parts[0] = (0..labels.len()).collect();
			} else {
				let dirichlet = Dirichlet::new_with_size(alpha, clients)
					.map_err(|e| invalid(format!("Dirichlet({alpha}): {e}")))?;
				for class in by_class {
					let shares = dirichlet.sample(&mut rng);
					let mut start = 0usize;
					let mut cumulative = 0f64;
					for (client, share) in shares.iter().enumerate() {
						cumulative += share;
						let end = if client + 1 == clients {
							class.len()
						} else {
							((cumulative * class.len() as f64).round() as usize).min(class.len())
						};
						parts[client].extend_from_slice(&class[start..end.max(start)]);
						start = end.max(start);
					}
				}
			}
		}
		Scheme::KLabels { k } => {
			if k == 0 || k > classes {
				return Err(invalid(format!(
					"k = {k} labels per client must be in 1..={classes}"
				)));
			}
			let holders: Vec<Vec<usize>> = (0..classes)
				.map(|label| {
					(0..clients)
						.filter(|i| (0..k).any(|j| (i * k + j) % classes == label))
						.collect()
				})
				.collect();
			for (label, class) in by_class.into_iter().enumerate() {
				let owners = &holders[label];
				if owners.is_empty() {
					continue;
				}
				for (n, sample) in class.into_iter().enumerate() {
					parts[owners[n % owners.len()]].push(sample);
				}
			}
		}
	}
	for part in &mut parts {
		part.sort_unstable();
	}
	Ok(parts)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	fn labels(n: usize) -> Vec<u8> {
		(0..n).map(|i| (i % 10) as u8).collect()
	}

	fn labels_of(part: &[usize], all: &[u8]) -> std::collections::BTreeSet<u8> {
		part.iter().map(|i| all[*i]).collect()
	}

	fn is_cover(parts: &[Vec<usize>], n: usize) -> bool {
		let mut all: Vec<usize> = parts.iter().flatten().copied().collect();
		all.sort_unstable();
		all == (0..n).collect::<Vec<_>>()
	}

	#[test]
	fn iid_is_balanced_disjoint_and_reproducible() {
		let l = labels(10_000);
		let a = partition(&l, 10, 7, Scheme::Iid, 1).unwrap();
		assert_eq!(a, partition(&l, 10, 7, Scheme::Iid, 1).unwrap());
		assert_ne!(a, partition(&l, 10, 7, Scheme::Iid, 2).unwrap());
		assert!(is_cover(&a, 10_000));
		assert!(a.iter().all(|p| p.len() == 1_428 || p.len() == 1_429));
		assert!(a.iter().all(|p| labels_of(p, &l).len() == 10));
	}

	#[test]
	fn k_labels_gives_exactly_k_labels() {
		let l = labels(10_000);
		for k in [1, 2, 3] {
			let parts = partition(&l, 10, 10, Scheme::KLabels { k }, 3).unwrap();
			assert!(is_cover(&parts, 10_000));
			for p in &parts {
				assert_eq!(labels_of(p, &l).len(), k);
			}
		}
		assert!(partition(&l, 10, 10, Scheme::KLabels { k: 11 }, 3).is_err());
	}

	#[test]
	fn dirichlet_skew_grows_as_alpha_shrinks() {
		let l = labels(20_000);
		// Mean over clients of the largest class share: 0.1 is perfectly balanced.
		let skew = |alpha: f64| {
			let parts = partition(&l, 10, 20, Scheme::Dirichlet { alpha }, 9).unwrap();
			assert!(is_cover(&parts, 20_000));
			let shares: Vec<f64> = parts
				.iter()
				.filter(|p| !p.is_empty())
				.map(|p| {
					let mut c = [0usize; 10];
					p.iter().for_each(|i| c[l[*i] as usize] += 1);
					*c.iter().max().unwrap() as f64 / p.len() as f64
				})
				.collect();
			shares.iter().sum::<f64>() / shares.len() as f64
		};
		let (strong, weak) = (skew(0.1), skew(100.0));
		assert!(strong > 0.5, "alpha 0.1: {strong}");
		assert!(weak < 0.2, "alpha 100: {weak}");
		assert!(partition(&l, 10, 3, Scheme::Dirichlet { alpha: 0.0 }, 1).is_err());
	}
}
