//! Runtime-level checks run natively: genesis presets, future-dated blocks, PoW author.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use blade_fl_runtime::{
	genesis_config_presets::{self, DEV_INITIAL_DIFFICULTY, ENDOWMENT},
	Block, Header, Runtime, RuntimeCall, UncheckedExtrinsic,
};
use codec::{Decode, Encode};
use frame_support::traits::FindAuthor;
use sp_inherents::InherentData;
use sp_keyring::Sr25519Keyring;
use sp_runtime::traits::Block as BlockT;

mod common;
use common::dev_ext;

#[test]
fn only_the_development_preset_has_a_sudo_key() {
	for (preset, endowed, council) in [("local", 12, 3), ("production", 0, 0)] {
		let config = genesis_config_presets::preset_config(&preset.into()).unwrap();
		assert_eq!(config.sudo.key, None, "{preset}: sudo key");
		assert_eq!(config.balances.balances.len(), endowed, "{preset}: endowed");
		assert_eq!(config.council.members.len(), council, "{preset}: council");
	}
	let dev = genesis_config_presets::preset_config(&"development".into()).unwrap();
	assert_eq!(dev.sudo.key, Some(Sr25519Keyring::Alice.to_account_id()));
}

#[test]
fn presets_are_listed_and_build() {
	let names: Vec<String> = genesis_config_presets::preset_names()
		.into_iter()
		.map(|n| String::from_utf8(AsRef::<[u8]>::as_ref(&n).to_vec()).unwrap())
		.collect();
	assert_eq!(names, vec!["development", "local", "production"]);
	assert!(genesis_config_presets::get_preset(&"local".into()).is_some());
	assert!(genesis_config_presets::get_preset(&"nope".into()).is_none());

	dev_ext().execute_with(|| {
		let alice = Sr25519Keyring::Alice.to_account_id();
		assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(alice.clone()));
		assert_eq!(
			pallet_balances::Pallet::<Runtime>::free_balance(&alice),
			ENDOWMENT
		);
		let council = pallet_collective::Members::<Runtime, pallet_collective::Instance1>::get();
		assert_eq!(council.len(), 3);
		assert_eq!(
			pallet_difficulty::Pallet::<Runtime>::difficulty(),
			DEV_INITIAL_DIFFICULTY.into()
		);
	});
}

fn block_with_timestamp(ms: u64) -> <Block as BlockT>::LazyBlock {
	let set = UncheckedExtrinsic::new_bare(RuntimeCall::Timestamp(pallet_timestamp::Call::set {
		now: ms,
	}));
	let header = Header {
		parent_hash: Default::default(),
		number: 1,
		state_root: Default::default(),
		extrinsics_root: Default::default(),
		digest: Default::default(),
	};
	let block = Block {
		header,
		extrinsics: vec![set],
	};
	Decode::decode(&mut &block.encode()[..]).unwrap()
}

fn inherent_data(now_ms: u64) -> InherentData {
	let mut data = InherentData::new();
	data.put_data(sp_timestamp::INHERENT_IDENTIFIER, &now_ms)
		.unwrap();
	data
}

#[test]
fn blocks_from_the_future_fail_inherent_checks() {
	use sp_block_builder::runtime_decl_for_block_builder::BlockBuilderV6;
	let check = |data, block| <Runtime as BlockBuilderV6<Block>>::check_inherents(block, data);
	dev_ext().execute_with(|| {
		let now = 1_800_000_000_000u64;
		// 10 s ahead: tolerated clock skew.
		assert!(check(inherent_data(now), block_with_timestamp(now + 10_000)).ok());
		// 60 s ahead: rejected, which the node's PoW import queue turns into a refused block.
		let result = check(inherent_data(now), block_with_timestamp(now + 60_000));
		assert!(
			!result.ok(),
			"a block dated a minute ahead must fail check_inherents"
		);
		assert!(result.fatal_error());
	});
}

#[test]
fn author_comes_from_the_pow_digest() {
	let alice = Sr25519Keyring::Alice.to_account_id();
	let raw = alice.encode();
	let found = <Runtime as pallet_authorship::Config>::FindAuthor::find_author([(
		sp_consensus_pow::POW_ENGINE_ID,
		&raw[..],
	)]);
	assert_eq!(found, Some(alice));
}
