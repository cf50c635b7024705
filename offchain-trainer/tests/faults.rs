//! Crash faults against real `blade-fl-node` processes on loopback (`kill -9`, no chance
//! to flush or close): a mining node killed mid-block, and a node killed while it imports
//! a burst of blocks, each restarted on the same base path. The database must open, keep
//! a consistent prefix of the chain with readable state, and the node must mine on and
//! converge with its peer. Figures (blocks lost to the kill, heights) are printed; see
//! `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	path::Path,
	time::{Duration, Instant},
};

use blade_trainer::chain::{Backoff, BlockNumber, Client};
use common::{dev_account, free_port, start_node_with, Proc};
use serde_json::json;
use sp_core::H256;

fn backoff() -> Backoff {
	Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	}
}

struct Node {
	proc: Proc,
	rpc: u16,
	p2p: u16,
}

impl Node {
	fn start(dir: &Path, name: &str, extra: &[&str]) -> Node {
		let (rpc, p2p) = (free_port(), free_port());
		Node::restart(dir, name, rpc, p2p, extra)
	}

	fn restart(dir: &Path, name: &str, rpc: u16, p2p: u16, extra: &[&str]) -> Node {
		let proc = start_node_with(dir, name, rpc, p2p, &format!("{name}.log"), extra);
		Node { proc, rpc, p2p }
	}

	fn client(&self) -> Client {
		Client::read_only(&format!("ws://127.0.0.1:{}", self.rpc), backoff()).unwrap()
	}

	fn peer_address(&self) -> String {
		let peer: String = serde_json::from_value(
			self.client()
				.rpc()
				.call("system_localPeerId", json!([]))
				.unwrap(),
		)
		.unwrap();
		format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", self.p2p)
	}
}

fn wait_for(client: &Client, n: BlockNumber, limit: Duration) {
	let deadline = Instant::now() + limit;
	while client.best_number().unwrap() < n {
		assert!(Instant::now() < deadline, "block {n} not reached");
		std::thread::sleep(Duration::from_millis(200));
	}
}

fn hashes(client: &Client, to: BlockNumber) -> Vec<H256> {
	(0..=to)
		.map(|n| client.block_hash(n).unwrap().expect("on the best chain"))
		.collect()
}

/// Kill a lone mining node three times at different points of its block interval and
/// restart it on the same database each time. Whatever the kill cut off, the chain it
/// reopens is a prefix of the one it had (genesis included), its state at the best block
/// is readable, and it mines on past where it was.
#[test]
fn a_mining_node_killed_mid_block_reopens_its_database_and_mines_on() {
	let dir = tempfile::tempdir().unwrap();
	let mut node = Node::start(dir.path(), "miner", &[]);
	wait_for(&node.client(), 4, Duration::from_secs(240));
	let alice = dev_account("Alice");
	for kill in 0..3u64 {
		std::thread::sleep(Duration::from_millis(250 + 400 * kill));
		let before = node.client();
		let best = before.best_number().unwrap();
		let known = hashes(&before, best);
		drop(before);
		node.proc.kill9();
		let (rpc, p2p) = (node.rpc, node.p2p);
		node = Node::restart(dir.path(), "miner", rpc, p2p, &[]);
		let after = node.client();
		// The blocks that survived are the same blocks: a prefix of what it had.
		let reopened = after.best_number().unwrap();
		let kept = known
			.iter()
			.enumerate()
			.take_while(|(n, hash)| after.block_hash(*n as BlockNumber).unwrap() == Some(**hash))
			.count();
		assert!(kept >= 1, "genesis changed after kill {kill}");
		let lost = known.len() - kept;
		println!(
			"kill {kill}: best {best} before, {reopened} on reopening, {lost} block(s) cut off"
		);
		assert!(
			lost <= 2,
			"kill {kill} lost {lost} committed blocks (best {best}, reopened at {reopened})"
		);
		// State at the reopened head is readable (Alice, the dev miner, holds rewards).
		let head = after.block_hash(reopened).unwrap().unwrap();
		assert!(after.account_info(&alice, Some(head)).unwrap().free > 0);
		wait_for(&after, best + 3, Duration::from_secs(240));
	}
}

/// A fresh node starts syncing a 60-block chain from a miner and is killed while the
/// blocks stream in; restarted on the same database it reconnects, finishes the import
/// and agrees with the miner block for block.
#[test]
fn a_node_killed_while_importing_a_burst_resyncs_and_agrees() {
	let dir = tempfile::tempdir().unwrap();
	let miner = Node::start(dir.path(), "miner", &[]);
	let source = miner.client();
	wait_for(&source, 60, Duration::from_secs(600));
	let bootnode = miner.peer_address();
	let extra = ["--bootnodes", bootnode.as_str()];
	// The import queue's trace names every block as it lands.
	let traced = [&extra[..], &["-lsync::import-queue=trace"]].concat();
	let mut joiner = Node::start(dir.path(), "joiner", &traced);
	let target = source.best_number().unwrap();
	// Kill as soon as the import queue reports its first block: the rest of the burst is
	// still queued (the RPC server is too slow to watch this).
	let log = dir.path().join("joiner.log");
	let deadline = Instant::now() + Duration::from_secs(240);
	while !std::fs::read_to_string(&log)
		.unwrap_or_default()
		.contains("Block imported successfully")
	{
		assert!(
			Instant::now() < deadline,
			"the joiner never imported a block"
		);
		std::thread::sleep(Duration::from_millis(1));
	}
	joiner.proc.kill9();

	let (rpc, p2p) = (joiner.rpc, joiner.p2p);
	// Reopen without peers first, to see how far the import had got.
	let mut alone = Node::restart(dir.path(), "joiner", rpc, p2p, &["--reserved-only"]);
	let reader = alone.client();
	// The miner's blocks it had imported (it mines too: the reopened node may already
	// have put a block of its own on top).
	let best = reader.best_number().unwrap();
	let imported = (0..=best)
		.take_while(|n| reader.block_hash(*n).unwrap() == source.block_hash(*n).unwrap())
		.count() as BlockNumber
		- 1;
	drop(reader);
	alone.proc.kill9();
	println!("joiner killed during the import: {imported} of the miner's {target} blocks kept");
	assert!(
		(2..target).contains(&imported),
		"not killed mid-import ({imported} of {target} blocks imported); nothing was tested"
	);
	let joiner = Node::restart(dir.path(), "joiner", rpc, p2p, &extra);
	let resumed = joiner.client();
	let now = source.best_number().unwrap();
	wait_for(&resumed, now, Duration::from_secs(300));
	// Same chain: once both have moved two blocks past it, every block up to the
	// miner's height at catch-up is the same block on both (the joiner's own early blocks
	// were reorged away by the miner's heavier chain).
	wait_for(&resumed, now + 2, Duration::from_secs(240));
	wait_for(&source, now + 2, Duration::from_secs(240));
	assert_eq!(
		hashes(&source, now),
		hashes(&resumed, now),
		"the chains disagree"
	);
	println!("joiner resynced to block {now} and agrees with the miner");
	drop(miner);
}
