//! Faults against real `blade-fl-node` processes on loopback. Crashes (`kill -9`, no
//! chance to flush or close): a mining node killed mid-block, and a node killed while it
//! imports a burst of blocks, each restarted on the same base path; the database must
//! open, keep a consistent prefix of the chain with readable state, and the node must mine
//! on and converge with its peer. A network partition of three miners into {A} and
//! {B, C} and its healing: the lighter fork is reorged away and the ledger holds to the
//! unit. Figures (blocks lost to the kill, heights) are printed; see
//! `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use blade_trainer::chain::{Backoff, BlockNumber, Client, RuntimeCall, Watch, UNIT};
use common::{dev_account, wait_for, work_above, Node};
use serde_json::json;
use sp_core::H256;

/// The tests here time kills against block production: one at a time, not six PoW nodes
/// competing for the cores.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
	SERIAL
		.lock()
		.unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn backoff() -> Backoff {
	Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	}
}

fn hashes(client: &Client, to: BlockNumber) -> Vec<H256> {
	(0..=to)
		.map(|n| client.block_hash(n).unwrap().expect("on the best chain"))
		.collect()
}

/// Kill a lone mining node three times at arbitrary points while it mines (timed from
/// outside, not against a commit) and restart it on the same database each time. Whatever
/// the kill cut off, the chain it reopens is a prefix of the one it had, at most two blocks
/// short, its state at the best block is readable, and it mines on past where it was.
#[test]
fn a_mining_node_killed_mid_block_reopens_its_database_and_mines_on() {
	let _serial = serial();
	let dir = common::test_dir();
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
	let _serial = serial();
	let dir = common::test_dir();
	let miner = Node::start(dir.path(), "miner", &[]);
	let source = miner.client();
	wait_for(&source, 60, Duration::from_secs(600));
	let bootnode = miner.peer_address();
	let extra = ["--bootnodes", bootnode.as_str()];
	// The import queue's trace names every block as it lands.
	let traced = [&extra[..], &["-lsync::import-queue=trace"]].concat();
	// Timing on a loaded machine can put the kill before the first block lands or after
	// the last: up to three fresh joiners, each checked for a kill inside the burst.
	let mut attempt = 0;
	let (name, rpc, p2p, imported, target) = loop {
		attempt += 1;
		assert!(
			attempt <= 3,
			"no kill landed inside the import in three attempts"
		);
		let name = format!("joiner-{attempt}");
		let mut joiner = Node::start(dir.path(), &name, &traced);
		let target = source.best_number().unwrap();
		// Kill as soon as the import queue reports its first block: the rest of the
		// burst is still queued (the RPC server is too slow to watch this).
		let log = dir.path().join(format!("{name}.log"));
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
		let mut alone = Node::restart(dir.path(), &name, rpc, p2p, &["--reserved-only"]);
		let reader = alone.client();
		// The miner's blocks it had imported, a prefix (it mines too: the reopened node
		// may already have put a block of its own on top).
		let best = reader.best_number().unwrap();
		let imported = (0..=best)
			.take_while(|n| reader.block_hash(*n).unwrap() == source.block_hash(*n).unwrap())
			.count() as BlockNumber
			- 1;
		drop(reader);
		alone.proc.kill9();
		println!("attempt {attempt}: joiner killed with {imported} of the miner's {target} blocks imported");
		if (1..target).contains(&imported) {
			break (name, rpc, p2p, imported, target);
		}
	};
	println!("joiner killed during the import: {imported} of {target} blocks kept");
	let joiner = Node::restart(dir.path(), &name, rpc, p2p, &extra);
	let resumed = joiner.client();
	let now = source.best_number().unwrap();
	wait_for(&resumed, now, Duration::from_secs(300));
	// Same chain: once both have moved two blocks past it, every block up to the
	// miner's height at catch-up is the same block on both (the joiner's own early blocks
	// were reorged away by the miner's heavier chain).
	let deadline = Instant::now() + Duration::from_secs(240);
	while hashes(&source, now) != hashes(&resumed, now) {
		assert!(
			Instant::now() < deadline,
			"the chains disagree below block {now}"
		);
		std::thread::sleep(Duration::from_millis(500));
	}
	println!("joiner resynced to block {now} and agrees with the miner");
	drop(miner);
}

