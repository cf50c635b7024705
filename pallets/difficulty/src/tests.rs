//! Unit tests of `pallet_difficulty`; each ends with the `try_state` invariants.

use crate::{mock::*, CurrentDifficulty, Error, Event, RecentTimestamps};
use frame_support::{assert_noop, assert_ok, traits::OnTimestampSet};
use sp_core::U256;
use sp_runtime::DispatchError;

fn feed(timestamps: impl IntoIterator<Item = u64>) {
	for t in timestamps {
		<Difficulty as OnTimestampSet<u64>>::on_timestamp_set(t);
	}
}

#[test]
fn genesis_sets_initial_difficulty() {
	build_and_execute(|| {
		assert_eq!(Difficulty::difficulty(), U256::from(INITIAL));
		assert!(RecentTimestamps::<Test>::get().is_empty());
	});
}

#[test]
fn fast_blocks_raise_difficulty() {
	build_and_execute(|| {
		feed((1..=5).map(|i| i * 500));
		assert!(Difficulty::difficulty() > U256::from(INITIAL));
	});
}

#[test]
fn slow_blocks_lower_difficulty() {
	build_and_execute(|| {
		feed((1..=5).map(|i| i * 8_000));
		assert!(Difficulty::difficulty() < U256::from(INITIAL));
	});
}

#[test]
fn on_target_blocks_keep_difficulty() {
	build_and_execute(|| {
		feed((1..=20).map(|i| i * 2_000));
		assert_eq!(Difficulty::difficulty(), U256::from(INITIAL));
	});
}

#[test]
fn window_is_bounded_and_sliding() {
	build_and_execute(|| {
		feed((1..=12).map(|i| i * 1_000));
		let window = RecentTimestamps::<Test>::get();
		assert_eq!(
			window.into_inner(),
			vec![8_000, 9_000, 10_000, 11_000, 12_000]
		);
	});
}

#[test]
fn first_timestamp_alone_changes_nothing() {
	build_and_execute(|| {
		feed([42]);
		assert_eq!(Difficulty::difficulty(), U256::from(INITIAL));
	});
}

#[test]
fn difficulty_converges_to_target_rate() {
	// A miner with a fixed hash rate: block time = difficulty / rate. Start 4x too easy.
	build_and_execute(|| {
		let rate = 2_000u64; // hashes per ms → difficulty 4_000_000 gives 2 s blocks
		let mut now = 0u64;
		for _ in 0..400 {
			let d = Difficulty::difficulty().low_u64();
			now += (d / rate).max(1);
			feed([now]);
		}
		let d = Difficulty::difficulty().low_u64();
		let block_time = d / rate;
		assert!(
			(1_800..=2_200).contains(&block_time),
			"converged to {block_time} ms"
		);
	});
}

#[test]
fn governance_parameters_take_effect() {
	build_and_execute(|| {
		// Blocks at exactly 2 s keep the difficulty; halve the target and they are "slow".
		feed((1..=5).map(|i| i * 2_000));
		assert_eq!(Difficulty::difficulty(), U256::from(INITIAL));
		TargetBlockTime::set(1_000);
		feed([12_000]);
		assert!(Difficulty::difficulty() < U256::from(INITIAL));
		TargetBlockTime::set(2_000);
	});
}

#[test]
fn clamp_and_bounds_hold_at_extremes() {
	build_and_execute(|| {
		// Instant blocks for a long time: never above the bound, never over +10%/block.
		let mut prev = Difficulty::difficulty();
		for t in 0..500u64 {
			feed([t]);
			let now = Difficulty::difficulty();
			assert!(now <= prev + prev / 10 + 1);
			assert!(now <= U256::from(MaxDifficulty::get()));
			prev = now;
		}
		assert_eq!(prev, U256::from(MaxDifficulty::get()));
		// Then glacial blocks: down to the minimum and no further.
		for i in 1..=500u64 {
			feed([1_000_000_000 * i]);
		}
		assert_eq!(Difficulty::difficulty(), U256::from(MinDifficulty::get()));
	});
}

#[test]
fn non_monotonic_timestamp_is_clamped() {
	build_and_execute(|| {
		feed([10_000, 5_000]);
		assert_eq!(
			RecentTimestamps::<Test>::get().into_inner(),
			vec![10_000, 10_000]
		);
	});
}

#[test]
fn set_difficulty_by_root() {
	build_and_execute(|| {
		feed([1_000, 2_000]);
		assert_ok!(Difficulty::set_difficulty(RuntimeOrigin::root(), 5_000));
		assert_eq!(CurrentDifficulty::<Test>::get(), U256::from(5_000));
		assert!(RecentTimestamps::<Test>::get().is_empty());
		System::assert_last_event(
			Event::DifficultySet {
				old: U256::from(INITIAL) * 11 / 10,
				new: U256::from(5_000),
			}
			.into(),
		);
	});
}

#[test]
fn set_difficulty_rejects_non_governance() {
	build_and_execute(|| {
		assert_noop!(
			Difficulty::set_difficulty(RuntimeOrigin::signed(1), 5_000),
			DispatchError::BadOrigin
		);
		assert_noop!(
			Difficulty::set_difficulty(RuntimeOrigin::none(), 5_000),
			DispatchError::BadOrigin
		);
	});
}

#[test]
fn set_difficulty_rejects_out_of_bounds() {
	build_and_execute(|| {
		assert_noop!(
			Difficulty::set_difficulty(RuntimeOrigin::root(), 999),
			Error::<Test>::DifficultyOutOfBounds
		);
		assert_noop!(
			Difficulty::set_difficulty(RuntimeOrigin::root(), 0),
			Error::<Test>::DifficultyOutOfBounds
		);
		assert_noop!(
			Difficulty::set_difficulty(RuntimeOrigin::root(), MaxDifficulty::get() + 1),
			Error::<Test>::DifficultyOutOfBounds
		);
	});
}

#[test]
fn try_state_catches_corruption() {
	new_test_ext().execute_with(|| {
		CurrentDifficulty::<Test>::put(U256::zero());
		assert!(Difficulty::do_try_state().is_err());
		// The API never hands the node a zero difficulty.
		assert_eq!(Difficulty::difficulty(), U256::one());
	});
}
