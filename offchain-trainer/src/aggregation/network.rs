//! Coordinate-wise order statistics at memory speed.
//!
//! Sorting each coordinate's `m` values one coordinate at a time gathers from `m` arrays
//! with a stride and branches on every comparison. Instead, [`LANES`] neighbouring
//! coordinates are sorted together by a **sorting network** (Batcher's odd-even merge sort
//! for any `m`): a fixed list of compare-exchange steps, each a branch-free `min`/`max` over
//! the lanes that the compiler turns into packed `minps`/`maxps` (baseline SSE2, no
//! target flags). Signed zeros are first made `+0.0` ([`canonical`]): with no NaN (the
//! caller rejects them) and no `-0.0` left, values that compare equal have equal bits, so
//! the network's output is exactly the ascending sort of the canonical values, and
//! everything computed from it is the same on every machine and thread count.

/// Coordinates sorted together.
pub const LANES: usize = 16;

/// Batcher's odd-even merge sort network for `n` inputs as compare-exchange pairs `(i, j)`,
/// `i < j`: after all steps in order, position `i` holds the smaller value.
pub fn batcher(n: usize) -> Vec<(usize, usize)> {
	let mut steps = Vec::new();
	let mut p = 1;
	while p < n {
		let mut k = p;
		while k >= 1 {
			let mut j = k % p;
			while j + k < n {
				for i in 0..k.min(n - j - k) {
					if (i + j) / (2 * p) == (i + j + k) / (2 * p) {
						steps.push((i + j, i + j + k));
					}
				}
				j += 2 * k;
			}
			k /= 2;
		}
		p *= 2;
	}
	steps
}

/// `x` with a negative zero made positive (IEEE-754: `-0.0 + 0.0 == +0.0`); every other
/// finite value keeps its bits.
#[inline]
pub fn canonical(x: f32) -> f32 {
	x + 0.0
}

/// Sort `LANES` columns at once: `rows[u][l]` is value `u` of lane `l`. The values must be
/// canonical and not NaN.
#[inline]
pub fn sort_lanes(rows: &mut [[f32; LANES]], steps: &[(usize, usize)]) {
	for &(i, j) in steps {
		let (lo, hi) = rows.split_at_mut(j);
		let (a, b) = (&mut lo[i], &mut hi[0]);
		// Whole rows in and out: the per-lane selects then vectorise.
		let (x, y) = (*a, *b);
		let mut small = [0f32; LANES];
		let mut large = [0f32; LANES];
		for l in 0..LANES {
			small[l] = if x[l] < y[l] { x[l] } else { y[l] };
			large[l] = if y[l] > x[l] { y[l] } else { x[l] };
		}
		*a = small;
		*b = large;
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use rand::{Rng, SeedableRng};

	#[test]
	fn networks_sort_every_zero_one_input() {
		// The 0-1 principle: a network that sorts every 0/1 input sorts everything.
		for n in 1..=16usize {
			let steps = batcher(n);
			for bits in 0u32..(1 << n) {
				let mut v: Vec<u32> = (0..n).map(|i| (bits >> i) & 1).collect();
				for &(i, j) in &steps {
					if v[i] > v[j] {
						v.swap(i, j);
					}
				}
				assert!(v.windows(2).all(|w| w[0] <= w[1]), "n {n} input {bits:b}");
			}
		}
	}

	#[test]
	fn lanes_sort_like_sorting_the_canonical_values() {
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
		for n in [1usize, 2, 3, 5, 17, 20, 33, 64] {
			let steps = batcher(n);
			let mut rows = vec![[0f32; LANES]; n];
			let mut columns = vec![Vec::new(); LANES];
			for (u, row) in rows.iter_mut().enumerate() {
				for (l, k) in row.iter_mut().enumerate() {
					let x = match (u + l) % 7 {
						0 => 0.0,
						1 => -0.0,
						2 => f32::MIN_POSITIVE / 8.0,
						3 => f32::MAX,
						_ => rng.gen_range(-1.0f32..1.0),
					};
					*k = canonical(x);
					columns[l].push(canonical(x));
				}
			}
			sort_lanes(&mut rows, &steps);
			for (l, column) in columns.iter_mut().enumerate() {
				column.sort_unstable_by(f32::total_cmp);
				let sorted: Vec<u32> = rows.iter().map(|row| row[l].to_bits()).collect();
				let expected: Vec<u32> = column.iter().map(|x| x.to_bits()).collect();
				assert_eq!(sorted, expected, "n {n} lane {l}");
			}
		}
	}

	#[test]
	fn canonical_changes_only_negative_zero() {
		assert_eq!(canonical(-0.0).to_bits(), 0.0f32.to_bits());
		for x in [
			0.0f32,
			1.5,
			-1.5,
			f32::MAX,
			f32::MIN,
			f32::MIN_POSITIVE,
			-f32::MIN_POSITIVE / 16.0,
			f32::INFINITY,
			f32::NEG_INFINITY,
		] {
			assert_eq!(canonical(x).to_bits(), x.to_bits(), "{x}");
		}
	}
}
