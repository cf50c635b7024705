//! Pure retargeting maths, free of storage so it can be tested exhaustively.
//!
//! Each block the runtime records its timestamp in a window of the last `W` blocks and
//! computes the next difficulty:
//!
//! 1. `observed = (t_last - t_first) / (n - 1)`, the mean block time over the window
//!    (at least 1 ms so a burst of equal timestamps cannot divide by zero);
//! 2. **damping**: `damped = (observed + (D - 1) * target) / D`, so a single noisy window
//!    moves the difficulty only `1/D` of the way;
//! 3. `proposed = old * target / damped` (faster blocks raise difficulty, slower lower it);
//! 4. **clamp**: `proposed` stays within `old * (1 ± max_change)` per block;
//! 5. **bounds**: the result is forced into `[min, max]` (governance parameters).
//!
//! All arithmetic is on `U256` with saturating operations: no input can panic or wrap.

use sp_core::U256;
use sp_runtime::Perbill;

/// Inputs of one retarget step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetargetParams {
	/// Desired block time in milliseconds (treated as at least 1).
	pub target_block_time_ms: u64,
	/// Damping factor `D` (treated as at least 1; 1 means undamped).
	pub damping: u32,
	/// Largest relative change of the difficulty per block.
	pub max_change: Perbill,
	/// Lower bound on the difficulty (treated as at least 1).
	pub min: U256,
	/// Upper bound on the difficulty (treated as at least `min`).
	pub max: U256,
}

/// Mean spacing of a non-decreasing series of timestamps, in ms; `None` under two samples.
pub fn mean_block_time(timestamps: &[u64]) -> Option<u64> {
	let first = *timestamps.first()?;
	let last = *timestamps.last()?;
	let intervals = u64::try_from(timestamps.len().checked_sub(1)?).ok()?;
	if intervals == 0 {
		return None;
	}
	Some((last.saturating_sub(first) / intervals).max(1))
}

/// `value * p` rounded down, without overflow for any `U256`.
pub fn mul_perbill(value: U256, p: Perbill) -> U256 {
	let parts = U256::from(p.deconstruct());
	let billion = U256::from(1_000_000_000u64);
	let whole = value / billion;
	let rest = value % billion;
	whole
		.saturating_mul(parts)
		.saturating_add(rest.saturating_mul(parts) / billion)
}

/// Clamp `value` into `[min, max]` with `min >= 1` and `max >= min`.
pub fn clamp_bounds(value: U256, min: U256, max: U256) -> U256 {
	let min = min.max(U256::one());
	let max = max.max(min);
	value.clamp(min, max)
}

/// One retarget step from `old` given the observed mean block time.
pub fn next_difficulty(old: U256, observed_ms: u64, params: &RetargetParams) -> U256 {
	let target = U256::from(params.target_block_time_ms.max(1));
	let damping = U256::from(params.damping.max(1));
	let observed = U256::from(observed_ms.max(1));

	let damped = observed
		.saturating_add(target.saturating_mul(damping.saturating_sub(U256::one())))
		/ damping;
	let damped = damped.max(U256::one());

	let old = old.max(U256::one());
	let proposed = match old.checked_mul(target) {
		Some(scaled) => scaled / damped,
		// Only reachable for difficulties near 2^192; divide first and accept the rounding.
		None => (old / damped).saturating_mul(target),
	};

	let step = mul_perbill(old, params.max_change);
	let clamped = proposed.clamp(old.saturating_sub(step), old.saturating_add(step));
	clamp_bounds(clamped, params.min, params.max)
}

#[cfg(test)]
mod tests {
	use super::*;
	use proptest::prelude::*;

	fn params() -> RetargetParams {
		RetargetParams {
			target_block_time_ms: 2_000,
			damping: 4,
			max_change: Perbill::from_percent(10),
			min: U256::from(1_000u64),
			max: U256::from(u128::MAX),
		}
	}

	#[test]
	fn mean_of_window() {
		assert_eq!(mean_block_time(&[]), None);
		assert_eq!(mean_block_time(&[5]), None);
		assert_eq!(mean_block_time(&[1_000, 3_000, 5_000]), Some(2_000));
		// Equal timestamps give the 1 ms floor, never zero.
		assert_eq!(mean_block_time(&[7, 7, 7]), Some(1));
	}

