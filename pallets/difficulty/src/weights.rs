//! Weights for `pallet_difficulty`.
//!
//! Shape follows `frame-benchmarking` output; the figures are the storage accesses counted
//! from the code plus a compute estimate. Regenerate with the node's
//! `benchmark pallet` command (feature `runtime-benchmarks`) on reference hardware.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions needed for `pallet_difficulty`.
pub trait WeightInfo {
	fn set_difficulty() -> Weight;
	fn on_timestamp_set() -> Weight;
}

/// Weights for `pallet_difficulty` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// Storage: `Difficulty::CurrentDifficulty` (r:1 w:1), `Difficulty::RecentTimestamps` (r:0 w:1)
	fn set_difficulty() -> Weight {
		Weight::from_parts(12_000_000, 1_500)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	/// Storage: `Difficulty::CurrentDifficulty` (r:1 w:1), `Difficulty::RecentTimestamps` (r:1 w:1)
	/// Proof: window of `WindowSize` u64 values.
	fn on_timestamp_set() -> Weight {
		Weight::from_parts(9_000_000, 2_000)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
}

// For backwards compatibility and tests.
impl WeightInfo for () {
	fn set_difficulty() -> Weight {
		Weight::from_parts(12_000_000, 1_500)
			.saturating_add(RocksDbWeight::get().reads(1_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
	fn on_timestamp_set() -> Weight {
		Weight::from_parts(9_000_000, 2_000)
			.saturating_add(RocksDbWeight::get().reads(2_u64))
			.saturating_add(RocksDbWeight::get().writes(2_u64))
	}
}
