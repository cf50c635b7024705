//! Helpers for the trainer's tests against real `blade-fl-node` processes on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
	fs::File,
	net::TcpListener,
	path::{Path, PathBuf},
	process::{Child, Command, Stdio},
	time::{Duration, Instant},
};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
	TcpListener::bind("127.0.0.1:0")
		.unwrap()
		.local_addr()
		.unwrap()
		.port()
}

/// The `blade-trainer` binary under test.
pub fn trainer_bin() -> PathBuf {
	PathBuf::from(env!("CARGO_BIN_EXE_blade-trainer"))
}

/// The node binary beside the trainer's (`cargo build --release -p blade-fl-node`), or
/// `BLADE_FL_NODE`.
pub fn node_bin() -> PathBuf {
	let path = std::env::var_os("BLADE_FL_NODE")
		.map(PathBuf::from)
		.unwrap_or_else(|| trainer_bin().with_file_name("blade-fl-node"));
	assert!(
		path.exists(),
		"{} missing: build the node first (cargo build --release -p blade-fl-node) or set BLADE_FL_NODE",
		path.display()
	);
	path
}

/// A child process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
	fn drop(&mut self) {
		let _ = self.0.kill();
		let _ = self.0.wait();
	}
}

impl Proc {
	/// `kill -9`: no chance to flush or close anything.
	pub fn kill9(&mut self) {
		let _ = self.0.kill();
		let _ = self.0.wait();
	}

	/// Send SIGINT and wait (at most a minute) for the process to exit.
	pub fn interrupt(&mut self) {
		let _ = Command::new("kill")
			.args(["-INT", &self.0.id().to_string()])
			.status();
		let deadline = Instant::now() + Duration::from_secs(60);
		while self.0.try_wait().unwrap().is_none() {
			assert!(Instant::now() < deadline, "process did not stop");
			std::thread::sleep(Duration::from_millis(100));
		}
	}
}

/// A mining `--dev` node with its chain in `dir/name`, RPC on `rpc` (unsafe methods
/// allowed, loopback only), p2p on `p2p`, log in `dir/log`.
pub fn start_node(dir: &Path, name: &str, rpc: u16, p2p: u16, log: &str) -> Proc {
	start_node_with(dir, name, rpc, p2p, log, &[])
}

/// [`start_node`] with `extra` node arguments (e.g. `--bootnodes`); the log is appended
/// to, so a restarted node keeps its history in one file.
pub fn start_node_with(
	dir: &Path,
	name: &str,
	rpc: u16,
	p2p: u16,
	log: &str,
	extra: &[&str],
) -> Proc {
	let log = std::fs::OpenOptions::new()
		.create(true)
		.append(true)
		.open(dir.join(log))
		.unwrap();
	let child = Command::new(node_bin())
		.args(["--dev", "--no-mdns", "--no-telemetry", "--no-prometheus"])
		.arg("--rpc-methods=unsafe")
		.args(["--base-path", dir.join(name).to_str().unwrap()])
		.args(["--rpc-port", &rpc.to_string()])
		.args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p}")])
		.args(extra)
		.stdout(Stdio::null())
		.stderr(log)
		.spawn()
		.unwrap();
	Proc(child)
}

/// Publish a task as Alice with `blade-trainer publish-task --url url --confirmations 2`
/// and `args` (rounds, trainers, phases, reward...); returns the task id it printed.
pub fn publish_task(url: &str, args: &[&str]) -> u64 {
	let published = Command::new(trainer_bin())
		.args(["publish-task", "--url", url, "--suri", "//Alice"])
		.args(["--confirmations", "2"])
		.args(args)
		.env_remove("BLADE_SURI")
		.output()
		.unwrap();
	assert!(
		published.status.success(),
		"publish-task failed: {}",
		String::from_utf8_lossy(&published.stderr)
	);
	String::from_utf8_lossy(&published.stdout)
		.trim()
		.parse()
		.expect("publish-task prints the task id")
}

