//! The chain client through a real proof-of-work reorg: two dev nodes mine apart, the
//! client's transfer lands in a block of the shorter chain, then the nodes are connected
//! and the shorter chain is replaced. The client must notice that its block left the best
//! chain, get the transfer included on the winning chain (by the pool or by sending it
//! again), confirm it there, and the transfer must be applied exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use blade_trainer::chain::{Backoff, Client, RuntimeCall, Watch, UNIT};
use common::{free_port, start_node, Proc};
use serde_json::json;
use sp_core::{crypto::Pair as _, sr25519};

struct Node {
	_proc: Proc,
	rpc: u16,
	p2p: u16,
}

fn start(dir: &std::path::Path, name: &str) -> Node {
	let (rpc, p2p) = (free_port(), free_port());
	let log = format!("{name}.log");
	Node {
		_proc: start_node(dir, name, rpc, p2p, &log),
		rpc,
		p2p,
	}
}

fn url(node: &Node) -> String {
	format!("ws://127.0.0.1:{}", node.rpc)
}

fn wait_for(client: &Client, n: u32) {
	let deadline = Instant::now() + Duration::from_secs(240);
	while client.best_number().unwrap() < n {
		assert!(Instant::now() < deadline, "block {n} not reached");
		std::thread::sleep(Duration::from_millis(300));
	}
}

#[test]
fn a_transaction_survives_a_reorg_and_is_applied_once() {
	let dir = tempfile::tempdir().unwrap();
	let backoff = Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	};
	// B mines alone first, so its chain will carry more work.
	let b = start(dir.path(), "b");
	let reader_b = Client::read_only(&url(&b), backoff).unwrap();
	wait_for(&reader_b, 14);
	let a = start(dir.path(), "a");
	let reader_a = Client::read_only(&url(&a), backoff).unwrap();
	wait_for(&reader_a, 2);
	assert!(reader_a.best_number().unwrap() + 8 < reader_b.best_number().unwrap());

	let ferdie: blade_trainer::chain::AccountId = sr25519::Pair::from_string("//Ferdie", None)
		.unwrap()
		.public()
		.into();
	let genesis_balance = reader_a.account_info(&ferdie, None).unwrap().free;
	let mut alice = Client::connect(&url(&a), "//Alice", backoff).unwrap();
	alice.confirmations = 6;
	alice.timeout = Duration::from_secs(300);
	let transfer = RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: sp_runtime::MultiAddress::Id(ferdie.clone()),
		value: 7 * UNIT,
	});
	let mut watch = Watch::new(alice.submit(transfer).unwrap());

	// Follow the transfer until the client sees it in one of A's own blocks.
	let deadline = Instant::now() + Duration::from_secs(120);
	let first_block = loop {
		assert!(
			alice.poll(&mut watch).unwrap().is_none(),
			"confirmed too early"
		);
		if let Some(included) = watch.included() {
			break included;
		}
		assert!(Instant::now() < deadline, "A never included the transfer");
		std::thread::sleep(Duration::from_millis(200));
	};

	// Connect A to B: B's heavier chain wins and A's block with the transfer is retracted.
	let peer: String = serde_json::from_value(
		reader_b
			.rpc()
			.call("system_localPeerId", json!([]))
			.unwrap(),
	)
	.unwrap();
	reader_a
		.rpc()
		.call(
			"system_addReservedPeer",
			json!([format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", b.p2p)]),
		)
		.unwrap();

	let deadline = Instant::now() + Duration::from_secs(300);
	let confirmed = loop {
		if let Some(confirmed) = alice.poll(&mut watch).unwrap() {
			break confirmed;
		}
		assert!(Instant::now() < deadline, "never confirmed after the reorg");
		std::thread::sleep(Duration::from_millis(300));
	};
	assert!(confirmed.reorgs >= 1, "{confirmed:?}");
	assert_ne!(
		reader_a.block_hash(first_block.0).unwrap(),
		Some(first_block.1),
		"A's original block is no longer on the best chain"
	);
	// The confirming block is on both nodes' best chains.
	wait_for(&reader_b, confirmed.block_number);
	for reader in [&reader_a, &reader_b] {
		assert_eq!(
			reader.block_hash(confirmed.block_number).unwrap(),
			Some(confirmed.block_hash)
		);
	}
	// Applied exactly once.
	assert_eq!(
		reader_a.account_info(&ferdie, None).unwrap().free,
		genesis_balance + 7 * UNIT
	);
	println!(
		"transfer first in block {} ({:?}), confirmed in block {} after {} reorg(s), sent again {} time(s)",
		first_block.0, first_block.1, confirmed.block_number, confirmed.reorgs, confirmed.resent
	);
}
