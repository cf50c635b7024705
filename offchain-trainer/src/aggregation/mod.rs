//! Deterministic aggregation rules: FedAvg, coordinate-wise median, trimmed mean and
//! Multi-Krum, and the contribution [`screen`] that runs before every rule.
//!
//! The screen decides which updates count (and so which trainers are paid): an update may
//! not be longer than [`SCREEN_NORM_FACTOR`] times the others' median norm, must point
//! where the others point (its cosine with the coordinate median of the *other*
//! updates is significant at [`SCREEN_Z`] standard errors of a random direction), and must
//! not be a replay of the previous round's global step (outside that step's direction it
//! must still align with the centre: new information only training on this round's model
//! gives). Noise, a zero update, a lone
//! watermark, a sign flip or the last aggregate's delta re-sent as one's own are left out;
//! any update trained on the task's data points along the others. A boosted copy of a
//! real update is left out for its length.
//!
//! Speed: median and trimmed mean sort 16 coordinates at once with a sorting network
//! (branch-free packed min/max; `network`), as does the screen's leave-one-out median;
//! Multi-Krum's pairwise distances take one pass over memory (the finiteness check
//! included), in Gram form, block by block, four partners held in L1 while the others
//! stream past, with an AVX2 build of the products chosen at run time (same bits);
//! FedAvg adds four clients per pass over its accumulator; the finiteness check is one
//! vectorised pass. `blade-bench kernels` prints each against a memory copy.
//!
//! Bit-exactness: every output coordinate is computed from the inputs in one fixed order
//! (client order) with IEEE-754 operations that Rust never reorders or fuses (`f64`
//! sums rounded once to `f32`; the order statistics' network only selects; Multi-Krum's
//! ranking distances sum `f32` lanes in a fixed order, then `f64`; its runtime-chosen
//! AVX2 build performs the same operations on the same lanes, without fusing). Work is
//! split across threads by coordinate ranges only, so the thread count and the machine
//! do not change a single bit; every trainer that aggregates the same updates gets the
//! same blob and the same hash.

use rayon::prelude::*;

use crate::error::{invalid, Result};

mod network;
use network::LANES;

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

/// The updates' common length, after checking there is at least one, that all have that
/// length, that there is a weight for each and (where `finite`) that every value is finite.
fn check(updates: &[Vec<f32>], weights: &[u128], finite: bool) -> Result<usize> {
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
	if finite && !updates.par_iter().all(|u| all_finite(u)) {
		return Err(non_finite());
	}
	Ok(n)
}

fn non_finite() -> crate::error::Error {
	invalid("non-finite parameter in an update")
}

/// Whether every value is finite, in one vectorised pass: `x - x` is `0` for a finite `x`
/// and NaN for an infinity or a NaN, and a NaN survives every later addition.
pub(crate) fn all_finite(values: &[f32]) -> bool {
	let (chunks, tail) = values.as_chunks::<8>();
	let mut acc = [0f32; 8];
	for c in chunks {
		for l in 0..8 {
			#[allow(clippy::eq_op)] // the point: zero exactly when finite
			let zero = c[l] - c[l];
			acc[l] += zero;
		}
	}
	tail.iter().all(|v| v.is_finite()) && acc.iter().all(|a| *a == 0.0)
}

fn weighted_mean(updates: &[&Vec<f32>], weights: &[u128], n: usize) -> Result<Vec<f32>> {
	let total: u128 = weights.iter().sum();
	if total == 0 {
		return Err(invalid("all aggregation weights are zero"));
	}
	// Normalised weights, computed once in a fixed order.
	let w: Vec<f64> = weights.iter().map(|w| *w as f64 / total as f64).collect();
	// Client-major inside each chunk (vectorises), four clients per pass over the
	// accumulator; every coordinate still adds its clients one by one in client order, so
	// the bits depend on neither the chunking nor the grouping.
	let mut out = vec![0f32; n];
	out.par_chunks_mut(CHUNK)
		.enumerate()
		.for_each(|(chunk, slice)| {
			let range = chunk * CHUNK..chunk * CHUNK + slice.len();
			let mut acc = vec![0f64; slice.len()];
			let (quads, rest) = updates.as_chunks::<4>();
			let (wquads, wrest) = w.as_chunks::<4>();
			for (quad, wq) in quads.iter().zip(wquads) {
				let [u0, u1, u2, u3] = quad.each_ref().map(|u| &u[range.clone()]);
				for (i, a) in acc.iter_mut().enumerate() {
					*a = (((*a + f64::from(u0[i]) * wq[0]) + f64::from(u1[i]) * wq[1])
						+ f64::from(u2[i]) * wq[2])
						+ f64::from(u3[i]) * wq[3];
				}
			}
			for (u, w) in rest.iter().zip(wrest) {
				for (a, x) in acc.iter_mut().zip(&u[range.clone()]) {
					*a += f64::from(*x) * w;
				}
			}
			for (o, a) in slice.iter_mut().zip(&acc) {
				*o = *a as f32;
			}
		});
	Ok(out)
}

/// Standard errors (of a random direction's cosine, `1/sqrt(n)`) by which an update must
/// align with the others' centre, in full and outside the previous global step's
/// direction. A random update passes with probability ~3e-5.
pub const SCREEN_Z: f64 = 4.0;

