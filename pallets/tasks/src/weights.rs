//! Weights for `pallet_fl_tasks`.
//!
//! Placeholder figures until the benchmarks are run on reference hardware; the storage
//! accesses are counted from the code.

#![allow(unused_parens, unused_imports, missing_docs)]

use core::marker::PhantomData;
use frame_support::{
	traits::Get,
	weights::{constants::RocksDbWeight, Weight},
};

/// Weight functions needed for `pallet_fl_tasks`.
pub trait WeightInfo {
	fn publish_task() -> Weight;
	fn cancel_task() -> Weight;
	fn bid() -> Weight;
	fn withdraw_bid() -> Weight;
	fn submit_update(b: u32) -> Weight;
	fn reveal_seed() -> Weight;
	fn report_lazy(b: u32) -> Weight;
	fn propose_aggregate() -> Weight;
	fn publish_aggregate(b: u32) -> Weight;
	fn close_bidding(n: u32) -> Weight;
	fn close_round(t: u32) -> Weight;
	fn settle(t: u32, c: u32) -> Weight;
}

/// Weights for `pallet_fl_tasks` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn publish_task() -> Weight {
		Weight::from_parts(40_000_000, 4_000)
			.saturating_add(T::DbWeight::get().reads(3))
			.saturating_add(T::DbWeight::get().writes(4))
	}
	fn cancel_task() -> Weight {
		Weight::from_parts(25_000_000, 4_000)
			.saturating_add(T::DbWeight::get().reads(2))
			.saturating_add(T::DbWeight::get().writes(2))
	}
	fn bid() -> Weight {
		Weight::from_parts(45_000_000, 6_000)
			.saturating_add(T::DbWeight::get().reads(5))
			.saturating_add(T::DbWeight::get().writes(5))
	}
	fn withdraw_bid() -> Weight {
		Weight::from_parts(40_000_000, 6_000)
			.saturating_add(T::DbWeight::get().reads(4))
			.saturating_add(T::DbWeight::get().writes(4))
	}
	fn submit_update(b: u32) -> Weight {
		Weight::from_parts(40_000_000, 6_000)
			.saturating_add(Weight::from_parts(5_000, 0).saturating_mul(b.into()))
			.saturating_add(T::DbWeight::get().reads(4))
			.saturating_add(T::DbWeight::get().writes(4))
	}
	fn reveal_seed() -> Weight {
		Weight::from_parts(35_000_000, 6_000)
			.saturating_add(T::DbWeight::get().reads(4))
			.saturating_add(T::DbWeight::get().writes(3))
	}
	fn report_lazy(b: u32) -> Weight {
		Weight::from_parts(90_000_000, 8_000)
			.saturating_add(Weight::from_parts(60_000, 0).saturating_mul(b.into()))
			.saturating_add(T::DbWeight::get().reads(8))
			.saturating_add(T::DbWeight::get().writes(8))
	}
	fn propose_aggregate() -> Weight {
		Weight::from_parts(40_000_000, 8_000)
			.saturating_add(T::DbWeight::get().reads(5))
			.saturating_add(T::DbWeight::get().writes(4))
	}
	fn publish_aggregate(b: u32) -> Weight {
		Weight::from_parts(50_000_000, 8_000)
			.saturating_add(Weight::from_parts(5_000, 0).saturating_mul(b.into()))
			.saturating_add(T::DbWeight::get().reads(5))
			.saturating_add(T::DbWeight::get().writes(5))
	}
	fn close_bidding(n: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(40_000_000, 3_000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64.saturating_add(3 * n as u64)))
			.saturating_add(T::DbWeight::get().writes(3_u64.saturating_add(3 * n as u64)))
	}
	fn close_round(t: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(50_000_000, 6_000).saturating_mul(t.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64.saturating_add(6 * t as u64)))
			.saturating_add(T::DbWeight::get().writes(3_u64.saturating_add(6 * t as u64)))
	}
	fn settle(t: u32, c: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(60_000_000, 6_000).saturating_mul(t.into()))
			.saturating_add(Weight::from_parts(1_000_000, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(3_u64.saturating_add(6 * t as u64)))
			.saturating_add(
				T::DbWeight::get()
					.writes(3_u64.saturating_add(6 * t as u64).saturating_add(c as u64)),
			)
	}
}

impl WeightInfo for () {
	fn publish_task() -> Weight {
		Weight::from_parts(40_000_000, 4_000)
	}
	fn cancel_task() -> Weight {
		Weight::from_parts(25_000_000, 4_000)
	}
	fn bid() -> Weight {
		Weight::from_parts(45_000_000, 6_000)
	}
	fn withdraw_bid() -> Weight {
		Weight::from_parts(40_000_000, 6_000)
	}
	fn submit_update(b: u32) -> Weight {
		Weight::from_parts(40_000_000, 6_000)
			.saturating_add(Weight::from_parts(5_000, 0).saturating_mul(b.into()))
	}
	fn reveal_seed() -> Weight {
		Weight::from_parts(35_000_000, 6_000)
	}
	fn report_lazy(b: u32) -> Weight {
		Weight::from_parts(90_000_000, 8_000)
			.saturating_add(Weight::from_parts(60_000, 0).saturating_mul(b.into()))
	}
	fn propose_aggregate() -> Weight {
		Weight::from_parts(40_000_000, 8_000)
	}
	fn publish_aggregate(b: u32) -> Weight {
		Weight::from_parts(50_000_000, 8_000)
			.saturating_add(Weight::from_parts(5_000, 0).saturating_mul(b.into()))
	}
	fn close_bidding(n: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(40_000_000, 3_000).saturating_mul(n.into()))
	}
	fn close_round(t: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(50_000_000, 6_000).saturating_mul(t.into()))
	}
	fn settle(t: u32, c: u32) -> Weight {
		Weight::from_parts(30_000_000, 4_000)
			.saturating_add(Weight::from_parts(60_000_000, 6_000).saturating_mul(t.into()))
			.saturating_add(Weight::from_parts(1_000_000, 0).saturating_mul(c.into()))
	}
}
