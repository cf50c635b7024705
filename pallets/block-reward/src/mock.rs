//! Test runtime for `pallet_block_reward`: balances, authorship and the reward pallet.

use crate as pallet_block_reward;
use frame_support::{derive_impl, parameter_types};
use sp_runtime::{traits::IdentityLookup, BuildStorage};

type Block = frame_system::mocking::MockBlock<Test>;
pub type AccountId = sp_core::crypto::AccountId32;

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
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(2)]
	pub type Authorship = pallet_authorship;
	#[runtime::pallet_index(3)]
	pub type BlockReward = pallet_block_reward;
}

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
	type Block = Block;
	type AccountId = AccountId;
	type Lookup = IdentityLookup<AccountId>;
	type AccountData = pallet_balances::AccountData<u128>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
	type Balance = u128;
	type ExistentialDeposit = frame_support::traits::ConstU128<10>;
	type AccountStore = System;
}

impl pallet_authorship::Config for Test {
	type FindAuthor = crate::PowAuthor<AccountId>;
	type EventHandler = BlockReward;
}

parameter_types! {
	pub static Reward: u128 = 1_000;
}

impl pallet_block_reward::Config for Test {
	type Currency = Balances;
	type BlockReward = Reward;
}

pub fn new_test_ext() -> sp_io::TestExternalities {
	let storage = RuntimeGenesisConfig::default()
		.build_storage()
		.expect("genesis builds");
	// Block number stays 0: tests start blocks themselves with `System::initialize`.
	sp_io::TestExternalities::new(storage)
}

pub fn build_and_execute(test: impl FnOnce()) {
	new_test_ext().execute_with(|| {
		test();
		BlockReward::do_try_state().expect("try_state invariants hold");
	});
}