/// How many times the median norm of the other updates an update may reach: a boosted
/// (scaled) update is left out even when it points the right way.
pub const SCREEN_NORM_FACTOR: f64 = 4.0;

/// Why the [`screen`] left an update out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Exclusion {
	/// All zeros, or a non-finite value.
	Empty,
	/// Longer than [`SCREEN_NORM_FACTOR`] times the median norm of the others (a boosted
	/// update trying to outweigh them).
	Oversized {
		/// Its norm over the others' median norm.
		ratio: f64,
	},
	/// Not significantly aligned with the other updates' coordinate median (noise, a sign
	/// flip, an update trained on something else); `z` = cosine x sqrt(n).
	Unaligned {
		/// The alignment's z-score.
		z: f64,
	},
	/// Aligned with the centre only through the previous round's global step: outside
	/// that direction it is noise (or nothing), a replay of the last aggregate rather than
	/// a trained update.
	Replay {
		/// The z-score of its alignment with the centre outside the previous step.
		z: f64,
	},
}

/// The [`screen`]'s verdict.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Screened {
	/// Indices of the updates that count, ascending.
	pub kept: Vec<usize>,
	/// The others, with the reason.
	pub dropped: Vec<(usize, Exclusion)>,
	/// Every update's alignment with the others' centre (`z` = cosine x sqrt(n), what
	/// [`SCREEN_Z`] bounds), NaN where the screen decided before measuring it (empty or
	/// oversized updates, a single update). For diagnostics: how far honest updates are
	/// from the bound, e.g. under heavy DP noise.
	pub alignment: Vec<f64>,
}

/// The lowest and the median of `alignment` ([`Screened::alignment`] or a part of it),
/// NaN values (not measured) left out; NaN for both when nothing was measured.
pub fn lowest_and_median(alignment: &[f64]) -> (f64, f64) {
	let mut z: Vec<f64> = alignment.iter().copied().filter(|z| !z.is_nan()).collect();
	z.sort_by(f64::total_cmp);
	match z.first() {
		Some(lowest) => (*lowest, z[z.len() / 2]),
		None => (f64::NAN, f64::NAN),
	}
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
	a.iter()
		.zip(b)
		.map(|(x, y)| f64::from(*x) * f64::from(*y))
		.sum()
}

/// The coordinate-wise median of the `finite` updates other than `skip`.
fn median_without(updates: &[Vec<f32>], finite: &[bool], skip: usize, n: usize) -> Vec<f32> {
	let others: Vec<&[f32]> = updates
		.iter()
		.enumerate()
		.filter(|(k, _)| *k != skip && finite[*k])
		.map(|(_, u)| u.as_slice())
		.collect();
	// The screen passes finite updates only: the finiteness flag has nothing to add.
	order_statistics(&others, n, true, 0).0
}

/// Which of `updates` (deltas from this round's global model, watermarks removed) count.
///
/// `previous` is the previous round's global step (this round's global model minus the
/// last one), `None` in round 0. Deterministic: every trainer screening the same updates
/// keeps the same set. With one update there is nothing to compare and it is kept.
pub fn screen(updates: &[Vec<f32>], previous: Option<&[f32]>) -> Result<Screened> {
	let n = updates
		.first()
		.ok_or_else(|| invalid("no updates to screen"))?
		.len();
	if updates.iter().any(|u| u.len() != n) {
		return Err(invalid("updates differ in length"));
	}
	if previous.is_some_and(|p| p.len() != n || p.iter().any(|v| !v.is_finite())) {
		return Err(invalid(
			"the previous global step has another size or a non-finite value",
		));
	}
	let m = updates.len();
	let root_n = (n as f64).sqrt();
	let previous = previous.map(|p| (p, dot(p, p).sqrt()));
	let norms: Vec<f64> = updates.par_iter().map(|u| dot(u, u).sqrt()).collect();
	let finite: Vec<bool> = updates.par_iter().map(|u| all_finite(u)).collect();
	let verdicts: Vec<(Option<Exclusion>, f64)> = (0..m)
		.into_par_iter()
		.map(|i| {
			let update = &updates[i];
			let norm = norms[i];
			if norm == 0.0 || !norm.is_finite() {
				return (Some(Exclusion::Empty), f64::NAN);
			}
			if m == 1 {
				return (None, f64::NAN);
			}
			let mut others: Vec<f64> = norms
				.iter()
				.enumerate()
				.filter(|(k, v)| *k != i && v.is_finite() && **v > 0.0)
				.map(|(_, v)| *v)
				.collect();
			if !others.is_empty() {
				others.sort_unstable_by(f64::total_cmp);
				let half = others.len() / 2;
				let median = if others.len() % 2 == 1 {
					others[half]
				} else {
					(others[half - 1] + others[half]) / 2.0
				};
				let ratio = norm / median;
				if ratio > SCREEN_NORM_FACTOR {
					return (Some(Exclusion::Oversized { ratio }), f64::NAN);
				}
			}
			let centre = median_without(updates, &finite, i, n);
			let centre_norm = dot(&centre, &centre).sqrt();
			let aligned = if centre_norm == 0.0 {
				0.0
			} else {
				dot(update, &centre) / (norm * centre_norm)
			};
			let alignment = aligned * root_n;
			if alignment.is_nan() || alignment < SCREEN_Z {
				return (Some(Exclusion::Unaligned { z: alignment }), alignment);
			}
			// Replay: outside the previous step's direction, what is left of the update
			// must still point along the centre. A trained update's new information does;
			// the last step re-sent (with any amount of noise) leaves only noise there.
			if let Some((step, step_norm)) = previous.filter(|(_, s)| *s > 0.0) {
				let along = dot(update, step) / step_norm;
				let centre_along = dot(&centre, step) / step_norm;
				let rest = (norm * norm - along * along).max(0.0).sqrt();
				let centre_rest = (centre_norm * centre_norm - centre_along * centre_along)
					.max(0.0)
					.sqrt();
				// A centre along the previous step leaves nothing to compare with.
				if centre_rest > 1e-6 * centre_norm {
					let z = if rest > 1e-6 * norm {
						(dot(update, &centre) - along * centre_along) / (rest * centre_rest)
							* root_n
					} else {
						0.0
					};
					if z.is_nan() || z < SCREEN_Z {
						return (Some(Exclusion::Replay { z }), alignment);
					}
				}
			}
			(None, alignment)
		})
		.collect();
	let mut screened = Screened::default();
	for (i, (verdict, alignment)) in verdicts.into_iter().enumerate() {
		screened.alignment.push(alignment);
		match verdict {
			None => screened.kept.push(i),
			Some(why) => screened.dropped.push((i, why)),
		}
	}
	Ok(screened)
}

