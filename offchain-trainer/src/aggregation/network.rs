//! Coordinate-wise order statistics at memory speed, bit-identical to sorting.
//!
//! Sorting each coordinate's `m` values one coordinate at a time gathers from `m` arrays
//! with a stride and branches on every comparison. Instead, [`LANES`] neighbouring
//! coordinates are sorted together by a **sorting network** (Batcher's odd-even merge sort
//! for any `m`): a fixed list of compare-exchange steps, each a branch-free `min`/`max` over
//! the lanes that the compiler vectorises. The values are first mapped to integers whose
//! order is `f32::total_cmp`'s (so `-0.0 < +0.0`, exactly as the sort it replaces), which
//! makes the sorted lanes, and everything computed from them, the same bits as before.

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

/// `f32` to an `i32` whose integer order is `f32::total_cmp`'s.
#[inline]
pub fn key(x: f32) -> i32 {
	let b = x.to_bits() as i32;
	b ^ (((b >> 31) as u32) >> 1) as i32
}

/// Inverse of [`key`].
#[inline]
pub fn value(k: i32) -> f32 {
	f32::from_bits((k ^ (((k >> 31) as u32) >> 1) as i32) as u32)
}

/// Sort `LANES` columns at once: `keys[u * LANES + l]` is value `u` of lane `l`.
#[inline]
pub fn sort_lanes(keys: &mut [[i32; LANES]], steps: &[(usize, usize)]) {
	for &(i, j) in steps {
		let (lo, hi) = keys.split_at_mut(j);
		let (a, b) = (&mut lo[i], &mut hi[0]);
		for l in 0..LANES {
			let (x, y) = (a[l], b[l]);
			a[l] = x.min(y);
			b[l] = x.max(y);
		}
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
	fn lanes_sort_like_total_cmp_for_any_count() {
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
		for n in [1usize, 2, 3, 5, 17, 20, 33, 64] {
			let steps = batcher(n);
			let mut keys = vec![[0i32; LANES]; n];
			let mut columns = vec![Vec::new(); LANES];
			for (u, row) in keys.iter_mut().enumerate() {
				for (l, k) in row.iter_mut().enumerate() {
					let x = match (u + l) % 7 {
						0 => 0.0,
						1 => -0.0,
						_ => rng.gen_range(-1.0f32..1.0),
					};
					*k = key(x);
					columns[l].push(x);
				}
			}
			sort_lanes(&mut keys, &steps);
			for (l, column) in columns.iter_mut().enumerate() {
				column.sort_unstable_by(f32::total_cmp);
				let sorted: Vec<u32> = keys.iter().map(|row| value(row[l]).to_bits()).collect();
				let expected: Vec<u32> = column.iter().map(|x| x.to_bits()).collect();
				assert_eq!(sorted, expected, "n {n} lane {l}");
			}
		}
		for x in [
			0.0f32,
			-0.0,
			1.5,
			-1.5,
			f32::MAX,
			f32::MIN,
			f32::MIN_POSITIVE,
		] {
			assert_eq!(value(key(x)).to_bits(), x.to_bits());
		}
	}
}
