//! Unit tests of `pallet_block_reward` and [`crate::PowAuthor`].

use crate::{mock::*, Event, PowAuthor, TotalMinted};
use codec::Encode;
use frame_support::traits::{fungible::Inspect, FindAuthor, Hooks};
use sp_consensus_pow::POW_ENGINE_ID;
use sp_runtime::{Digest, DigestItem};

fn alice() -> AccountId {
	AccountId::new([1u8; 32])
}

/// Start block `n` with the miner's pre-runtime digest, as the node's mining worker does.
fn start_block(n: u64, pre_runtime: Option<Vec<u8>>) {
	let mut digest = Digest::default();
	if let Some(data) = pre_runtime {
		digest.push(DigestItem::PreRuntime(POW_ENGINE_ID, data));
	}
	System::reset_events();
	System::initialize(&n, &Default::default(), &digest);
	Authorship::on_initialize(n);
	Authorship::on_finalize(n);
}

#[test]
fn find_author_reads_pow_digest() {
	let who = alice();
	let raw = who.encode();
	let digests = [(*b"aura", &[9u8; 32][..]), (POW_ENGINE_ID, &raw[..])];
	assert_eq!(PowAuthor::<AccountId>::find_author(digests), Some(who));
}

#[test]
fn find_author_rejects_wrong_length_or_engine() {
	assert_eq!(
		PowAuthor::<AccountId>::find_author([(POW_ENGINE_ID, &[1u8; 31][..])]),
		None
	);
	assert_eq!(
		PowAuthor::<AccountId>::find_author([(POW_ENGINE_ID, &[1u8; 33][..])]),
		None
	);
	assert_eq!(
		PowAuthor::<AccountId>::find_author([(*b"babe", &[1u8; 32][..])]),
		None
	);
	assert_eq!(
		PowAuthor::<AccountId>::find_author(core::iter::empty()),
		None
	);
}

#[test]
fn author_is_rewarded_each_block() {
	build_and_execute(|| {
		let issuance = Balances::total_issuance();
		for n in 1..=3 {
			start_block(n, Some(alice().encode()));
			System::assert_has_event(
				Event::Rewarded {
					author: alice(),
					amount: 1_000,
				}
				.into(),
			);
		}
		assert_eq!(Balances::balance(&alice()), 3_000);
		assert_eq!(TotalMinted::<Test>::get(), 3_000);
		assert_eq!(Balances::total_issuance(), issuance + 3_000);
	});
}

#[test]
fn no_digest_no_reward() {
	build_and_execute(|| {
		start_block(1, None);
		start_block(2, Some(vec![1, 2, 3]));
		assert_eq!(Balances::balance(&alice()), 0);
		assert_eq!(TotalMinted::<Test>::get(), 0);
	});
}

#[test]
fn governance_reward_change_applies_next_block() {
	build_and_execute(|| {
		start_block(1, Some(alice().encode()));
		Reward::set(250);
		start_block(2, Some(alice().encode()));
		assert_eq!(Balances::balance(&alice()), 1_250);
		Reward::set(0);
		start_block(3, Some(alice().encode()));
		assert_eq!(Balances::balance(&alice()), 1_250);
		Reward::set(1_000);
	});
}

#[test]
fn reward_below_existential_deposit_fails_cleanly() {
	build_and_execute(|| {
		Reward::set(5);
		start_block(1, Some(alice().encode()));
		System::assert_has_event(
			Event::RewardFailed {
				author: alice(),
				amount: 5,
			}
			.into(),
		);
		assert_eq!(Balances::balance(&alice()), 0);
		assert_eq!(TotalMinted::<Test>::get(), 0);
		Reward::set(1_000);
	});
}
