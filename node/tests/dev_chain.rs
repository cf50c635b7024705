//! Smoke test of the real `--dev` node: it mines, pays Alice, includes a transfer,
//! rejects garbage, serves metrics and stops cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{io::Read, io::Write, net::TcpStream, time::Duration};

use blade_fl_runtime::{
	genesis_config_presets::ENDOWMENT, AccountId, Runtime, RuntimeCall, RuntimeEvent, UNIT,
};
use codec::Encode;
use common::*;
use sp_core::U256;
use sp_keyring::Sr25519Keyring;
use sp_runtime::{traits::Header as _, DigestItem};

const REWARD: u128 = 10 * UNIT;

#[test]
fn dev_node_mines_pays_author_includes_transfer_and_stops_cleanly() {
	let dir = tempfile::tempdir().unwrap();
	let mut node = Node::start("alice", dir.path(), &["--dev"]);
	let alice = Sr25519Keyring::Alice.to_account_id();

	// At least 5 blocks, each authored by Alice and carrying a seal that verifies here,
	// independently of the node, against the difficulty stored at its parent.
	node.wait_for_block(5, Duration::from_secs(180));
	let difficulty_key = pallet_difficulty::CurrentDifficulty::<Runtime>::hashed_key();
	for n in 1..=5u32 {
		let hash = node.block_hash(n).unwrap();
		let mut header = node.header(hash);
		assert_eq!(
			pow_author(&header),
			Some(alice.clone()),
			"author of block {n}"
		);
		let Some(DigestItem::Seal(engine, seal)) = header.digest.logs.pop() else {
			panic!("block {n} has no seal")
		};
		assert_eq!(&engine, b"pow_");
		let raw = node
			.storage(&difficulty_key, Some(*header.parent_hash()))
			.unwrap();
		let difficulty = <U256 as codec::Decode>::decode(&mut &raw[..]).unwrap();
		let pre_hash = header.hash();
		blade_pow::check_seal(&pre_hash, &seal, difficulty)
			.unwrap_or_else(|e| panic!("seal of block {n} does not verify: {e}"));
	}

	// Before any transaction, Alice's balance is her endowment plus one reward per block.
	let hash5 = node.block_hash(5).unwrap();
	assert_eq!(
		node.free_balance(&alice, Some(hash5)),
		ENDOWMENT + 5 * REWARD
	);
	let rewarded = node.events(hash5).into_iter().any(|e| {
		matches!(e, RuntimeEvent::BlockReward(pallet_block_reward::Event::Rewarded { ref author, amount })
			if *author == alice && amount == REWARD)
	});
	assert!(rewarded, "block 5 has a Rewarded event for Alice");

	// A signed transfer from Bob to a fresh account is included.
	let dest = AccountId::new([9u8; 32]);
	let call = RuntimeCall::Balances(pallet_balances::Call::transfer_allow_death {
		dest: dest.clone().into(),
		value: 5 * UNIT,
	});
	let tx = node
		.submit(Sr25519Keyring::Bob, call)
		.expect("transfer accepted by the pool");
	let (block, events) = node.wait_for_inclusion(tx, Duration::from_secs(120));
	assert!(events.iter().any(|e| matches!(e,
		RuntimeEvent::Balances(pallet_balances::Event::Transfer { to, amount, .. })
			if *to == dest && *amount == 5 * UNIT)));
	assert_eq!(node.free_balance(&dest, Some(block)), 5 * UNIT);
	// The fee went to the miner of that block (Alice): she got more than the reward.
	let header = node.header(block);
	let before = node.free_balance(&alice, Some(*header.parent_hash()));
	assert!(node.free_balance(&alice, Some(block)) > before + REWARD);

	// Malformed extrinsics get a clear RPC error and the node keeps mining.
	let err = node.submit_raw(&[0x04, 0xde, 0xad]).unwrap_err();
	assert!(
		err["message"].as_str().unwrap().len() > 3,
		"error explains itself: {err}"
	);
	let mut forged = node.sign(
		Sr25519Keyring::Bob,
		RuntimeCall::System(frame_system::Call::remark { remark: vec![1] }),
		None,
	);
	if let sp_runtime::generic::Preamble::Signed(_, ref mut signature, _) = forged.preamble {
		*signature =
			sp_runtime::MultiSignature::Sr25519(sp_core::sr25519::Signature::from_raw([7u8; 64]));
	}
	let bad_sig = forged.encode();
	assert!(node.submit_raw(&bad_sig).is_err(), "bad signature rejected");
	let best = node.best_number();
	node.wait_for_block(best + 2, Duration::from_secs(120));

	// Prometheus metrics are served.
	let mut stream = TcpStream::connect(("127.0.0.1", node.prometheus_port)).unwrap();
	write!(
		stream,
		"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
	)
	.unwrap();
	let mut metrics = String::new();
	stream.read_to_string(&mut metrics).unwrap();
	assert!(metrics.contains("substrate_block_height"), "metrics served");
	// The miner's hash counter moves (its rate is the node's hash rate).
	let hashes: f64 = metrics
		.lines()
		.find(|l| l.starts_with("blade_pow_hashes_total"))
		.and_then(|l| l.rsplit(' ').next()?.parse().ok())
		.unwrap_or(0.0);
	assert!(hashes > 0.0, "blade_pow_hashes_total {hashes}:\n{metrics}");

	let status = node.stop();
	assert!(
		status.success(),
		"node exits cleanly on SIGINT: {status:?}\n{}",
		tail(&node.log(), 20)
	);
	assert!(node.log().contains("mining as"), "log says who mines");
}
