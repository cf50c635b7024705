//! `blade-trainer serve` against a real dev node: three services with different keys and
//! policies, two tasks published at different times.
//!
//! - the operator's service takes its key from a node keystore (`blade-fl-node key
//!   insert`, with a password; the account is funded by Alice), serves metrics, and bids
//!   on everything;
//! - Charlie's (`--suri`, settings from a TOML file) wants at least 8 BLADE per seat and
//!   round: it skips task 0 (5 BLADE) and serves task 1 (10 BLADE);
//! - Dave's (key file, mode 0600) bids on everything and is killed (SIGKILL) while serving
//!   both tasks, then started again on the same state directory.
//!
//! Both tasks must settle; each service must have served exactly the tasks its policy
//! allows, Dave's restarted service must finish both; metrics must move; `status --json`
//! must agree with the chain; a wrong keystore password must stop a service at start with
//! a clear error.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	fs::File,
	io::{Read, Write},
	path::Path,
	process::Command,
	time::{Duration, Instant},
};

use blade_trainer::chain::{AccountId, Backoff, Client, RuntimeCall, UNIT};
use common::{dev_account, free_port, node_bin, publish_task, start_node, trainer_bin, Proc};
use sp_core::{sr25519, Pair};

fn service(dir: &Path, url: &str, name: &str, shard: usize, key: &[&str], extra: &[&str]) -> Proc {
	let log = File::options()
		.create(true)
		.append(true)
		.open(dir.join(format!("{name}.log")))
		.unwrap();
	let out = File::options()
		.create(true)
		.append(true)
		.open(dir.join(format!("{name}.out")))
		.unwrap();
	let child = Command::new(trainer_bin())
		.args(["serve", "--url", url, "--confirmations", "2"])
		.args(key)
		.args(["--shard", &format!("{shard}/3"), "--max-samples", "800"])
		.args([
			"--state-dir",
			dir.join(format!("state-{name}")).to_str().unwrap(),
		])
		.args([
			"--threads",
			"1",
			"--quiet",
			"--eval-samples",
			"500",
			"--noise",
			"off",
		])
		.args(extra)
		.env("RUST_LOG", "info")
		.env_remove("BLADE_SURI")
		.stdout(out)
		.stderr(log)
		.spawn()
		.unwrap();
	Proc(child)
}

fn publish(url: &str, reward: &str) -> u64 {
	publish_task(
		url,
		&[
			"--rounds",
			"3",
			"--trainers",
			"3",
			"--min-trainers",
			"2",
			"--bidding",
			"14",
			"--submit",
			"30",
			"--reveal",
			"14",
			"--aggregate",
			"14",
			"--reward",
			reward,
			"--stake",
			"10",
		],
	)
}

fn scrape(port: u16) -> String {
	let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
		return String::new();
	};
	write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
	let mut text = String::new();
	s.read_to_string(&mut text).unwrap();
	text
}

fn metric(text: &str, name: &str) -> f64 {
	text.lines()
		.filter(|l| l.starts_with(name))
		.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
		.sum()
}

