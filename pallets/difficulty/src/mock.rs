//! Test runtime for `pallet_difficulty`.

use crate as pallet_difficulty;
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use frame_system::EnsureRoot;
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
	pub type Difficulty = pallet_difficulty;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
}

parameter_types! {
	pub static TargetBlockTime: u64 = 2_000;
	pub static MinDifficulty: u128 = 1_000;
	pub static MaxDifficulty: u128 = 1_000_000_000_000;
	pub static Damping: u32 = 4;
	pub static MaxChange: Perbill = Perbill::from_percent(10);
}

impl pallet_difficulty::Config for Test {
	type TargetBlockTime = TargetBlockTime;
	type MinDifficulty = MinDifficulty;
	type MaxDifficulty = MaxDifficulty;
	type Damping = Damping;
	type MaxChangePerBlock = MaxChange;
	type WindowSize = ConstU32<5>;
	type AdminOrigin = EnsureRoot<u64>;
	type WeightInfo = ();
}

pub const INITIAL: u128 = 1_000_000;

pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = RuntimeGenesisConfig {
		difficulty: pallet_difficulty::GenesisConfig {
			initial_difficulty: INITIAL,
			..Default::default()
		},
		..Default::default()
	}
	.build_storage()
	.expect("genesis builds");
	let mut ext = sp_io::TestExternalities::new(storage);
	ext.execute_with(|| System::set_block_number(1));
	ext
}

/// Run `test` and then check the pallet's storage invariants.
pub fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		Difficulty::do_try_state().expect("try_state invariants hold");
	});
}