/// The median (`median`) or the mean after dropping `trim` values at each end, of the `m`
/// values whose `i`-th smallest is `sorted(i)`: summed in ascending order in `f64`.
#[inline]
fn order_statistic(sorted: impl Fn(usize) -> f32, m: usize, median: bool, trim: usize) -> f32 {
	if median {
		if m % 2 == 1 {
			sorted(m / 2)
		} else {
			((f64::from(sorted(m / 2 - 1)) + f64::from(sorted(m / 2))) / 2.0) as f32
		}
	} else {
		let sum = (trim..m - trim).map(|i| f64::from(sorted(i))).sum::<f64>();
		(sum / (m - 2 * trim) as f64) as f32
	}
}

/// Coordinates whose products are summed in `f32` lanes before they join a pair's `f64`
/// total (at most 128 terms a lane).
const DISTANCE_BLOCK: usize = 1024;

/// Distance blocks per parallel work item. The item first checks its 32 kB of every update
/// finite, which also brings them into the core's cache for the products that follow (the
/// hardware prefetcher stops at every 4 kB page; one block per item left it cold).
const BLOCKS_PER_ITEM: usize = 8;

/// Below this share of the pair's two norms a block's Gram distance is recomputed as exact
/// differences (near-copies: cosine above ~0.999). Above it the Gram form's error, a few
/// `f32` roundings of the norms, is under 1 % of the distance even in the worst case.
const NEAR_COPY: f64 = 1.0 / 1024.0;

/// Partners summed together against one update (its block is read once for all four).
const PARTNERS: usize = 4;

/// The tiles of [`block_products`] for `m` updates: `(first, last)` for tile `t`, the
/// updates `first = 1 + 4t ..= last` (at most [`PARTNERS`]); the tile pairs with every
/// update `a < last`, so it has `last` entries in `dots`.
fn tiles(m: usize) -> impl Iterator<Item = (usize, usize)> {
	(1..m)
		.step_by(PARTNERS)
		.map(move |first| (first, (first + PARTNERS).min(m) - 1))
}

/// Per lane, the dot products of `xs` with each of four partners (four accumulators in
/// registers, `xs` read once).
#[inline(always)]
fn dot_lanes(xs: &[[f32; 8]], ys: [&[[f32; 8]]; PARTNERS]) -> [[f32; 8]; PARTNERS] {
	let mut acc = [[0f32; 8]; PARTNERS];
	let rows = xs.iter().zip(ys[0]).zip(ys[1]).zip(ys[2]).zip(ys[3]);
	for ((((x, y0), y1), y2), y3) in rows {
		for (acc, y) in acc.iter_mut().zip([y0, y1, y2, y3]) {
			for l in 0..8 {
				acc[l] += x[l] * y[l];
			}
		}
	}
	acc
}

/// The squared norms of one block of every update (`blocks[k]`: update `k`'s eight-lane part)
/// and the lanes of every pair's dot product, computed tile by tile: [`PARTNERS`]
/// consecutive updates `b` (tile `t` holds `1 + 4t ..= 4 + 4t`, a short last tile repeats its
/// last update) against every update `a` below the tile's last, so that the tile stays in
/// L1 while the others stream past it. `dots` gets one entry per tile and `a`, tile-major.
///
/// Run through [`pulp::Arch::dispatch`], which compiles it a second time with AVX2 (FMA
/// unused: Rust never fuses a multiply and an add) and picks that build where the CPU has
/// it. Both builds do the same IEEE operations on the same eight lanes in the same order,
/// so they give the same bits; the wider one needs a third of the instructions (memory
/// operands and eight lanes per register, where baseline SSE2 loads separately and holds
/// four).
#[inline(always)]
fn block_products(blocks: &[&[[f32; 8]]], norms: &mut [f64], dots: &mut Vec<[[f32; 8]; PARTNERS]>) {
	for (norm, xs) in norms.iter_mut().zip(blocks) {
		*norm = norm_lanes(xs);
	}
	dots.clear();
	for (first, last) in tiles(blocks.len()) {
		let ys = std::array::from_fn(|i| blocks[(first + i).min(last)]);
		for xs in &blocks[..last] {
			dots.push(dot_lanes(xs, ys));
		}
	}
}

