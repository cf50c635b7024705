//! Benchmarks for `pallet_difficulty` (frame-benchmarking v2).

use super::*;
use frame_benchmarking::v2::*;
use frame_support::traits::{Get, OnTimestampSet};
use sp_core::U256;

/// A successful `AdminOrigin`: `EnsureOrigin::try_successful_origin` where it exists (built
/// with `runtime-benchmarks`); in the pallet's own tests, which run the benchmarks without
/// that feature, the mock's `AdminOrigin` is root.
fn admin_origin<T: Config>() -> Result<T::RuntimeOrigin, BenchmarkError> {
	#[cfg(feature = "runtime-benchmarks")]
	{
		use frame_support::traits::EnsureOrigin;
		T::AdminOrigin::try_successful_origin().map_err(|_| BenchmarkError::Weightless)
	}
	#[cfg(not(feature = "runtime-benchmarks"))]
	{
		Ok(frame_system::RawOrigin::Root.into())
	}
}

#[benchmarks]
mod benches {
	use super::*;

	#[benchmark]
	fn set_difficulty() -> Result<(), BenchmarkError> {
		let origin = admin_origin::<T>()?;
		let value = T::MinDifficulty::get().max(1);

		#[extrinsic_call]
		_(origin as T::RuntimeOrigin, value);

		assert_eq!(CurrentDifficulty::<T>::get(), U256::from(value));
		Ok(())
	}

	/// Worst case: a full window, so the oldest entry is removed and the mean recomputed.
	#[benchmark]
	fn on_timestamp_set() {
		let window = T::WindowSize::get() as u64;
		for i in 0..window {
			Pallet::<T>::note_timestamp(1_000 * (i + 1));
		}
		let before = CurrentDifficulty::<T>::get();

		#[block]
		{
			<Pallet<T> as OnTimestampSet<u64>>::on_timestamp_set(1_000 * (window + 1));
		}

		assert_eq!(RecentTimestamps::<T>::get().len() as u64, window);
		assert!(!CurrentDifficulty::<T>::get().is_zero() && before != U256::zero());
	}

	impl_benchmark_test_suite!(Pallet, crate::mock::new_test_ext(), crate::mock::Test);
}