/// The account of the development key `//{who}` (e.g. `Bob`, `Alice//stash`).
pub fn dev_account(who: &str) -> blade_trainer::chain::AccountId {
	use sp_core::crypto::Pair as _;
	sp_core::sr25519::Pair::from_string(&format!("//{who}"), None)
		.unwrap()
		.public()
		.into()
}

/// Wait until `proc` (`who`, logging to `log`) exits, asserting that it succeeded before
/// `deadline`; the log is shown on failure.
pub fn wait_exit(proc: &mut Proc, log: &Path, who: &str, deadline: Instant) {
	let read_log = || std::fs::read_to_string(log).unwrap_or_default();
	loop {
		if let Some(status) = proc.0.try_wait().unwrap() {
			assert!(status.success(), "{who} failed: {status}\n{}", read_log());
			return;
		}
		assert!(
			Instant::now() < deadline,
			"{who} still running at the deadline; log:\n{}",
			read_log()
		);
		std::thread::sleep(Duration::from_millis(500));
	}
}

/// A `blade-trainer run` for task 0 as `//{who}` on shard `shard` of 4 (3 000 images,
/// one thread), state in `dir/state-{who}`, log in `dir/{who}.log`, report appended to
/// `dir/{who}.out`; `extra` trainer arguments.
pub fn start_trainer(dir: &Path, url: &str, who: &str, shard: usize, extra: &[&str]) -> Proc {
	let log = File::create(dir.join(format!("{who}.log"))).unwrap();
	let out = File::options()
		.create(true)
		.append(true)
		.open(dir.join(format!("{who}.out")))
		.unwrap();
	let child = Command::new(trainer_bin())
		.args(["run", "--url", url, "--confirmations", "2", "--task", "0"])
		.args(["--suri", &format!("//{who}")])
		.args(["--shard", &format!("{shard}/4"), "--max-samples", "3000"])
		.args([
			"--state-dir",
			dir.join(format!("state-{who}")).to_str().unwrap(),
		])
		.args(["--threads", "1", "--quiet", "--eval-samples", "2000"])
		.args(extra)
		.env("RUST_LOG", "info")
		.stdout(out)
		.stderr(log)
		.spawn()
		.unwrap();
	Proc(child)
}

/// A mining `--dev` node under test: its process and ports.
pub struct Node {
	pub proc: Proc,
	pub rpc: u16,
	pub p2p: u16,
}

impl Node {
	/// Start node `name` in `dir` on fresh ports with `extra` node arguments.
	pub fn start(dir: &Path, name: &str, extra: &[&str]) -> Node {
		let (rpc, p2p) = (free_port(), free_port());
		Node::restart(dir, name, rpc, p2p, extra)
	}

	/// Start node `name` again on its base path and ports.
	pub fn restart(dir: &Path, name: &str, rpc: u16, p2p: u16, extra: &[&str]) -> Node {
		let proc = start_node_with(dir, name, rpc, p2p, &format!("{name}.log"), extra);
		Node { proc, rpc, p2p }
	}

	/// A read-only chain client on its RPC port.
	pub fn client(&self) -> blade_trainer::chain::Client {
		let backoff = blade_trainer::chain::Backoff {
			give_up_after: Duration::from_secs(120),
			..Default::default()
		};
		blade_trainer::chain::Client::read_only(&format!("ws://127.0.0.1:{}", self.rpc), backoff)
			.unwrap()
	}

	/// Its p2p multiaddress, for `--bootnodes` and `system_addReservedPeer`.
	pub fn peer_address(&self) -> String {
		let peer: String = serde_json::from_value(
			self.client()
				.rpc()
				.call("system_localPeerId", serde_json::json!([]))
				.unwrap(),
		)
		.unwrap();
		format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", self.p2p)
	}
}