	#[test]
	fn faster_blocks_raise_slower_lower() {
		let old = U256::from(1_000_000u64);
		assert!(next_difficulty(old, 1_000, &params()) > old);
		assert!(next_difficulty(old, 4_000, &params()) < old);
		assert_eq!(next_difficulty(old, 2_000, &params()), old);
	}

	#[test]
	fn damping_moves_a_fraction_of_the_way() {
		let old = U256::from(1_000_000u64);
		let mut p = params();
		p.max_change = Perbill::one();
		// Undamped: blocks twice too slow halve the difficulty.
		p.damping = 1;
		assert_eq!(next_difficulty(old, 4_000, &p), U256::from(500_000u64));
		// D = 4: damped time (4000 + 3*2000)/4 = 2500 → 1_000_000 * 2000 / 2500.
		p.damping = 4;
		assert_eq!(next_difficulty(old, 4_000, &p), U256::from(800_000u64));
	}

	#[test]
	fn per_block_clamp_holds() {
		let old = U256::from(1_000_000u64);
		// Instant blocks: at most +10%.
		assert_eq!(next_difficulty(old, 1, &params()), U256::from(1_100_000u64));
		// A day-long block: at most -10%.
		assert_eq!(
			next_difficulty(old, 86_400_000, &params()),
			U256::from(900_000u64)
		);
	}

	#[test]
	fn bounds_hold() {
		let mut p = params();
		p.min = U256::from(990_000u64);
		assert_eq!(
			next_difficulty(U256::from(1_000_000u64), 86_400_000, &p),
			p.min
		);
		p.max = U256::from(1_050_000u64);
		assert_eq!(next_difficulty(U256::from(1_000_000u64), 1, &p), p.max);
		// Nonsensical bounds (max < min, min = 0) are repaired, not trusted.
		p.min = U256::zero();
		p.max = U256::zero();
		assert_eq!(next_difficulty(U256::from(5u64), 2_000, &p), U256::one());
	}

	#[test]
	fn extremes_do_not_overflow() {
		let mut p = params();
		p.max = U256::MAX;
		p.target_block_time_ms = u64::MAX;
		p.damping = u32::MAX;
		p.max_change = Perbill::one();
		let _ = next_difficulty(U256::MAX, 1, &p);
		let _ = next_difficulty(U256::MAX, u64::MAX, &p);
		let _ = next_difficulty(U256::zero(), 0, &p);
		assert_eq!(mul_perbill(U256::MAX, Perbill::one()), U256::MAX);
		assert_eq!(mul_perbill(U256::MAX, Perbill::zero()), U256::zero());
	}

	proptest! {
		#[test]
		fn result_always_within_bounds_and_clamp(
			old in 1u128..,
			observed in 0u64..10_000_000,
			target in 1u64..600_000,
			damping in 1u32..64,
			change in 0u32..=1_000_000_000,
			min in 1u128..1_000_000,
			max in 1_000_000u128..,
		) {
			let p = RetargetParams {
				target_block_time_ms: target,
				damping,
				max_change: Perbill::from_parts(change),
				min: U256::from(min),
				max: U256::from(max),
			};
			let old = U256::from(old);
			let new = next_difficulty(old, observed, &p);
			prop_assert!(new >= p.min && new <= p.max);
			let step = mul_perbill(old, p.max_change);
			let within_clamp = new >= old.saturating_sub(step) && new <= old.saturating_add(step);
			// Only the [min, max] bounds may override the per-block clamp.
			prop_assert!(within_clamp || new == p.min || new == p.max);
		}

		#[test]
		fn direction_follows_block_time(old in 1_000_000u128..u128::MAX / 4, observed in 1u64..100_000) {
			let p = params();
			let old = U256::from(old);
			let new = next_difficulty(old, observed, &p);
			if observed < p.target_block_time_ms { prop_assert!(new >= old); }
			if observed > p.target_block_time_ms { prop_assert!(new <= old); }
		}
	}
}