/// [`block_products`] as a [`pulp::WithSimd`] operation, so that it is inlined into (and
/// compiled for) each instruction set `pulp` dispatches to (a closure is called, not
/// inlined).
struct BlockProducts<'a, 'b> {
	blocks: &'a [&'b [[f32; 8]]],
	norms: &'a mut [f64],
	dots: &'a mut Vec<[[f32; 8]; PARTNERS]>,
}

impl pulp::WithSimd for BlockProducts<'_, '_> {
	type Output = ();

	#[inline(always)]
	fn with_simd<S: pulp::Simd>(self, _: S) {
		block_products(self.blocks, self.norms, self.dots)
	}
}

/// `|x|^2` of the eight-lane part, lanes summed in `f32`, then added in `f64`.
#[inline(always)]
fn norm_lanes(xs: &[[f32; 8]]) -> f64 {
	let mut acc = [0f32; 8];
	for x in xs {
		for l in 0..8 {
			acc[l] += x[l] * x[l];
		}
	}
	acc.iter().map(|v| f64::from(*v)).sum()
}

/// `|x - y|^2` in `f64`, in coordinate order.
fn squared_distance_f64(x: &[f32], y: &[f32]) -> f64 {
	x.iter()
		.zip(y)
		.map(|(p, q)| {
			let d = f64::from(*p) - f64::from(*q);
			d * d
		})
		.sum()
}

/// Squared L2 distances of every pair `(a, b)`, `a < b`, in the order `(0, 1), (0, 2), ...,
/// (1, 2), ...`, or `None` if an update has a non-finite value: one pass over memory that
/// also checks finiteness.
///
/// Per block of [`DISTANCE_BLOCK`] coordinates a pair's distance is `|x|^2 + |y|^2 - 2 x.y`
/// (Gram form: a multiply and an add per coordinate and pair, where the differences cost a
/// subtraction more), each term summed in eight `f32` lanes and the lanes added in `f64`;
/// the ragged tail is summed exactly in `f64`. The error of a pair's distance is a few
/// `f32` roundings of *its own* two norms (no third update enters it, so a huge hostile
/// update cannot blur the distances between the others). Where that could matter, a block
/// whose distance is below [`NEAR_COPY`] of the two norms (near-copies, where the form
/// cancels and an attacker who knows an honest update could steer roundings) is summed
/// as exact differences in `f64` instead, as is a block whose lanes overflow `f32` (values
/// above ~1e19: hostile updates only), so every distance is finite. Blocks are added in block
/// order within a work item and items in item order, so the bits depend on neither the
/// thread count nor the machine.
fn pairwise_distances(updates: &[Vec<f32>], n: usize) -> Option<Vec<f64>> {
	let m = updates.len();
	let pairs = m * m.saturating_sub(1) / 2;
	let item = DISTANCE_BLOCK * BLOCKS_PER_ITEM;
	let arch = pulp::Arch::new();
	// Where tile `t`'s entries start in `dots`, and how many there are in all.
	let starts: Vec<usize> = tiles(m)
		.scan(0, |at, (_, last)| {
			let start = *at;
			*at += last;
			Some(start)
		})
		.collect();
	let entries = tiles(m).map(|(_, last)| last).sum();
	let partial: Option<Vec<Vec<f64>>> = (0..n.div_ceil(item))
		.into_par_iter()
		.map(|it| {
			let span = it * item..((it + 1) * item).min(n);
			if !updates.iter().all(|u| all_finite(&u[span.clone()])) {
				return None;
			}
			let mut out = vec![0f64; pairs];
			let mut norms = vec![0f64; m];
			let mut dots = Vec::with_capacity(entries);
			for start in span.clone().step_by(DISTANCE_BLOCK) {
				let range = start..(start + DISTANCE_BLOCK).min(span.end);
				let blocks: Vec<(&[[f32; 8]], &[f32])> = updates
					.iter()
					.map(|u| u[range.clone()].as_chunks::<8>())
					.collect();
				let heads: Vec<&[[f32; 8]]> = blocks.iter().map(|(xs, _)| *xs).collect();
				arch.dispatch(BlockProducts {
					blocks: &heads,
					norms: &mut norms,
					dots: &mut dots,
				});
				let mut p = 0;
				for a in 0..m {
					let x_tail = blocks[a].1;
					for c in a + 1..m {
						let tile = (c - 1) / PARTNERS;
						let lanes = &dots[starts[tile] + a][(c - 1) % PARTNERS];
						let dot = lanes.iter().map(|v| f64::from(*v)).sum::<f64>();
						let gram = norms[a] + norms[c] - 2.0 * dot;
						let block = if gram.is_finite() && gram >= NEAR_COPY * (norms[a] + norms[c])
						{
							gram + squared_distance_f64(x_tail, blocks[c].1)
						} else {
							// Products beyond f32's range (only hostile updates have
							// them), or a near-copy whose Gram form would cancel: this
							// pair's block again as exact differences in f64, so the
							// distance stays finite, exact where it is small, and no
							// one can steer its rounding.
							squared_distance_f64(
								&updates[a][range.clone()],
								&updates[c][range.clone()],
							)
						};
						out[p] += block;
						p += 1;
					}
				}
			}
			Some(out)
		})
		.collect();
	let partial = partial?;
	Some(
		(0..pairs)
			.map(|p| partial.iter().map(|item| item[p]).sum())
			.collect(),
	)
}