/// Wait (at most `limit`) until `client`'s best block is at least `n`.
pub fn wait_for(
	client: &blade_trainer::chain::Client,
	n: blade_trainer::chain::BlockNumber,
	limit: Duration,
) {
	let deadline = Instant::now() + limit;
	while client.best_number().unwrap() < n {
		assert!(Instant::now() < deadline, "block {n} not reached");
		std::thread::sleep(Duration::from_millis(200));
	}
}

/// The work on `client`'s best chain above block `from`: the sum of each block's
/// difficulty (the runtime's difficulty at its parent), the weight the PoW fork choice
/// compares.
pub fn work_above(
	client: &blade_trainer::chain::Client,
	from: blade_trainer::chain::BlockNumber,
) -> sp_core::U256 {
	let best = client.best_number().unwrap();
	let mut work = sp_core::U256::zero();
	for parent in from..best {
		// A reorg between the two reads can shorten the chain: count what is there.
		let Some(hash) = client.block_hash(parent).unwrap() else {
			break;
		};
		let difficulty: sp_core::U256 = client
			.state_call("DifficultyApi_difficulty", (), Some(hash))
			.unwrap();
		work = work.saturating_add(difficulty);
	}
	work
}

/// A temporary directory for a test's nodes and trainers; kept (and its path printed) when
/// `BLADE_KEEP_TEST_DIRS` is set, to read the logs of a failed or surprising run.
pub fn test_dir() -> tempfile::TempDir {
	let mut dir = tempfile::tempdir().unwrap();
	if std::env::var_os("BLADE_KEEP_TEST_DIRS").is_some() {
		dir.disable_cleanup(true);
		println!("test directory kept: {}", dir.path().display());
	}
	dir
}

/// Wait until every reader's best chain reaches block `target` and all hold the same block
/// there (reorgs may still be settling: at most two minutes for that); returns its hash.
pub fn agreed_block(
	readers: &[&blade_trainer::chain::Client],
	target: blade_trainer::chain::BlockNumber,
) -> sp_core::H256 {
	for reader in readers {
		wait_for(reader, target, Duration::from_secs(300));
	}
	let deadline = Instant::now() + Duration::from_secs(120);
	loop {
		let hashes: Vec<_> = readers
			.iter()
			.map(|r| r.block_hash(target).unwrap())
			.collect();
		if let Some(Some(first)) = hashes.first() {
			if hashes.iter().all(|h| *h == Some(*first)) {
				return *first;
			}
		}
		assert!(
			Instant::now() < deadline,
			"the nodes disagree on block {target}: {hashes:?}"
		);
		std::thread::sleep(Duration::from_millis(500));
	}
}

/// Wait (until `deadline`) for the trainers `names` started by [`start_trainer`] in `dir`
/// to exit successfully, print each one's report and warnings, require that each was
/// selected and never excluded, and return the reports.
pub fn finish_honest_trainers(
	procs: &mut [Proc],
	names: &[&str],
	dir: &Path,
	deadline: Instant,
) -> Vec<String> {
	for (proc, who) in procs.iter_mut().zip(names) {
		wait_exit(proc, &dir.join(format!("{who}.log")), who, deadline);
	}
	names
		.iter()
		.map(|who| {
			let out = std::fs::read_to_string(dir.join(format!("{who}.out"))).unwrap();
			let log = std::fs::read_to_string(dir.join(format!("{who}.log"))).unwrap();
			println!("--- {who}\n{out}");
			for line in log.lines().filter(|l| l.contains("WARN")) {
				println!("  {line}");
			}
			assert!(
				out.contains("selected true, excluded false"),
				"{who}: {out}"
			);
			out
		})
		.collect()
}

/// The peers `client`'s node is connected to (`system_peers`).
pub fn peers(client: &blade_trainer::chain::Client) -> Vec<serde_json::Value> {
	serde_json::from_value(
		client
			.rpc()
			.call("system_peers", serde_json::json!([]))
			.unwrap(),
	)
	.unwrap()
}
