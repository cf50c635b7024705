//! Governance end to end on the real node: sudo and a council majority change the block
//! reward and the target block time at run time, and the chain uses the new values;
//! ordinary accounts are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use blade_fl_runtime::{
	configs::RuntimeParameters,
	dynamic_params::{pow, rewards},
	Runtime, RuntimeCall, RuntimeEvent, UNIT,
};
use codec::{Decode, Encode};
use common::*;
use frame_support::dispatch::GetDispatchInfo;
use sp_core::U256;
use sp_keyring::Sr25519Keyring::{Alice, Bob, Charlie};
use sp_runtime::DispatchError;

const TIMEOUT: Duration = Duration::from_secs(120);

fn set_reward(amount: u128) -> RuntimeCall {
	RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
		key_value: RuntimeParameters::Rewards(rewards::Parameters::BlockReward(
			rewards::BlockReward,
			Some(amount),
		)),
	})
}

fn set_target_block_time(ms: u64) -> RuntimeCall {
	RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
		key_value: RuntimeParameters::Pow(pow::Parameters::TargetBlockTime(
			pow::TargetBlockTime,
			Some(ms),
		)),
	})
}

fn failed_with_bad_origin(events: &[RuntimeEvent]) -> bool {
	events.iter().any(|e| {
		matches!(
			e,
			RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
				dispatch_error: DispatchError::BadOrigin,
				..
			})
		)
	})
}

fn difficulty(node: &Node, at: sp_core::H256) -> U256 {
	let key = pallet_difficulty::CurrentDifficulty::<Runtime>::hashed_key();
	U256::decode(&mut &node.storage(&key, Some(at)).unwrap()[..]).unwrap()
}

#[test]
fn sudo_and_council_tune_reward_and_block_time() {
	let dir = tempfile::tempdir().unwrap();
	let node = Node::start("alice", dir.path(), &["--dev"]);
	node.wait_for_block(1, TIMEOUT);

	// --- An ordinary account cannot change parameters or the difficulty. ---
	let tx = node.submit(Bob, set_reward(UNIT)).unwrap();
	let (_, events) = node.wait_for_inclusion(tx, TIMEOUT);
	assert!(failed_with_bad_origin(&events), "Bob refused: {events:?}");
	let tx = node
		.submit(
			Bob,
			RuntimeCall::Difficulty(pallet_difficulty::Call::set_difficulty { difficulty: 5_000 }),
		)
		.unwrap();
	let (_, events) = node.wait_for_inclusion(tx, TIMEOUT);
	assert!(failed_with_bad_origin(&events), "Bob refused: {events:?}");

	// --- Sudo sets the block reward to 3 BLADE; the next blocks pay exactly that. ---
	let sudo = RuntimeCall::Sudo(pallet_sudo::Call::sudo {
		call: Box::new(set_reward(3 * UNIT)),
	});
	let tx = node.submit(Alice, sudo).unwrap();
	let (block, events) = node.wait_for_inclusion(tx, TIMEOUT);
	assert!(
		events.iter().any(|e| matches!(
			e,
			RuntimeEvent::Sudo(pallet_sudo::Event::Sudid {
				sudo_result: Ok(())
			})
		)),
		"sudo call succeeded: {events:?}"
	);
	let number = node.header(block).number;
	node.wait_for_block(number + 2, TIMEOUT);
	let next = node.block_hash(number + 1).unwrap();
	let paid: Vec<u128> = node
		.events(next)
		.into_iter()
		.filter_map(|e| match e {
			RuntimeEvent::BlockReward(pallet_block_reward::Event::Rewarded { amount, .. }) => {
				Some(amount)
			}
			_ => None,
		})
		.collect();
	assert_eq!(
		paid,
		vec![3 * UNIT],
		"block after the change pays the new reward"
	);

	// --- The council (2 of 3) sets a 60 s target block time. ---
	let proposal = set_target_block_time(60_000);
	let length_bound = proposal.encoded_size() as u32;
	let weight_bound = proposal.get_dispatch_info().call_weight;
	let tx = node
		.submit(
			Alice,
			RuntimeCall::Council(pallet_collective::Call::propose {
				threshold: 2,
				proposal: Box::new(proposal),
				length_bound,
			}),
		)
		.unwrap();
	let (_, events) = node.wait_for_inclusion(tx, TIMEOUT);
	let (proposal_hash, proposal_index) = events
		.iter()
		.find_map(|e| match e {
			RuntimeEvent::Council(pallet_collective::Event::Proposed {
				proposal_hash,
				proposal_index,
				..
			}) => Some((*proposal_hash, *proposal_index)),
			_ => None,
		})
		.unwrap_or_else(|| panic!("proposal made: {events:?}"));

	// Proposing is not voting: Alice votes aye. One vote of three is not a majority, so
	// closing early fails.
	let vote = |who, approve| {
		let tx = node
			.submit(
				who,
				RuntimeCall::Council(pallet_collective::Call::vote {
					proposal: proposal_hash,
					index: proposal_index,
					approve,
				}),
			)
			.unwrap();
		node.wait_for_inclusion(tx, TIMEOUT)
	};
	vote(Alice, true);
	let close = RuntimeCall::Council(pallet_collective::Call::close {
		proposal_hash,
		index: proposal_index,
		proposal_weight_bound: weight_bound,
		length_bound,
	});
	let tx = node.submit(Charlie, close.clone()).unwrap();
	let (_, events) = node.wait_for_inclusion(tx, TIMEOUT);
	assert!(
		events.iter().any(|e| matches!(
			e,
			RuntimeEvent::System(frame_system::Event::ExtrinsicFailed { .. })
		)),
		"cannot close with one vote: {events:?}"
	);

	vote(Bob, true);
	let tx = node.submit(Charlie, close).unwrap();
	let (block, events) = node.wait_for_inclusion(tx, TIMEOUT);
	assert!(
		events.iter().any(|e| matches!(
			e,
			RuntimeEvent::Council(pallet_collective::Event::Executed { result: Ok(()), .. })
		)),
		"council motion executed: {events:?}"
	);
	assert!(
		events
			.iter()
			.any(|e| matches!(e, RuntimeEvent::Parameters(_))),
		"parameter updated: {events:?}"
	);

	// The retarget now aims at 60 s blocks: blocks are far faster, so the difficulty rises.
	let number = node.header(block).number;
	let before = difficulty(&node, block);
	node.wait_for_block(number + 4, TIMEOUT);
	let after = difficulty(&node, node.block_hash(number + 4).unwrap());
	assert!(
		after > before,
		"difficulty rises toward the new 60 s target: {before} -> {after}"
	);
}
