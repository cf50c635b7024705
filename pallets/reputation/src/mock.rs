//! Test runtime for `pallet_fl_reputation`.

use crate as pallet_fl_reputation;
use frame_support::{derive_impl, parameter_types};
use sp_runtime::{BuildStorage, Perbill};

type Block = frame_system::mocking::MockBlock<Test>;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Test;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Reputation = pallet_fl_reputation;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

parameter_types! {
	pub static Decay: Perbill = Perbill::from_percent(90);
	pub static GoodWeight: u32 = 1_000;
	pub static DissentWeight: u32 = 1_000;
	pub static OutlierWeight: u32 = 1_000;
	pub static MissedWeight: u32 = 2_000;
	pub static LazyWeight: u32 = 5_000;
}

impl pallet_fl_reputation::Config for Test {
	type Decay = Decay;
	type GoodWeight = GoodWeight;
	type DissentWeight = DissentWeight;
	type OutlierWeight = OutlierWeight;
	type MissedWeight = MissedWeight;
	type LazyWeight = LazyWeight;
}

/// Run `test` in fresh storage and then check the pallet's invariants.
pub fn build_and_execute(test: impl FnOnce()) {
	let storage = frame_system::GenesisConfig::<Test>::default()
		.build_storage()
		.expect("genesis builds");
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| {
		System::set_block_number(1);
		test();
		Reputation::do_try_state().expect("try_state invariants hold");
	});
}
