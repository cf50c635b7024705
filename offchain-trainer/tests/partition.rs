//! A network partition during a federated-learning round, with real trainers. Three mining
//! nodes A, B and C; Alice publishes a one-round task for four trainers: Bob and Charlie
//! talk to A, Dave and Eve to B and C. As the round's submit phase opens, A is cut off
//! (restarted with `--reserved-only` and no reserved peers), so Bob's and Charlie's
//! updates land on A's fork and Dave's and Eve's on the {B, C} chain. Once {B, C} has
//! clearly out-mined A, the partition heals. The lighter fork must be reorged away, the FL
//! transactions it held re-included on the winning chain (each update once), the task
//! settle with every honest trainer paid and none punished, every hold released, and the
//! ledger hold to the unit (what the accounts hold is the total issuance, which is genesis
//! plus one block reward per block).
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	collections::BTreeMap,
	time::{Duration, Instant},
};

use blade_trainer::chain::{AccountId, BlockNumber, Client, FlEvent, RuntimeEvent};
use common::{
	agreed_block, dev_account, finish_honest_trainers, publish_task, start_trainer, wait_for,
	work_above, Node,
};
use pallet_fl_tasks::Phase;
use serde_json::json;
use sp_core::H256;

const TRAINERS: [&str; 4] = ["Bob", "Charlie", "Dave", "Eve"];

/// The updates of task 0 on `client`'s best chain, by trainer: the block that holds each.
fn updates_on(client: &Client) -> BTreeMap<AccountId, (BlockNumber, H256)> {
	client
		.updates(0, None)
		.unwrap_or_default()
		.into_iter()
		.map(|(who, record)| {
			let hash = client.block_hash(record.block).unwrap().unwrap();
			(who, (record.block, hash))
		})
		.collect()
}

fn name(account: &AccountId) -> &'static str {
	TRAINERS
		.into_iter()
		.chain(["Alice"])
		.find(|w| dev_account(w) == *account)
		.unwrap_or("someone else")
}

/// Fail at once, with its log, if a trainer already stopped.
fn all_running(trainers: &mut [common::Proc], dir: &std::path::Path) {
	for (proc, who) in trainers.iter_mut().zip(TRAINERS) {
		if let Some(status) = proc.0.try_wait().unwrap() {
			let log = std::fs::read_to_string(dir.join(format!("{who}.log"))).unwrap_or_default();
			panic!("{who} stopped early ({status}):\n{log}");
		}
	}
}