/// Coordinate `j` of every row, canonical ([`network::canonical`]) and sorted.
fn sorted_column(rows: &[&[f32]], j: usize, buf: &mut Vec<f32>) {
	buf.clear();
	buf.extend(rows.iter().map(|u| network::canonical(u[j])));
	buf.sort_unstable_by(f32::total_cmp);
}

/// The coordinate-wise median (`median`) or mean after dropping `trim` values at each end
/// of `rows` (all of length `n`; signed zeros count as `+0.0`): [`LANES`] coordinates at a
/// time through the sorting network, the ragged tail by sorting; and whether every value
/// was finite (checked as the values are loaded, so the aggregate needs no separate pass
/// over memory; with a non-finite value the output means nothing).
fn order_statistics(rows: &[&[f32]], n: usize, median: bool, trim: usize) -> (Vec<f32>, bool) {
	let m = rows.len();
	let mut out = vec![0f32; n];
	if m == 0 {
		return (out, true);
	}
	let steps = network::batcher(m);
	let finite = out
		.par_chunks_mut(CHUNK)
		.enumerate()
		.map(|(chunk, slice)| {
			let start = chunk * CHUNK;
			let full = slice.len() / LANES * LANES;
			let mut lanes = vec![[0f32; LANES]; m];
			// `x - x` is 0 for a finite `x` and NaN otherwise; a NaN survives every sum.
			let mut zeros = [0f32; LANES];
			for group in (0..full).step_by(LANES) {
				let base = start + group;
				for (lane_row, u) in lanes.iter_mut().zip(rows) {
					let values = &u[base..base + LANES];
					for ((k, zero), x) in lane_row.iter_mut().zip(&mut zeros).zip(values) {
						#[allow(clippy::eq_op)] // the point: zero exactly when finite
						let z = *x - *x;
						*zero += z;
						*k = network::canonical(*x);
					}
				}
				network::sort_lanes(&mut lanes, &steps);
				// Row-wise (vectorised), the same operations in the same order per lane
				// as `order_statistic`.
				let values: [f32; LANES] = if median && m % 2 == 1 {
					lanes[m / 2]
				} else if median {
					let (a, b) = (lanes[m / 2 - 1], lanes[m / 2]);
					std::array::from_fn(|l| ((f64::from(a[l]) + f64::from(b[l])) / 2.0) as f32)
				} else {
					let mut sum = [0f64; LANES];
					for row in &lanes[trim..m - trim] {
						for l in 0..LANES {
							sum[l] += f64::from(row[l]);
						}
					}
					let kept = (m - 2 * trim) as f64;
					std::array::from_fn(|l| (sum[l] / kept) as f32)
				};
				slice[group..group + LANES].copy_from_slice(&values);
			}
			let mut buf = Vec::with_capacity(m);
			let mut tail_finite = true;
			for (k, v) in slice[full..].iter_mut().enumerate() {
				sorted_column(rows, start + full + k, &mut buf);
				tail_finite &= buf.iter().all(|x| x.is_finite());
				*v = order_statistic(|i| buf[i], m, median, trim);
			}
			tail_finite && zeros.iter().all(|z| *z == 0.0)
		})
		.reduce(|| true, |a, b| a && b);
	(out, finite)
}