#[test]
fn three_services_serve_two_tasks_by_policy_through_a_restart() {
	let dir = tempfile::tempdir().unwrap();
	let dir = dir.path();
	let (rpc, p2p, metrics_port) = (free_port(), free_port(), free_port());
	let url = format!("ws://127.0.0.1:{rpc}");
	let _node = start_node(dir, "node", rpc, p2p, "node.log");
	let backoff = Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	};
	let client = Client::read_only(&url, backoff).unwrap();
	// The keystore key: `//Operator` derived with the keystore password; Alice funds it.
	let operator: AccountId = sr25519::Pair::from_string("//Operator", Some("s3cret"))
		.unwrap()
		.public()
		.into();
	let mut alice = Client::connect(&url, "//Alice", backoff).unwrap();
	alice.confirmations = 1;
	alice
		.execute(RuntimeCall::Balances(
			pallet_balances::Call::transfer_keep_alive {
				dest: sp_runtime::MultiAddress::Id(operator.clone()),
				value: 1_000 * UNIT,
			},
		))
		.unwrap();
	let accounts = [
		operator.clone(),
		dev_account("Charlie"),
		dev_account("Dave"),
	];
	let balance = |who: &AccountId| client.account_info(who, None).unwrap().free;
	let before: Vec<u128> = accounts.iter().map(&balance).collect();

	let keystore = dir.join("keystore");
	let inserted = Command::new(node_bin())
		.args([
			"key",
			"insert",
			"--dev",
			"--scheme",
			"sr25519",
			"--key-type",
			"bltr",
		])
		.args(["--suri", "//Operator", "--password", "s3cret"])
		.args(["--keystore-path", keystore.to_str().unwrap()])
		.output()
		.unwrap();
	assert!(
		inserted.status.success(),
		"{}",
		String::from_utf8_lossy(&inserted.stderr)
	);
	// A wrong password is a clear error at start.
	let wrong = Command::new(trainer_bin())
		.args([
			"serve",
			"--url",
			&url,
			"--keystore",
			keystore.to_str().unwrap(),
		])
		.args([
			"--password",
			"guess",
			"--state-dir",
			dir.join("x").to_str().unwrap(),
		])
		.env_remove("BLADE_SURI")
		.output()
		.unwrap();
	assert!(!wrong.status.success());
	let stderr = String::from_utf8_lossy(&wrong.stderr);
	assert!(stderr.contains("wrong keystore password"), "{stderr}");

	// Dave's key in a private key file; Charlie's settings in a TOML file.
	let key_file = dir.join("dave.key");
	std::fs::write(&key_file, "//Dave\n").unwrap();
	{
		use std::os::unix::fs::PermissionsExt;
		std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
	}
	let config = dir.join("charlie.toml");
	std::fs::write(
		&config,
		"suri = \"//Charlie\"\n[policy]\nmin-reward-per-round = 8.0\nmax-tasks = 2\n",
	)
	.unwrap();

	let keystore_args = [
		"--keystore",
		keystore.to_str().unwrap(),
		"--password",
		"s3cret",
	];
	let metrics_addr = format!("127.0.0.1:{metrics_port}");
	let _operator = service(
		dir,
		&url,
		"operator",
		0,
		&keystore_args,
		&["--metrics", &metrics_addr],
	);
	let _charlie = service(
		dir,
		&url,
		"charlie",
		1,
		&["--config", config.to_str().unwrap()],
		&[],
	);
	let dave_key = ["--key-file", key_file.to_str().unwrap()];
	let mut dave = service(dir, &url, "dave", 2, &dave_key, &[]);

	// Task 0 pays 45 BLADE over 3 rounds x 3 seats (5 per seat-round); task 1, published
	// once task 0 is under way, pays 90 (10).
	std::thread::sleep(Duration::from_secs(3));
	let metrics_before = scrape(metrics_port);
	assert_eq!(publish(&url, "45"), 0);
	let deadline = Instant::now() + Duration::from_secs(900);
	let wait_for = |what: &str, done: &dyn Fn() -> bool| {
		while !done() {
			assert!(Instant::now() < deadline, "timed out waiting for {what}");
			std::thread::sleep(Duration::from_secs(1));
		}
	};
	// The JSON status agrees with the chain (at its confirmed head).
	wait_for("task 0's trainers at the confirmed head", &|| {
		let head = client.confirmed_head().unwrap().1;
		client
			.task(0, Some(head))
			.unwrap()
			.is_some_and(|v| !v.trainers.is_empty())
	});
	let status = Command::new(trainer_bin())
		.args(["status", "--url", &url, "--json", "--task", "0"])
		.args(["--confirmations", "3"])
		.output()
		.unwrap();
	let stdout = String::from_utf8_lossy(&status.stdout).into_owned();
	assert!(status.status.success(), "{stdout}");
	let json: serde_json::Value = serde_json::from_str(&stdout)
		.unwrap_or_else(|e| panic!("status --json is not JSON ({e}): {stdout}"));
	let confirmed = json["confirmed_hash"].as_str().unwrap().parse().unwrap();
	let view = client.task(0, Some(confirmed)).unwrap().unwrap();
	let trainers: Vec<String> = json["tasks"][0]["trainers"]
		.as_array()
		.unwrap_or_else(|| panic!("no trainers in {stdout}"))
		.iter()
		.map(|t| t["account"].as_str().unwrap().to_string())
		.collect();
	assert_eq!(
		trainers,
		view.trainers
			.iter()
			.map(|a| a.to_string())
			.collect::<Vec<_>>()
	);
	assert_eq!(json["tasks"][0]["rounds"], 3);
	assert_eq!(json["tasks"][0]["escrow"], view.escrow.to_string());

	// Task 1 while task 0 runs.
	assert_eq!(publish(&url, "90"), 1);

	// Kill Dave's service once it serves both tasks (it bid on task 1), then restart it.
	wait_for("Dave to bid on task 1", &|| {
		client
			.bids(1, None)
			.unwrap()
			.iter()
			.any(|(a, _)| *a == dev_account("Dave"))
			|| client
				.task(1, None)
				.unwrap()
				.is_some_and(|v| v.trainers.contains(&dev_account("Dave")))
	});
	unsafe_kill(&mut dave);
	std::thread::sleep(Duration::from_secs(4));
	let _dave = service(dir, &url, "dave", 2, &dave_key, &[]);

	wait_for("both tasks to settle", &|| {
		client.task(0, None).unwrap().is_none() && client.task(1, None).unwrap().is_none()
	});
	// The services print each task's outcome when they see it settle.
	let out = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap();
	let log = |name: &str| std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap();
	wait_for("every service to report its tasks", &|| {
		out("operator").matches("selected true").count() >= 2
			&& out("dave").matches("selected true").count() >= 2
			&& out("charlie").contains("task 1: selected true")
	});
	for name in ["operator", "dave"] {
		let text = out(name);
		assert!(text.contains("task 0: selected true"), "{name}: {text}");
		assert!(text.contains("task 1: selected true"), "{name}: {text}");
	}
	assert!(!out("charlie").contains("task 0:"), "{}", out("charlie"));
	assert!(
		log("charlie").lines().any(|l| l.contains("not bidding")
			&& l.contains("task=0")
			&& l.contains("min-reward-per-round")),
		"{}",
		log("charlie")
	);
	assert!(log("dave").contains("resuming the task from the state directory"));
	for (i, who) in accounts.iter().enumerate() {
		let gain = balance(who) as i128 - before[i] as i128;
		assert!(gain > UNIT as i128, "{who} gained only {gain}");
	}
	let metrics_after = scrape(metrics_port);
	assert!(
		metric(&metrics_after, "blade_trainer_updates_sent_total")
			>= metric(&metrics_before, "blade_trainer_updates_sent_total") + 4.0,
		"{metrics_after}"
	);
	assert_eq!(
		metric(&metrics_after, "blade_trainer_tasks_served_total"),
		2.0
	);
	assert!(metric(&metrics_after, "blade_trainer_rpc_calls_total") > 0.0);
}

/// SIGKILL, as a crash would.
fn unsafe_kill(proc: &mut Proc) {
	proc.0.kill().unwrap();
	proc.0.wait().unwrap();
}
