//! Splitting a data set among clients: IID, Dirichlet(alpha) label skew, and exactly k
//! labels per client (in disjoint groups, or NIID-Bench's overlapping draw). Seeded
//! (ChaCha8) and reproducible: the same labels, clients and seed give the same partition
//! on every machine.

use rand::{seq::SliceRandom, Rng, SeedableRng};
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
	/// With `C` a multiple of `k` the clients fall into `C / k` groups that share no label
	/// (the pathological split: no client's data overlaps another group's).
	KLabels {
		/// Labels per client, `1 ..= classes`.
		k: usize,
	},
	/// NIID-Bench's `#C=k` split (Li et al. 2022): client `i` holds label `i mod C` and
	/// `k - 1` other labels drawn at random (seeded); each label's samples are divided
	/// evenly among the clients that hold it, so shares differ in size and the clients'
	/// label sets overlap. With fewer clients than classes, labels nobody drew are left
	/// out (as in NIID-Bench).
	RandomLabels {
		/// Labels per client, `1 ..= classes`.
		k: usize,
	},
	/// Given label sets, one per client, split as [`Scheme::RandomLabels`] splits its draw:
	/// each label's samples evenly among the clients that hold it, labels nobody holds left
	/// out. For a published draw, e.g. the one NIID-Bench's partitioner gives with its seed.
	LabelSets(LabelSets),
}

/// One label set per client (at most [`LabelSets::MAX_CLIENTS`] clients and labels
/// `0..16`), as bit masks so that a [`Scheme`] stays small and `Copy`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelSets {
	masks: [u16; LabelSets::MAX_CLIENTS],
	clients: usize,
}

impl LabelSets {
	/// Most clients a set list can describe.
	pub const MAX_CLIENTS: usize = 32;

	/// Parse `"0,7 1,6 2,4"`: clients separated by spaces or `;`, labels by commas. Each
	/// client needs at least one label, below 16, none twice.
	pub fn parse(text: &str) -> Result<Self> {
		let mut masks = [0u16; Self::MAX_CLIENTS];
		let mut clients = 0;
		for (i, set) in text
			.split(|c: char| c == ';' || c.is_whitespace())
			.filter(|s| !s.is_empty())
			.enumerate()
		{
			let mask = masks
				.get_mut(i)
				.ok_or_else(|| invalid(format!("more than {} label sets", Self::MAX_CLIENTS)))?;
			for label in set.split(',') {
				let label: u32 = label
					.trim()
					.parse()
					.map_err(|_| invalid(format!("label set {set:?}: {label:?} is not a label")))?;
				let bit = 1u16
					.checked_shl(label)
					.ok_or_else(|| invalid(format!("label {label} is above 15")))?;
				if *mask & bit != 0 {
					return Err(invalid(format!("label set {set:?} names {label} twice")));
				}
				*mask |= bit;
			}
			clients = i + 1;
		}
		if clients == 0 {
			return Err(invalid("no label sets"));
		}
		Ok(LabelSets { masks, clients })
	}

	/// How many clients the sets describe.
	pub fn clients(&self) -> usize {
		self.clients
	}

	/// The labels client `client` holds, ascending.
	pub fn held(&self, client: usize) -> Vec<usize> {
		let mask = self.masks.get(client).copied().unwrap_or(0);
		(0..16).filter(|l| mask >> l & 1 == 1).collect()
	}
}

impl std::str::FromStr for LabelSets {
	type Err = crate::error::Error;

	fn from_str(text: &str) -> Result<Self> {
		Self::parse(text)
	}
}