/// Aggregate `updates` (watermarks already removed) with `rule`; `weights` are the FedAvg
/// weights (Multi-Krum uses them for its final mean, median and trimmed mean ignore them).
pub fn aggregate(updates: &[Vec<f32>], weights: &[u128], rule: Rule) -> Result<Aggregate> {
	// Median, trimmed mean and Multi-Krum check finiteness inside their own pass over the
	// updates (one read of memory instead of two).
	let n = check(updates, weights, matches!(rule, Rule::FedAvg))?;
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
			let rows: Vec<&[f32]> = updates.iter().map(|u| u.as_slice()).collect();
			let (out, finite) = order_statistics(&rows, n, median, trim);
			if !finite {
				return Err(non_finite());
			}
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
			let pairs = (0..m).flat_map(|a| (a + 1..m).map(move |b| (a, b)));
			let distances = pairwise_distances(updates, n).ok_or_else(non_finite)?;
			let mut matrix = vec![vec![0f64; m]; m];
			for ((a, b), d) in pairs.zip(&distances) {
				matrix[a][b] = *d;
				matrix[b][a] = *d;
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

	/// The sorting-network path gives the very bits of sorting each coordinate (signed
	/// zeros counted as +0.0), for odd and even counts, signed zeros and a ragged tail.
	#[test]
	fn order_statistics_equal_the_sorting_reference() {
		for m in [3usize, 4, 9, 20, 21] {
			let mut u = updates(m, 4096 + 37, m as u64);
			for (k, row) in u.iter_mut().enumerate() {
				row[k] = if k % 2 == 0 { 0.0 } else { -0.0 };
			}
			for rule in [Rule::Median, Rule::TrimmedMean { trim: 0.2 }] {
				let got = aggregate(&u, &vec![1; m], rule).unwrap().values;
				let trim = match rule {
					Rule::TrimmedMean { trim } => (trim * m as f64).floor() as usize,
					_ => 0,
				};
				let expected: Vec<f32> = (0..u[0].len())
					.map(|j| {
						// Signed zeros count as +0.0, then an ordinary sort.
						let mut buf: Vec<f32> = u.iter().map(|r| r[j] + 0.0).collect();
						buf.sort_unstable_by(f32::total_cmp);
						if matches!(rule, Rule::Median) {
							if m % 2 == 1 {
								buf[m / 2]
							} else {
								((f64::from(buf[m / 2 - 1]) + f64::from(buf[m / 2])) / 2.0) as f32
							}
						} else {
							let kept = &buf[trim..m - trim];
							(kept.iter().map(|x| f64::from(*x)).sum::<f64>() / kept.len() as f64)
								as f32
						}
					})
					.collect();
				assert_eq!(bits(&got), bits(&expected), "m {m} {rule:?}");
			}
		}
	}

	proptest::proptest! {
		/// Arbitrary `f32` bit patterns (NaN, infinities, subnormals, signed zeros) and
		/// weights under every rule (the fuzz target's properties, in the normal suite):
		/// no panic; an aggregate only from finite updates, itself finite, within the
		/// inputs' range for the order statistics; the screen keeps nothing non-finite.
		#[test]
		fn every_rule_on_arbitrary_bits(
			m in 1usize..7,
			n in 1usize..40,
			bits in proptest::collection::vec(proptest::prelude::any::<u32>(), 6 * 40),
			weights in proptest::collection::vec(0u128..5, 6),
			trim in 0.0f64..0.5,
			byzantine in 0usize..3,
		) {
			let updates: Vec<Vec<f32>> = (0..m)
				.map(|k| bits[k * n..(k + 1) * n].iter().map(|b| f32::from_bits(*b)).collect())
				.collect();
			let finite = updates.iter().flatten().all(|v| v.is_finite());
			if let Ok(screened) = screen(&updates, None) {
				for k in &screened.kept {
					proptest::prop_assert!(updates[*k].iter().all(|v| v.is_finite()));
				}
			}
			for rule in [
				Rule::FedAvg,
				Rule::Median,
				Rule::TrimmedMean { trim },
				Rule::MultiKrum { byzantine },
			] {
				if let Ok(out) = aggregate(&updates, &weights[..m], rule) {
					proptest::prop_assert!(finite);
					proptest::prop_assert_eq!(out.values.len(), n);
					proptest::prop_assert!(out.values.iter().all(|v| v.is_finite()));
					if !matches!(rule, Rule::FedAvg | Rule::MultiKrum { .. }) {
						for (j, v) in out.values.iter().enumerate() {
							let lo = updates.iter().map(|u| u[j]).fold(f32::INFINITY, f32::min);
							let hi = updates.iter().map(|u| u[j]).fold(f32::NEG_INFINITY, f32::max);
							proptest::prop_assert!(*v >= lo && *v <= hi);
						}
					}
				}
			}
		}
	}

	#[test]
	fn all_finite_finds_every_non_finite_value_anywhere() {
		for len in [0usize, 1, 7, 8, 9, 64, 1001] {
			let clean: Vec<f32> = (0..len).map(|i| i as f32 - 500.0).collect();
			assert!(all_finite(&clean), "len {len}");
			for pos in [0, len / 2, len.saturating_sub(1)] {
				for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
					if len == 0 {
						continue;
					}
					let mut v = clean.clone();
					v[pos] = bad;
					assert!(!all_finite(&v), "len {len} pos {pos} {bad}");
				}
			}
		}
		// The largest finite values do not overflow the check.
		assert!(all_finite(&[f32::MAX; 33]));
		assert!(all_finite(&[f32::MIN; 33]));
	}

	/// The blocked, four-partner, f32-lane distances agree with a plain f64 sum to single
	/// precision, for every pair and for counts that leave short partner groups.
	#[test]
	fn pairwise_distances_match_a_plain_sum() {
		for (m, n) in [(2usize, 5usize), (5, 2048 + 13), (7, 3 * 2048), (9, 100)] {
			let u = updates(m, n, m as u64 + 40);
			let got = pairwise_distances(&u, n).unwrap();
			let mut p = 0;
			for a in 0..m {
				for b in a + 1..m {
					let want: f64 = u[a]
						.iter()
						.zip(&u[b])
						.map(|(x, y)| {
							let d = f64::from(*x) - f64::from(*y);
							d * d
						})
						.sum();
					assert!((got[p] - want).abs() <= 1e-5 * want, "m {m} ({a},{b})");
					p += 1;
				}
			}
			assert_eq!(p, got.len());
		}
		// Differences beyond f32's range fall back to f64 and stay finite and ordered.
		let mut u = updates(5, 3000, 9);
		u[3][1500] = 3e38;
		u[4][1500] = -3e38;
		let got = pairwise_distances(&u, 3000).unwrap();
		assert!(got.iter().all(|d| d.is_finite()), "{got:?}");
		// (3, 4) is the farthest pair: last in the order.
		let last = got.len() - 1;
		assert!(got[..last].iter().all(|d| *d < got[last]));
	}

	/// The `pulp`-dispatched build of the products (AVX2 where the CPU has it) gives the
	/// same bits as the baseline build, on ordinary values, subnormals, signed zeros, values
	/// whose products overflow `f32`, and every group shape (short last tiles included).
	#[test]
	fn dispatched_products_equal_the_baseline_bits() {
		fn run(
			simd: impl FnOnce(BlockProducts<'_, '_>),
			blocks: &[&[[f32; 8]]],
		) -> (Vec<u64>, Vec<u32>) {
			let mut norms = vec![0f64; blocks.len()];
			let mut dots = Vec::new();
			simd(BlockProducts {
				blocks,
				norms: &mut norms,
				dots: &mut dots,
			});
			(
				norms.iter().map(|v| v.to_bits()).collect(),
				dots.iter()
					.flatten()
					.flatten()
					.map(|v| v.to_bits())
					.collect(),
			)
		}
		for m in [2usize, 3, 5, 8, 9, 20] {
			let mut u = updates(m, 1024, 70 + m as u64);
			u[0][3] = 1e-40; // subnormal
			u[1][5] = -0.0;
			u[m - 1][7] = 3e20; // its products overflow f32
			let chunks: Vec<&[[f32; 8]]> = u.iter().map(|x| x.as_chunks::<8>().0).collect();
			let baseline = run(|op| pulp::Simd::vectorize(pulp::Scalar::new(), op), &chunks);
			let dispatched = run(|op| pulp::Arch::new().dispatch(op), &chunks);
			assert_eq!(baseline, dispatched, "m {m}");
		}
	}

	/// Attack: one update with values near `1e18` (its distances are ~`1e36 n`) must not
	/// blur the distances between the others, or Krum would rank the honest updates (and
	/// a subtle colluder among them) by rounding noise. Each pair's error depends on its own
	/// two norms only.
	#[test]
	fn attack_huge_update_cannot_blur_the_honest_distances() {
		let n = 3 * 8192 + 5;
		let mut u = updates(6, n, 12);
		u[0] = (0..n)
			.map(|i| if i % 2 == 0 { 1e18 } else { -1e18 })
			.collect();
		let got = pairwise_distances(&u, n).unwrap();
		let mut p = 0;
		for a in 0..6 {
			for b in a + 1..6 {
				let want = squared_distance_f64(&u[a], &u[b]);
				assert!(
					(got[p] - want).abs() <= 1e-5 * want,
					"({a},{b}) {} {want}",
					got[p]
				);
				p += 1;
			}
		}
	}

	/// Near-copies (a lazy trainer's update plus a faint watermark) get their exact,
	/// small distance: below [`NEAR_COPY`] of the norms a block is summed as differences.
	#[test]
	fn near_copies_have_small_non_negative_distances() {
		let n = 8192 + 40;
		let base = updates(1, n, 3).remove(0);
		let copy: Vec<f32> = base
			.iter()
			.enumerate()
			.map(|(i, x)| x + if i % 3 == 0 { 1e-4 } else { 0.0 })
			.collect();
		let far = updates(1, n, 4).remove(0);
		let u = vec![base.clone(), base.clone(), copy, far.clone()];
		let got = pairwise_distances(&u, n).unwrap();
		// Pairs in order (0, 1) (0, 2) (0, 3) (1, 2) (1, 3) (2, 3): 0 and 1 identical, 2 a
		// near-copy of both, 3 far from all.
		assert!(got.iter().all(|d| *d >= 0.0), "{got:?}");
		assert_eq!(got[0], 0.0);
		// Near-copies are summed as exact differences: no cancellation to steer.
		let exact = squared_distance_f64(&base, &u[2]);
		assert!(
			(got[1] - exact).abs() <= 1e-12 * exact,
			"{} {exact}",
			got[1]
		);
		let far_pair = squared_distance_f64(&base, &far);
		assert!(got[2] > 10.0 * got[1] && got[2] > 0.5 * far_pair);
	}

	/// Multi-Krum checks finiteness inside its distance pass: a NaN or an infinity in any
	/// block of any update (first, middle, last block, ragged tail) is refused.
	#[test]
	fn multi_krum_refuses_non_finite_values_anywhere() {
		let n = 2 * 8192 + 3;
		for pos in [0, 8191, 8192, n - 1] {
			for bad in [f32::NAN, f32::INFINITY] {
				let mut u = updates(5, n, 8);
				u[4][pos] = bad;
				assert!(
					aggregate(&u, &[1; 5], Rule::MultiKrum { byzantine: 1 }).is_err(),
					"pos {pos} {bad}"
				);
			}
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

	/// `m` honest deltas: one shared direction `g` plus independent noise `noise` times as
	/// large (per coordinate), and a previous step `p` whose cosine with `g` is about 0.6.
	fn honest_round(m: usize, n: usize, noise: f32, seed: u64) -> (Vec<Vec<f32>>, Vec<f32>) {
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
		let normal = Normal::new(0.0f32, 1.0).unwrap();
		let g: Vec<f32> = (0..n).map(|_| normal.sample(&mut rng)).collect();
		let previous = g
			.iter()
			.map(|x| 0.6 * x + 0.8 * normal.sample(&mut rng))
			.collect();
		let updates = (0..m)
			.map(|_| {
				g.iter()
					.map(|x| x + noise * normal.sample(&mut rng))
					.collect()
			})
			.collect();
		(updates, previous)
	}

	#[test]
	fn screen_keeps_every_honest_update_even_when_noise_dominates() {
		for seed in 0..20 {
			// Per-trainer noise 5x the signal (each update's cosine with the truth ~0.2).
			let (u, previous) = honest_round(20, 25_000, 5.0, seed);
			let s = screen(&u, Some(&previous)).unwrap();
			assert_eq!(
				s.kept,
				(0..20).collect::<Vec<_>>(),
				"seed {seed}: {:?}",
				s.dropped
			);
		}
	}

	/// Five free riders among twenty (a quarter): all five out, every honest update in,
	/// including the one whose negation an attacker submitted to push it out.
	#[test]
	fn screen_drops_free_riders_zero_noise_sign_flip_and_replay() {
		let (mut u, previous) = honest_round(20, 25_000, 2.0, 3);
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(99);
		let normal = Normal::new(0.0f32, 1.0).unwrap();
		u[15] = vec![0.0; 25_000];
		u[16] = (0..25_000).map(|_| normal.sample(&mut rng)).collect();
		u[17] = u[0].iter().map(|x| -x).collect();
		// The last global step re-sent, with noise as large as itself.
		u[18] = previous
			.iter()
			.map(|x| x + normal.sample(&mut rng))
			.collect();
		u[19] = vec![f32::NAN; 25_000];
		let s = screen(&u, Some(&previous)).unwrap();
		assert_eq!(s.kept, (0..15).collect::<Vec<_>>(), "{:?}", s.dropped);
		let why = |i: usize| s.dropped.iter().find(|(k, _)| *k == i).unwrap().1;
		assert_eq!(why(15), Exclusion::Empty);
		assert_eq!(why(19), Exclusion::Empty);
		assert!(matches!(why(16), Exclusion::Unaligned { z } if z.abs() < SCREEN_Z));
		// The alignment is reported for every update the screen measured: the one that
		// decided an `Unaligned` verdict, at least the bound for every update kept.
		assert_eq!(s.alignment.len(), u.len());
		for (i, why) in &s.dropped {
			if let Exclusion::Unaligned { z } = why {
				assert_eq!(s.alignment[*i].to_bits(), z.to_bits());
			}
		}
		assert!(s.kept.iter().all(|k| s.alignment[*k] >= SCREEN_Z));
		assert!(matches!(why(17), Exclusion::Unaligned { z } if z < -SCREEN_Z));
		assert!(matches!(why(18), Exclusion::Replay { .. }), "{:?}", why(18));
		// Without a previous step (round 0) the replay cannot be told from training.
		assert!(screen(&u, None).unwrap().kept.contains(&18));
	}

	/// A boosted update (an honest one times 10) points the right way but is left out for
	/// its length; one at 3x the others passes (the rules bound its influence).
	#[test]
	fn screen_drops_a_boosted_update() {
		let (mut u, previous) = honest_round(10, 25_000, 2.0, 13);
		u[9] = u[0].iter().map(|x| 10.0 * x).collect();
		let s = screen(&u, Some(&previous)).unwrap();
		assert_eq!(s.kept, (0..9).collect::<Vec<_>>(), "{:?}", s.dropped);
		assert!(matches!(s.dropped[0], (9, Exclusion::Oversized { ratio }) if ratio > 9.0));
		u[9] = u[0].iter().map(|x| 3.0 * x).collect();
		assert!(screen(&u, Some(&previous)).unwrap().kept.contains(&9));
	}

	/// Hiding the replay under more noise trades one exclusion for the other: at every
	/// noise level the replayed step is left out, as a replay or as unaligned.
	#[test]
	fn screen_drops_a_replay_at_every_noise_level() {
		let (mut u, previous) = honest_round(10, 25_000, 2.0, 5);
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
		let normal = Normal::new(0.0f32, 1.0).unwrap();
		for noise in [0.0f32, 1.0, 3.0, 10.0, 30.0, 100.0] {
			u[9] = previous
				.iter()
				.map(|x| x + noise * normal.sample(&mut rng))
				.collect();
			let s = screen(&u, Some(&previous)).unwrap();
			assert_eq!(
				s.kept,
				(0..9).collect::<Vec<_>>(),
				"noise {noise}: {:?}",
				s.dropped
			);
		}
	}

	#[test]
	fn screen_is_bit_exact_across_thread_counts_and_handles_small_inputs() {
		let (u, previous) = honest_round(9, 20_000, 4.0, 11);
		let one = with_threads(1, || screen(&u, Some(&previous)).unwrap());
		let four = with_threads(4, || screen(&u, Some(&previous)).unwrap());
		assert_eq!(one, four);
		assert_eq!(screen(&u[..1], None).unwrap().kept, vec![0]);
		assert_eq!(screen(&u[..2], None).unwrap().kept, vec![0, 1]);
		assert!(screen(&[], None).is_err());
		assert!(screen(&[vec![1.0], vec![1.0, 2.0]], None).is_err());
		assert!(screen(&u, Some(&[1.0])).is_err());
	}
}
