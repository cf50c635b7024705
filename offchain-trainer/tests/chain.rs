//! The trainer against a real BLADE-FL dev node, all through the `blade-trainer` binary:
//! Alice publishes a 2-round Fashion-MNIST task with a privacy floor (total epsilon 8 per
//! trainer, delta 1e-5); Bob, Charlie and Dave train honestly with DP-SGD calibrated to it
//! (Dave at his own, tighter epsilon 4), Eve is lazy and copies an update from the chain, and
//! Ferdie, configured without noise, refuses the task before bidding. Trainers are killed
//! (SIGKILL) at the phase boundaries of round 1 and started again on their state
//! directories: Dave after his bid, Charlie after his first update is on chain, Bob after
//! his seed is revealed, the first voter after its vote on the aggregate; later the node
//! itself is stopped and restarted under the trainers. The
//! task must settle with Eve proven lazy and slashed, every honest trainer paid, and the
//! exported global model must classify Fashion-MNIST far above chance.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	path::Path,
	process::Command,
	time::{Duration, Instant},
};

use blade_trainer::{
	chain::{Backoff, Client, UNIT},
	data, model, registry, train,
};
use common::{
	dev_account, free_port, publish_task, start_node, start_trainer as trainer, trainer_bin,
	wait_exit, Proc,
};