/// Each class's (shuffled) samples split into contiguous, as even as integers allow shares
/// (numpy's `array_split`), one per holder in client order.
fn split_among_holders(
	by_class: Vec<Vec<usize>>,
	holders: &[Vec<usize>],
	parts: &mut [Vec<usize>],
) {
	for (class, owners) in by_class.into_iter().zip(holders) {
		let (n, m) = (class.len(), owners.len());
		for (j, owner) in owners.iter().enumerate() {
			let (start, end) = (j * n / m, (j + 1) * n / m);
			parts[*owner].extend_from_slice(&class[start..end]);
		}
	}
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
		Scheme::RandomLabels { k } => {
			if k == 0 || k > classes {
				return Err(invalid(format!(
					"k = {k} labels per client must be in 1..={classes}"
				)));
			}
			let mut holders: Vec<Vec<usize>> = vec![Vec::new(); classes];
			for client in 0..clients {
				let mut held = vec![client % classes];
				while held.len() < k {
					let label = rng.gen_range(0..classes);
					if !held.contains(&label) {
						held.push(label);
					}
				}
				for label in held {
					holders[label].push(client);
				}
			}
			split_among_holders(by_class, &holders, &mut parts);
		}
		Scheme::LabelSets(sets) => {
			if sets.clients() != clients {
				return Err(invalid(format!(
					"{} label sets for {clients} clients",
					sets.clients()
				)));
			}
			let mut holders: Vec<Vec<usize>> = vec![Vec::new(); classes];
			for client in 0..clients {
				for label in sets.held(client) {
					holders
						.get_mut(label)
						.ok_or_else(|| {
							invalid(format!(
								"client {client} holds label {label}, outside 0..{classes}"
							))
						})?
						.push(client);
				}
			}
			split_among_holders(by_class, &holders, &mut parts);
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
	fn random_labels_overlap_cover_and_follow_niid_bench() {
		let l = labels(10_000);
		for k in [1, 2, 3] {
			let parts = partition(&l, 10, 10, Scheme::RandomLabels { k }, 3).unwrap();
			assert!(is_cover(&parts, 10_000));
			for (i, p) in parts.iter().enumerate() {
				let held = labels_of(p, &l);
				assert_eq!(held.len(), k, "client {i}");
				assert!(held.contains(&(i as u8)), "client {i} holds its own label");
			}
			// Every label's samples are split evenly among its holders.
			for label in 0..10u8 {
				let sizes: Vec<usize> = parts
					.iter()
					.map(|p| p.iter().filter(|s| l[**s] == label).count())
					.filter(|n| *n > 0)
					.collect();
				let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
				assert!(hi - lo <= 1, "label {label}: {sizes:?}");
			}
		}
		// The label sets overlap across clients (unlike KLabels' disjoint groups): with 2
		// labels each some client shares exactly one label with another.
		let parts = partition(&l, 10, 10, Scheme::RandomLabels { k: 2 }, 3).unwrap();
		let sets: Vec<_> = parts.iter().map(|p| labels_of(p, &l)).collect();
		assert!(sets
			.iter()
			.enumerate()
			.any(|(i, a)| sets[i + 1..].iter().any(|b| a.intersection(b).count() == 1)));
		assert_eq!(
			parts,
			partition(&l, 10, 10, Scheme::RandomLabels { k: 2 }, 3).unwrap()
		);
		assert!(partition(&l, 10, 10, Scheme::RandomLabels { k: 0 }, 3).is_err());
	}

	/// Given label sets split like NIID-Bench's draw: each client holds exactly its labels,
	/// each label is shared evenly, and bad sets are refused with a reason.
	#[test]
	fn label_sets_split_as_given() {
		let l = labels(10_000);
		// NIID-Bench's #C=2 draw for 10 clients with numpy's default_rng(42).
		let sets = LabelSets::parse("0,7 1,6 2,4 3,4 4,8 5,0 6,2 7,0 8,5 9,7").unwrap();
		let parts = partition(&l, 10, 10, Scheme::LabelSets(sets), 3).unwrap();
		assert!(is_cover(&parts, 10_000));
		for (i, p) in parts.iter().enumerate() {
			let held: Vec<u8> = labels_of(p, &l).into_iter().collect();
			let want: Vec<u8> = sets.held(i).into_iter().map(|x| x as u8).collect();
			assert_eq!(held, want, "client {i}");
		}
		// Label 0 has three holders (clients 0, 5, 7): equal thirds.
		let zeros: Vec<usize> = [0, 5, 7]
			.iter()
			.map(|c| parts[*c].iter().filter(|s| l[**s] == 0).count())
			.collect();
		assert!(
			zeros.iter().max().unwrap() - zeros.iter().min().unwrap() <= 1,
			"{zeros:?}"
		);
		assert!(partition(&l, 10, 9, Scheme::LabelSets(sets), 3).is_err());
		let high = LabelSets::parse("0,12 1").unwrap();
		assert!(partition(&l, 10, 2, Scheme::LabelSets(high), 3).is_err());
		for bad in ["", "0,0", "0,x", "0,16"] {
			assert!(LabelSets::parse(bad).is_err(), "{bad:?}");
		}
		assert_eq!(LabelSets::parse("1,3;2").unwrap().held(0), vec![1, 3]);
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