/// Follow `watch` until the client sees it in a block (of whatever fork its node is on).
fn wait_included(client: &mut Client, watch: &mut Watch, limit: Duration) -> (BlockNumber, H256) {
	let deadline = Instant::now() + limit;
	loop {
		assert!(client.poll(watch).unwrap().is_none(), "confirmed too early");
		if let Some(included) = watch.included() {
			return included;
		}
		assert!(Instant::now() < deadline, "never included");
		std::thread::sleep(Duration::from_millis(200));
	}
}

/// Three miners, A, B and C, are split into {A} and {B, C} (A restarted with
/// `--reserved-only` and no reserved peers), each side includes a transfer of its own,
/// {B, C} out-mines A, then the partition heals. A's fork must be reorged away, the
/// transfer it carried re-included on the winning chain exactly once, all three nodes must
/// agree, and the ledger must hold to the unit: every transfer applied once, total
/// issuance equal to what the accounts hold and to genesis plus one block reward per
/// block of the final chain.
#[test]
fn a_partitioned_miner_is_reorged_away_and_nothing_is_paid_twice_or_lost() {
	let _serial = serial();
	let dir = common::test_dir();
	let a = Node::start(dir.path(), "a", &[]);
	let a_address = a.peer_address();
	// B and C mine on two threads each, A on one: on any machine with fewer cores than
	// mining threads, {B, C} hold about four times A's hash rate.
	let b = Node::start(
		dir.path(),
		"b",
		&["--threads", "2", "--bootnodes", a_address.as_str()],
	);
	// C knows B directly, so {B, C} stay connected when A leaves.
	let b_address = b.peer_address();
	let c = Node::start(
		dir.path(),
		"c",
		&[
			"--threads",
			"2",
			"--bootnodes",
			a_address.as_str(),
			b_address.as_str(),
		],
	);
	let (rb, rc) = (b.client(), c.client());
	wait_for(&rb, 4, Duration::from_secs(240));
	wait_for(&rc, 4, Duration::from_secs(240));

	// Partition: A restarts accepting only reserved peers, and it has none.
	let (a_rpc, a_p2p) = (a.rpc, a.p2p);
	let mut a = a;
	a.proc.kill9();
	let a = Node::restart(dir.path(), "a", a_rpc, a_p2p, &["--reserved-only"]);
	let ra = a.client();
	let split_at = ra.best_number().unwrap();
	let peers_of_a = common::peers(&ra);
	assert!(peers_of_a.is_empty(), "A is not isolated: {peers_of_a:?}");

	let (ferdie, eve) = (dev_account("Ferdie"), dev_account("Eve"));
	let genesis = rb.block_hash(0).unwrap().unwrap();
	let ferdie_before = rb.account_info(&ferdie, Some(genesis)).unwrap().free;
	let eve_before = rb.account_info(&eve, Some(genesis)).unwrap().free;
	let transfer = |to: &blade_trainer::chain::AccountId| {
		RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: sp_runtime::MultiAddress::Id(to.clone()),
			value: 7 * UNIT,
		})
	};
	// Each side includes its own transfer.
	let mut bob =
		Client::connect(&format!("ws://127.0.0.1:{}", a.rpc), "//Bob", backoff()).unwrap();
	bob.confirmations = 4;
	bob.timeout = Duration::from_secs(600);
	let mut bob_watch = Watch::new(bob.submit(transfer(&ferdie)).unwrap());
	let on_a = wait_included(&mut bob, &mut bob_watch, Duration::from_secs(180));
	let mut charlie =
		Client::connect(&format!("ws://127.0.0.1:{}", b.rpc), "//Charlie", backoff()).unwrap();
	charlie.confirmations = 4;
	charlie.timeout = Duration::from_secs(600);
	let mut charlie_watch = Watch::new(charlie.submit(transfer(&eve)).unwrap());
	wait_included(&mut charlie, &mut charlie_watch, Duration::from_secs(180));

	// Wait until {B, C}'s chain is clearly heavier. Heavier means more work, not more
	// blocks: each side's retarget brings its own block rate back to the target, so after
	// a few dozen blocks both forks grow by about as many blocks a minute and only the
	// work per block tells them apart.
	let deadline = Instant::now() + Duration::from_secs(600);
	let (mut work_a, mut work_b) = (work_above(&ra, split_at), work_above(&rb, split_at));
	while work_b < work_a.saturating_mul(3u8.into()) / 2 {
		assert!(
			Instant::now() < deadline,
			"{{B, C}} never out-mined A: work since block {split_at} {work_b} against A's {work_a}"
		);
		std::thread::sleep(Duration::from_secs(1));
		(work_a, work_b) = (work_above(&ra, split_at), work_above(&rb, split_at));
	}
	println!(
		"partitioned at {split_at}: A at {} (work {work_a}), B at {} (work {work_b}), Bob's transfer in A's block {}",
		ra.best_number().unwrap(),
		rb.best_number().unwrap(),
		on_a.0
	);

	// Still isolated after all that mining (nobody got in), then heal: A takes B as a
	// reserved peer.
	let peers_of_a = common::peers(&ra);
	assert!(peers_of_a.is_empty(), "A was not isolated: {peers_of_a:?}");
	ra.rpc()
		.call("system_addReservedPeer", json!([b_address]))
		.unwrap();
	// Confirmations are probabilistic under PoW: A's own fork already has Bob's transfer
	// several blocks deep, so a client that looked before A imported the heavier chain
	// would rightly call it confirmed there. Look only once A has switched.
	let deadline = Instant::now() + Duration::from_secs(600);
	while ra.block_hash(on_a.0).unwrap() == Some(on_a.1) {
		assert!(
			Instant::now() < deadline,
			"A never switched to the heavier chain"
		);
		std::thread::sleep(Duration::from_millis(300));
	}
	let confirmed = {
		let deadline = Instant::now() + Duration::from_secs(600);
		loop {
			if let Some(confirmed) = bob.poll(&mut bob_watch).unwrap() {
				break confirmed;
			}
			assert!(
				Instant::now() < deadline,
				"Bob's transfer never confirmed after healing"
			);
			std::thread::sleep(Duration::from_millis(300));
		}
	};
	assert_ne!(
		ra.block_hash(on_a.0).unwrap(),
		Some(on_a.1),
		"A went back to its fork"
	);
	assert!(
		confirmed.reorgs >= 1,
		"the client never saw the reorg: {confirmed:?}"
	);
	let deadline = Instant::now() + Duration::from_secs(300);
	while charlie.poll(&mut charlie_watch).unwrap().is_none() {
		assert!(
			Instant::now() < deadline,
			"Charlie's transfer never confirmed"
		);
		std::thread::sleep(Duration::from_millis(300));
	}

	// All three agree on a common block past both transfers.
	let target = confirmed.block_number + 2;
	let agreed = common::agreed_block(&[&rb, &ra, &rc], target);

	// To the unit: each transfer once, every unit in one account, issuance = genesis +
	// one reward per block.
	assert_eq!(
		rb.account_info(&ferdie, Some(agreed)).unwrap().free,
		ferdie_before + 7 * UNIT
	);
	assert_eq!(
		rb.account_info(&eve, Some(agreed)).unwrap().free,
		eve_before + 7 * UNIT
	);
	let ledger = rb.ledger(agreed).unwrap();
	assert_eq!(ledger.total(), ledger.issuance, "{ledger:?}");
	let genesis_issuance = rb.ledger(genesis).unwrap().issuance;
	let one = rb
		.ledger(rb.block_hash(1).unwrap().unwrap())
		.unwrap()
		.issuance;
	let reward = one - genesis_issuance;
	assert_eq!(
		ledger.issuance,
		genesis_issuance + reward * u128::from(target),
		"issuance after {target} blocks at {reward} a block"
	);
	println!(
		"healed: Bob's transfer confirmed in block {} after {} reorg(s) (sent again {} time(s)); all agree on block {target}; {ledger:?}",
		confirmed.block_number, confirmed.reorgs, confirmed.resent
	);
}