#[test]
fn trainers_finish_a_task_through_a_kill_and_a_node_restart() {
	let dir = common::test_dir();
	let dir = dir.path();
	let (rpc, p2p) = (free_port(), free_port());
	let url = format!("ws://127.0.0.1:{rpc}");
	let mut node = start_node(dir, "node", rpc, p2p, "node.log");
	let backoff = Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	};
	let client = Client::read_only(&url, backoff).unwrap();
	let balance = |who: &str| client.account_info(&dev_account(who), None).unwrap().free;
	let before: Vec<u128> = ["Bob", "Charlie", "Dave", "Eve"]
		.iter()
		.map(|w| balance(w))
		.collect();

	let task = publish_task(
		&url,
		&[
			"--rounds",
			"2",
			"--trainers",
			"4",
			"--min-trainers",
			"2",
			"--bidding",
			"12",
			"--submit",
			"40",
			"--reveal",
			"20",
			"--aggregate",
			"20",
			"--snr-db",
			"6",
			"--max-epsilon",
			"8",
			"--reward",
			"100",
			"--stake",
			"10",
		],
	);
	assert_eq!(task, 0);

	// Everyone trains with DP-SGD calibrated to the floor; Dave wants epsilon 4 for himself.
	// (DP-SGD's clipped gradients are smaller than plain ones: a larger learning rate.)
	let dp = ["--lr", "0.2"];
	let mut bob = trainer(dir, &url, "Bob", 0, &dp);
	let mut charlie = trainer(dir, &url, "Charlie", 1, &dp);
	let mut dave = trainer(dir, &url, "Dave", 2, &["--lr", "0.2", "--epsilon", "4"]);
	// Ferdie adds no noise: he must refuse the task rather than break its floor.
	let mut ferdie = trainer(dir, &url, "Ferdie", 0, &["--noise", "off"]);
	let mut eve = trainer(dir, &url, "Eve", 3, &["--behaviour", "lazy"]);

	// Kills at phase boundaries of round 1, each trainer restarted on its state directory
	// at once: Dave right after his bid, Charlie right after his first update is on chain
	// (before he can reveal it), Bob right after his seed is revealed, and the first voter
	// on an aggregate right after its vote. Each must resume without bidding, submitting
	// or voting twice and without losing a seed, and the task must still settle.
	let config = |who: &str| -> (usize, Vec<&'static str>) {
		match who {
			"Bob" => (0, dp.to_vec()),
			"Charlie" => (1, dp.to_vec()),
			"Dave" => (2, vec!["--lr", "0.2", "--epsilon", "4"]),
			"Eve" => (3, vec!["--behaviour", "lazy"]),
			other => panic!("no trainer {other}"),
		}
	};
	let restart = |proc: &mut Proc, who: &str| {
		proc.0.kill().unwrap();
		proc.0.wait().unwrap();
		let (shard, extra) = config(who);
		*proc = trainer(dir, &url, who, shard, &extra);
	};
	let deadline = Instant::now() + Duration::from_secs(300);
	let wait_until = |what: &str, done: &dyn Fn() -> bool| {
		while !done() {
			assert!(Instant::now() < deadline, "{what} never happened");
			std::thread::sleep(Duration::from_millis(100));
		}
	};
	wait_until("Dave's bid", &|| {
		client
			.bids(0, None)
			.unwrap_or_default()
			.iter()
			.any(|(a, _)| *a == dev_account("Dave"))
	});
	restart(&mut dave, "Dave");
	println!("killed and restarted Dave after his bid");
	wait_until("Charlie's update", &|| {
		client
			.updates(0, None)
			.unwrap_or_default()
			.iter()
			.any(|(a, _)| *a == dev_account("Charlie"))
	});
	restart(&mut charlie, "Charlie");
	println!("killed and restarted Charlie after his update");
	wait_until("Bob's reveal", &|| {
		client
			.updates(0, None)
			.unwrap_or_default()
			.iter()
			.any(|(a, u)| *a == dev_account("Bob") && u.seed.is_some())
	});
	restart(&mut bob, "Bob");
	println!("killed and restarted Bob after his reveal");
	let voter = std::cell::RefCell::new(None);
	wait_until("a vote on the aggregate", &|| {
		let first = client
			.tallies(0, None)
			.unwrap_or_default()
			.into_iter()
			.map(|t| t.first)
			.next();
		*voter.borrow_mut() = first.clone();
		first.is_some()
	});
	let voter = voter.into_inner().unwrap();
	let voter_name = ["Bob", "Charlie", "Dave", "Eve"]
		.into_iter()
		.find(|w| dev_account(w) == voter)
		.expect("a trainer voted");
	match voter_name {
		"Bob" => restart(&mut bob, "Bob"),
		"Charlie" => restart(&mut charlie, "Charlie"),
		"Dave" => restart(&mut dave, "Dave"),
		_ => restart(&mut eve, "Eve"),
	}
	println!("killed and restarted {voter_name} after its vote");
	// The aggregator of round 1, killed the moment the aggregate is agreed (while it
	// publishes the blob, or just after): restarted, it must see the publication through
	// once, and the others must not take it over twice.
	let agreed = loop {
		if let Some(model) = client.global_model(0, 0, None).unwrap_or_default() {
			break model;
		}
		assert!(
			Instant::now() < deadline,
			"round 1's aggregate never agreed"
		);
		std::thread::sleep(Duration::from_millis(50));
	};
	let aggregator_name = ["Bob", "Charlie", "Dave", "Eve"]
		.into_iter()
		.find(|w| dev_account(w) == agreed.aggregator)
		.expect("a trainer aggregates");
	match aggregator_name {
		"Bob" => restart(&mut bob, "Bob"),
		"Charlie" => restart(&mut charlie, "Charlie"),
		"Dave" => restart(&mut dave, "Dave"),
		_ => restart(&mut eve, "Eve"),
	}
	println!(
		"killed and restarted {aggregator_name}, round 1's aggregator, {} its publication was on chain",
		if agreed.published.is_some() { "after" } else { "before" }
	);

	// Restart the node once round 2 has begun: the trainers must ride it out.
	loop {
		let view = client.task(0, None).unwrap().expect("task alive");
		if view.round == 1 {
			break;
		}
		assert!(Instant::now() < deadline, "round 2 never started");
		std::thread::sleep(Duration::from_millis(300));
	}
	// Round 2 trains on round 1's model: it is published (once: the runtime refuses a
	// second publication) by the restarted aggregator or, past its window, by a backup.
	let published = loop {
		let model = client
			.global_model(0, 0, None)
			.unwrap()
			.expect("round 1's model");
		if let Some(at) = model.published {
			break at;
		}
		assert!(
			Instant::now() < deadline,
			"round 1's aggregate was never published after its aggregator's restart"
		);
		std::thread::sleep(Duration::from_millis(300));
	};
	println!("round 1's aggregate published in block {}", published.0);
	node.interrupt();
	std::thread::sleep(Duration::from_secs(3));
	let _node = start_node(dir, "node", rpc, p2p, "node-restarted.log");

	let deadline = Instant::now() + Duration::from_secs(600);
	for (proc, who) in [
		(&mut bob, "Bob"),
		(&mut charlie, "Charlie"),
		(&mut dave, "Dave"),
		(&mut eve, "Eve"),
	] {
		wait_exit(proc, &dir.join(format!("{who}.log")), who, deadline);
	}
	let out = |who: &str| std::fs::read_to_string(dir.join(format!("{who}.out"))).unwrap();
	for who in ["Bob", "Charlie", "Dave", "Eve"] {
		println!("--- {who}\n{}", out(who));
		let log = std::fs::read_to_string(dir.join(format!("{who}.log"))).unwrap();
		for line in log.lines().filter(|l| l.contains("WARN")) {
			println!("  {line}");
		}
	}
	assert!(out("Eve").contains("excluded true"), "{}", out("Eve"));
	let upheld: u32 = ["Bob", "Charlie", "Dave"]
		.iter()
		.map(|w| {
			let text = out(w);
			assert!(
				text.contains("selected true, excluded false"),
				"{w}: {text}"
			);
			text.split("lazy reports upheld ")
				.filter_map(|s| s.split_whitespace().next()?.parse::<u32>().ok())
				.sum::<u32>()
		})
		.sum();
	// The proof itself is on chain (Eve excluded above, slashed below); the counters are
	// per process, so a reporter killed after its report no longer counts it. Never two.
	assert!(upheld <= 1, "Eve proven lazy {upheld} times");
	// Every trainer's accounted privacy is within its budget: the floor, Dave's own 4.
	for (who, budget) in [("Bob", 8.0), ("Charlie", 8.0), ("Dave", 4.0)] {
		let text = out(who);
		let spent: f64 = text
			.split("privacy spent: epsilon ")
			.nth(1)
			.and_then(|s| s.split_whitespace().next()?.parse().ok())
			.unwrap_or_else(|| panic!("{who} reports no privacy spent: {text}"));
		assert!(
			spent > 0.5 * budget && spent <= budget,
			"{who}: {spent} of {budget}"
		);
	}
	// Ferdie refused before bidding and holds no stake.
	let status = ferdie.0.wait().unwrap();
	let ferdie_log = std::fs::read_to_string(dir.join("Ferdie.log")).unwrap();
	assert!(!status.success(), "{ferdie_log}");
	assert!(
		ferdie_log.contains("refusing the task") && ferdie_log.contains("adds no noise"),
		"{ferdie_log}"
	);
	assert_eq!(
		client
			.account_info(&dev_account("Ferdie"), None)
			.unwrap()
			.held,
		0
	);
	let charlie_log = std::fs::read_to_string(dir.join("Charlie.log")).unwrap();
	assert!(charlie_log.contains("reveal_seed"), "{charlie_log}");

	// Settled: nothing left in state, honest trainers earned, Eve lost half her stake.
	assert!(client.task(0, None).unwrap().is_none());
	for (i, who) in ["Bob", "Charlie", "Dave"].iter().enumerate() {
		let gain = balance(who) as i128 - before[i] as i128;
		assert!(gain > 10 * UNIT as i128, "{who} gained only {gain}");
	}
	let eve_loss = before[3] as i128 - balance("Eve") as i128;
	assert!(eve_loss >= 5 * UNIT as i128, "Eve lost only {eve_loss}");

	// The published global model, exported to safetensors, classifies well.
	let path = dir.join("model.safetensors");
	let exported = Command::new(trainer_bin())
		.args(["export-model", "--url", &url, "--task", "0", "--out"])
		.arg(&path)
		.output()
		.unwrap();
	assert!(
		exported.status.success(),
		"{}",
		String::from_utf8_lossy(&exported.stderr)
	);
	let mut model = model::Model::new(
		registry::model(1).unwrap(),
		registry::shape(1).unwrap(),
		tch::Device::Cpu,
		99,
	)
	.unwrap();
	model.load_safetensors(&path).unwrap();
	let (_, test) =
		data::load_fashion_mnist(Path::new(data::DEBIAN_FASHION_MNIST_DIR), false).unwrap();
	let test = train::to_tensors(&test, tch::Device::Cpu).unwrap();
	let accuracy = train::evaluate(&model, &test, 500).unwrap().accuracy;
	// Two rounds of DP-SGD at epsilon 8 over 3 000 images a trainer, through four kills:
	// 0.64 measured; five times chance is the bar for "learned".
	assert!(accuracy > 0.5, "exported model accuracy {accuracy}");
	println!("exported model: test accuracy {accuracy:.4} on 10 000 images");
}
