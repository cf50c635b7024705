//! Two real nodes on loopback: B joins A through `--bootnodes` (A has a fixed node key),
//! both mine, and they converge on one chain containing blocks from both miners.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	process::Command,
	time::{Duration, Instant},
};

use common::*;
use serde_json::json;
use sp_keyring::Sr25519Keyring;

fn peer_id_of(key_file: &std::path::Path) -> String {
	let out = Command::new(env!("CARGO_BIN_EXE_blade-fl-node"))
		.args([
			"key",
			"inspect-node-key",
			"--file",
			key_file.to_str().unwrap(),
		])
		.output()
		.unwrap();
	assert!(
		out.status.success(),
		"{}",
		String::from_utf8_lossy(&out.stderr)
	);
	String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn second_miner_joins_by_bootnode_and_chains_agree() {
	let dir = tempfile::tempdir().unwrap();
	let key_file = dir.path().join("node-a.key");
	std::fs::write(&key_file, NODE_KEY_A).unwrap();
	let peer_a = peer_id_of(&key_file);

	let alice = Sr25519Keyring::Alice.to_account_id();
	let bob = Sr25519Keyring::Bob.to_account_id();
	let a = Node::start(
		"node-a",
		dir.path(),
		&[
			"--chain",
			"local",
			"--mine",
			"--author",
			&alice.to_string(),
			"--node-key-file",
			key_file.to_str().unwrap(),
		],
	);
	let bootnode = format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer_a}", a.p2p_port);
	let b = Node::start(
		"node-b",
		dir.path(),
		&[
			"--chain",
			"local",
			"--mine",
			"--author",
			&bob.to_string(),
			"--bootnodes",
			&bootnode,
		],
	);

	// They connect.
	let deadline = Instant::now() + Duration::from_secs(60);
	loop {
		let peers = b.rpc("system_health", json!([])).unwrap()["peers"]
			.as_u64()
			.unwrap();
		if peers >= 1 {
			break;
		}
		assert!(
			Instant::now() < deadline,
			"B never connected to A; B log:\n{}",
			tail(&b.log(), 30)
		);
		std::thread::sleep(Duration::from_millis(500));
	}

	// Both mine, forks resolve by total difficulty, and they agree on a common prefix
	// that contains blocks of both authors.
	let deadline = Instant::now() + Duration::from_secs(300);
	loop {
		let common_height = a.best_number().min(b.best_number()).saturating_sub(2);
		if common_height >= 8 && a.block_hash(common_height) == b.block_hash(common_height) {
			let authors: Vec<_> = (1..=common_height)
				.map(|n| pow_author(&a.header(a.block_hash(n).unwrap())).unwrap())
				.collect();
			if authors.contains(&alice) && authors.contains(&bob) {
				// The best blocks agree too once mining pauses long enough to propagate.
				break;
			}
		}
		assert!(
			Instant::now() < deadline,
			"no agreement with both authors; A best {} B best {}\nA log:\n{}\nB log:\n{}",
			a.best_number(),
			b.best_number(),
			tail(&a.log(), 20),
			tail(&b.log(), 20)
		);
		std::thread::sleep(Duration::from_secs(1));
	}
	assert!(b.log().contains("Imported"), "B imported blocks from A");
}