#[test]
fn a_round_split_by_a_partition_re_includes_the_lighter_forks_updates_and_settles_once() {
	let dir = common::test_dir();
	let dir = dir.path();
	let a = Node::start(dir, "a", &[]);
	let a_address = a.peer_address();
	let b = Node::start(dir, "b", &["--bootnodes", a_address.as_str()]);
	let b_address = b.peer_address();
	let c = Node::start(
		dir,
		"c",
		&["--bootnodes", a_address.as_str(), b_address.as_str()],
	);
	let (rb, rc) = (b.client(), c.client());
	wait_for(&rb, 3, Duration::from_secs(240));
	wait_for(&rc, 3, Duration::from_secs(240));
	let genesis = rb.block_hash(0).unwrap().unwrap();
	let before: Vec<u128> = TRAINERS
		.iter()
		.map(|w| {
			rb.account_info(&dev_account(w), Some(genesis))
				.unwrap()
				.free
		})
		.collect();

	let (url_a, url_b, url_c) = (
		format!("ws://127.0.0.1:{}", a.rpc),
		format!("ws://127.0.0.1:{}", b.rpc),
		format!("ws://127.0.0.1:{}", c.rpc),
	);
	let task = publish_task(
		&url_b,
		&[
			"--rounds",
			"1",
			"--trainers",
			"4",
			"--min-trainers",
			"2",
			"--bidding",
			"10",
			"--submit",
			"80",
			"--reveal",
			"20",
			"--aggregate",
			"20",
			"--reward",
			"100",
			"--stake",
			"10",
			"--max-epsilon",
			"8",
		],
	);
	assert_eq!(task, 0);
	let (b_c, c_b) = (format!("{url_b},{url_c}"), format!("{url_c},{url_b}"));
	let urls = [url_a.as_str(), url_a.as_str(), b_c.as_str(), c_b.as_str()];
	let mut trainers: Vec<_> = TRAINERS
		.iter()
		.zip(urls)
		.enumerate()
		// DP-SGD calibrated to the task's floor (clipped gradients: a larger step).
		.map(|(shard, (who, url))| start_trainer(dir, url, who, shard, &["--lr", "0.2"]))
		.collect();

	// The round opens: cut A off before any update can be on chain (training takes longer
	// than a restart).
	let deadline = Instant::now() + Duration::from_secs(300);
	loop {
		if let Some(view) = rb.task(0, None).unwrap() {
			if view.phase == Phase::Submit {
				assert_eq!(view.trainers.len(), 4, "four trainers selected");
				break;
			}
		}
		assert!(Instant::now() < deadline, "the round never opened");
		all_running(&mut trainers, dir);
		std::thread::sleep(Duration::from_millis(200));
	}
	let (a_rpc, a_p2p) = (a.rpc, a.p2p);
	let mut a = a;
	a.proc.kill9();
	let a = Node::restart(dir, "a", a_rpc, a_p2p, &["--reserved-only"]);
	let ra = a.client();
	let split_at = ra.best_number().unwrap();
	assert_eq!(common::peers(&ra).len(), 0, "A is not isolated");
	assert!(
		updates_on(&ra).is_empty(),
		"an update was on chain before the split"
	);

	// Each side gets its two updates, and {B, C} (twice A's hash rate) does clearly more
	// work than A. Work, not blocks: each side's retarget brings its block rate back to
	// the target, so the forks soon grow by about as many blocks a minute.
	let (bob, charlie, dave, eve) = (
		dev_account("Bob"),
		dev_account("Charlie"),
		dev_account("Dave"),
		dev_account("Eve"),
	);
	let deadline = Instant::now() + Duration::from_secs(600);
	let on_a = loop {
		let (on_a, on_b) = (updates_on(&ra), updates_on(&rb));
		let a_side = on_a.contains_key(&bob) && on_a.contains_key(&charlie);
		let b_side = on_b.contains_key(&dave) && on_b.contains_key(&eve);
		let heavier = || {
			let (work_a, work_b) = (work_above(&ra, split_at), work_above(&rb, split_at));
			work_b >= work_a.saturating_mul(3u8.into()) / 2
		};
		if a_side && b_side && heavier() {
			assert_eq!(on_a.len(), 2, "A's fork holds only its side's updates");
			assert_eq!(on_b.len(), 2, "B's chain holds only its side's updates");
			break on_a;
		}
		all_running(&mut trainers, dir);
		assert!(
			Instant::now() < deadline,
			"the sides never got their updates (A: {:?}, B: {:?})",
			on_a.keys().map(name).collect::<Vec<_>>(),
			on_b.keys().map(name).collect::<Vec<_>>()
		);
		std::thread::sleep(Duration::from_millis(500));
	};
	assert_eq!(common::peers(&ra).len(), 0, "A was not isolated");
	println!(
		"partitioned at {split_at}: A at {}, B at {}; Bob's update in A's block {}, Charlie's in {}",
		ra.best_number().unwrap(),
		rb.best_number().unwrap(),
		on_a[&bob].0,
		on_a[&charlie].0
	);

	// Heal: A takes B as a reserved peer and must switch to the heavier chain.
	ra.rpc()
		.call("system_addReservedPeer", json!([b_address]))
		.unwrap();
	let first_fork_block = on_a.values().map(|(n, _)| *n).min().unwrap();
	let fork_hash = ra.block_hash(first_fork_block).unwrap();
	let deadline = Instant::now() + Duration::from_secs(600);
	while ra.block_hash(first_fork_block).unwrap() == fork_hash {
		assert!(
			Instant::now() < deadline,
			"A never switched to the heavier chain"
		);
		std::thread::sleep(Duration::from_millis(300));
	}
	println!("healed: A switched to the heavier chain");

	let deadline = Instant::now() + Duration::from_secs(900);
	finish_honest_trainers(&mut trainers, &TRAINERS, dir, deadline);

	// Settled, and all three nodes agree on a block past the settlement.
	let settled = loop {
		if rb.task(0, None).unwrap().is_none() {
			break rb.best_number().unwrap();
		}
		assert!(Instant::now() < deadline, "the task never settled");
		std::thread::sleep(Duration::from_millis(300));
	};
	let target = settled + 2;
	let agreed = agreed_block(&[&rb, &ra, &rc], target);

	// The winning chain's story, from its events: each update once (the lighter fork's
	// two re-included in blocks of the winning chain), settled once, nobody punished.
	let mut submitted: BTreeMap<AccountId, Vec<(BlockNumber, H256)>> = BTreeMap::new();
	let (mut settlements, mut punished, mut listing_fees) = (0, Vec::new(), 0u128);
	for n in 1..=target {
		let hash = rb.block_hash(n).unwrap().unwrap();
		for record in rb.event_records(hash).unwrap() {
			match record.event {
				RuntimeEvent::FlTasks(FlEvent::UpdateSubmitted { trainer, .. }) => {
					submitted.entry(trainer).or_default().push((n, hash))
				}
				RuntimeEvent::FlTasks(FlEvent::TaskSettled { .. }) => settlements += 1,
				RuntimeEvent::FlTasks(FlEvent::TaskPublished { listing_fee, .. }) => {
					listing_fees += listing_fee
				}
				RuntimeEvent::FlTasks(
					e @ (FlEvent::Penalised { .. }
					| FlEvent::LazyProven { .. }
					| FlEvent::WeakWatermarkProven { .. }),
				) => punished.push(format!("{e:?}")),
				_ => {}
			}
		}
	}
	for who in TRAINERS {
		let blocks = submitted
			.get(&dev_account(who))
			.cloned()
			.unwrap_or_default();
		assert_eq!(
			blocks.len(),
			1,
			"{who}'s update on the winning chain: {blocks:?}"
		);
		if let Some((_, fork_block)) = on_a.get(&dev_account(who)) {
			assert_ne!(
				blocks[0].1, *fork_block,
				"{who}'s update still in A's fork block"
			);
		}
	}
	assert_eq!(settlements, 1, "the task settled {settlements} times");
	assert!(
		punished.is_empty(),
		"honest trainers punished: {punished:?}"
	);

	// To the unit: no hold left, every honest trainer paid, every unit in one account,
	// issuance = genesis + one reward per block - the listing fee burnt at publication.
	for (i, who) in TRAINERS.iter().enumerate() {
		let info = rb.account_info(&dev_account(who), Some(agreed)).unwrap();
		assert_eq!(info.held, 0, "{who} still holds {}", info.held);
		assert!(
			info.free > before[i],
			"{who} was not paid: {} -> {}",
			before[i],
			info.free
		);
	}
	assert_eq!(
		rb.account_info(&dev_account("Alice"), Some(agreed))
			.unwrap()
			.held,
		0,
		"the publisher's escrow is still held"
	);
	let ledger = rb.ledger(agreed).unwrap();
	assert_eq!(ledger.total(), ledger.issuance, "{ledger:?}");
	let genesis_issuance = rb.ledger(genesis).unwrap().issuance;
	let reward =
		rb.ledger(rb.block_hash(1).unwrap().unwrap())
			.unwrap()
			.issuance - genesis_issuance;
	assert_eq!(
		ledger.issuance,
		genesis_issuance + reward * u128::from(target) - listing_fees,
		"issuance after {target} blocks at {reward} a block, {listing_fees} burnt"
	);
	println!(
		"settled in block {settled}; the four updates once each on the winning chain, the lighter fork's two re-included (Bob's in block {}, Charlie's in {}); all agree on block {target}; {ledger:?}",
		submitted[&bob][0].0,
		submitted[&charlie][0].0
	);
}
