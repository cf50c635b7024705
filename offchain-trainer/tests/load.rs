//! Load on real nodes: many tasks and bids at once, then blocks full of `submit_update`
//! blobs, against a mining node A and a node B that imports A's blocks. Measured in one
//! run for an unloaded baseline, the load and the drain after it: RPC latency (p50/p99
//! of `chain_getHeader` and `state_call`) on A, B's block verification-and-import time
//! (its Prometheus histogram), both nodes' resident memory, block sizes. Asserted: every
//! transaction of the load lands (none lost), the storage bounds hold (the task beyond
//! `MaxActiveTasks` and the bid beyond `MaxBids` are refused, when the load reaches them),
//! no block exceeds its length limit, no RPC probe fails and the pool drains.
//!
//! The default is sized for CI (2 tasks, 12 bidders, 8 trainers each, 100 kB blobs).
//! `benchmarking/load` runs the large variant (every bound, 1 MiB blobs, minutes of full
//! blocks) through the same test with `BLADE_LOAD_*` variables; figures are in
//! `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	process::{Command, Stdio},
	sync::{
		atomic::{AtomicBool, AtomicU8, Ordering},
		Arc, Mutex,
	},
	time::{Duration, Instant},
};

use blade_fl_primitives::blob::{encode_f32, Codec, HEADER_LEN};
use blade_trainer::{
	chain::{
		describe_error, Backoff, Client, FlCall, FlEvent, RuntimeCall, RuntimeEvent, TaskSpec, UNIT,
	},
	Error,
};
use common::{free_port, node_bin, start_node_with, Proc};
use pallet_fl_tasks::{AggregationRule, Phase, PhaseLengths};
use serde_json::json;
use sp_core::{sr25519, Pair, H256};

/// The size of the load, from `BLADE_LOAD_*` variables (defaults: the CI size).
#[derive(Clone, Copy, Debug)]
struct Size {
	/// Tasks published at once (`MaxActiveTasks` is 64; four per publisher).
	tasks: u32,
	/// Accounts bidding on every task (`MaxBids` is 128).
	bidders: u32,
	/// Trainers selected per task; each submits one blob.
	trainers: u32,
	/// Parameters per update (25 000: 100 kB; 262 000: the 1 MiB `MaxBlobSize`).
	params: u32,
	/// Seconds of unloaded baseline before the load.
	baseline_s: u64,
}

impl Size {
	fn from_env() -> Size {
		let var = |name: &str, default: u64| {
			std::env::var(format!("BLADE_LOAD_{name}"))
				.ok()
				.and_then(|v| v.parse().ok())
				.unwrap_or(default)
		};
		Size {
			tasks: var("TASKS", 2) as u32,
			bidders: var("BIDDERS", 12) as u32,
			trainers: var("TRAINERS", 8) as u32,
			params: var("PARAMS", 25_000) as u32,
			baseline_s: var("BASELINE_S", 20),
		}
	}

	fn blob_len(&self) -> u64 {
		HEADER_LEN as u64 + 4 * u64::from(self.params)
	}
}

/// Phases of the run, as the probes label their samples.
const BASELINE: u8 = 0;
const LOAD: u8 = 1;
const DRAIN: u8 = 2;
const PHASES: [&str; 3] = ["baseline", "load", "drain"];

/// What the probes saw: (phase, seconds) per RPC method, (phase, KiB) per node.
#[derive(Default)]
struct Samples {
	header: Vec<(u8, f64)>,
	state_call: Vec<(u8, f64)>,
	rss_a: Vec<(u8, u64)>,
	rss_b: Vec<(u8, u64)>,
	failures: Vec<String>,
}

fn quantile(values: &mut [f64], q: f64) -> f64 {
	if values.is_empty() {
		return f64::NAN;
	}
	values.sort_by(|a, b| a.total_cmp(b));
	values[((values.len() - 1) as f64 * q).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
	std::fs::read_to_string(format!("/proc/{pid}/status"))
		.unwrap_or_default()
		.lines()
		.find_map(|l| l.strip_prefix("VmRSS:"))
		.and_then(|v| v.split_whitespace().next()?.parse().ok())
		.unwrap_or(0)
}

/// B's block verification-and-import histogram: (sum of seconds, blocks).
fn import_histogram(prometheus: u16) -> (f64, f64) {
	let text = attohttpc::get(format!("http://127.0.0.1:{prometheus}/metrics"))
		.send()
		.and_then(|r| r.text())
		.unwrap_or_default();
	let read = |name: &str| {
		text.lines()
			.find(|l| l.starts_with(name))
			.and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
			.unwrap_or(0.0)
	};
	(
		read("substrate_block_verification_and_import_time_sum"),
		read("substrate_block_verification_and_import_time_count"),
	)
}

fn backoff() -> Backoff {
	Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	}
}

/// A signing client over HTTP (no subscription per account).
fn signer(url: &str, pair: sr25519::Pair) -> Client {
	let mut client = Client::connect_pair(url, pair, backoff()).unwrap();
	client.confirmations = 1;
	client.timeout = Duration::from_secs(900);
	client
}

/// Send `calls` from `client`'s account in order (signed once, from consecutive nonces),
/// at most `window` ahead of the chain. A full pool refuses a transaction or drops one it
/// had taken, so a refused one is tried again later, and when the account's nonce stops
/// moving the rest is sent again from the chain's nonce. Any other refusal fails the test.
fn send_all(client: &Client, calls: Vec<RuntimeCall>, window: u32) {
	let first = nonce_of(client);
	let signed: Vec<Vec<u8>> = calls
		.into_iter()
		.enumerate()
		.map(|(i, call)| codec::Encode::encode(&client.sign(call, first + i as u32)))
		.collect();
	let end = first + signed.len() as u32;
	let (mut next, mut seen, mut moved) = (first, first, Instant::now());
	let mut refusals = std::collections::HashSet::new();
	let deadline = Instant::now() + Duration::from_secs(1800);
	loop {
		let chain = nonce_of(client);
		if chain >= end {
			return;
		}
		if chain != seen {
			(seen, moved) = (chain, Instant::now());
		} else if moved.elapsed() > Duration::from_secs(20) {
			// Stuck: something was dropped. Send again from the chain's nonce.
			println!("nonce stuck at {chain} for 20 s; sending again from there");
			(next, moved) = (chain, Instant::now());
		}
		next = next.max(chain);
		while next < end && next < chain + window {
			match client.rpc().submit(&signed[(next - first) as usize]) {
				// Taken, already in the pool, or already on chain.
				Ok(_) | Err(Error::Rpc { code: 1013, .. }) => next += 1,
				Err(Error::Rpc { message, .. }) if message.contains("outdated") => next += 1,
				Err(Error::Rpc { code, message, .. })
					if matches!(code, 1014 | 1016)
						|| message.contains("limit")
						|| message.contains("Immediately Dropped") =>
				{
					if refusals.insert(message.clone()) {
						println!(
							"pool refused nonce {next} ({code}: {message}); trying again later"
						);
					}
					break;
				}
				Err(e) => panic!("{e}"),
			}
		}
		assert!(
			Instant::now() < deadline,
			"{} of {} transactions on chain",
			chain - first,
			end - first
		);
		std::thread::sleep(Duration::from_millis(300));
	}
}

/// The next nonce of `client`'s account on chain.
fn nonce_of(client: &Client) -> u32 {
	client.account_info(client.account(), None).unwrap().nonce
}

fn pair(who: &str) -> sr25519::Pair {
	sr25519::Pair::from_string(who, None).unwrap()
}

fn spec(size: &Size, bidding: u32, submit: u32) -> pallet_fl_tasks::TaskSpec<u128, u32> {
	TaskSpec {
		model_id: 1,
		param_count: size.params,
		dataset_id: 1,
		validation_hash: H256::repeat_byte(1),
		rounds: 1,
		trainers_wanted: size.trainers,
		trainers_min: 1,
		min_samples: 1,
		max_samples: 1_000,
		codec: Codec::F32,
		rule: AggregationRule::FedAvg,
		privacy: None,
		pn_snr_centi_db: 600,
		max_norm_milli: u32::MAX,
		phases: PhaseLengths {
			bidding,
			submit,
			reveal: 6,
			aggregate: 6,
		},
		reward: 10 * UNIT,
		min_stake: 10 * UNIT,
	}
}

/// Run `work` for every item on `threads` threads.
fn parallel<T: Send + Clone + 'static>(
	items: Vec<T>,
	threads: usize,
	work: impl Fn(T) + Send + Sync + 'static,
) {
	let work = Arc::new(work);
	let items = Arc::new(Mutex::new(items));
	let handles: Vec<_> = (0..threads)
		.map(|_| {
			let (work, items) = (work.clone(), items.clone());
			std::thread::spawn(move || loop {
				let Some(item) = items.lock().unwrap().pop() else {
					return;
				};
				work(item);
			})
		})
		.collect();
	for handle in handles {
		handle.join().unwrap();
	}
}

#[test]
fn a_loaded_chain_stays_responsive_loses_nothing_and_drains() {
	let size = Size::from_env();
	println!("load: {size:?}");
	let dir = tempfile::tempdir().unwrap();
	let (rpc_a, p2p_a) = (free_port(), free_port());
	let node_a = start_node_with(dir.path(), "a", rpc_a, p2p_a, "a.log", &[]);
	let ws_a = format!("ws://127.0.0.1:{rpc_a}");
	let http_a = format!("http://127.0.0.1:{rpc_a}");
	let reader = Client::read_only(&ws_a, backoff()).unwrap();
	let peer: String =
		serde_json::from_value(reader.rpc().call("system_localPeerId", json!([])).unwrap())
			.unwrap();
	// B imports A's blocks and does not mine; its Prometheus endpoint times every import.
	let (rpc_b, p2p_b, prometheus_b) = (free_port(), free_port(), free_port());
	let log_b = std::fs::File::create(dir.path().join("b.log")).unwrap();
	let node_b = Proc(
		Command::new(node_bin())
			.args(["--chain", "dev", "--no-mdns", "--no-telemetry"])
			.args(["--base-path", dir.path().join("b").to_str().unwrap()])
			.args(["--rpc-port", &rpc_b.to_string()])
			.args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p_b}")])
			.args(["--prometheus-port", &prometheus_b.to_string()])
			.args([
				"--bootnodes",
				&format!("/ip4/127.0.0.1/tcp/{p2p_a}/p2p/{peer}"),
			])
			.stdout(Stdio::null())
			.stderr(log_b)
			.spawn()
			.unwrap(),
	);
	let reader_b = Client::read_only(&format!("ws://127.0.0.1:{rpc_b}"), backoff()).unwrap();
	let deadline = Instant::now() + Duration::from_secs(300);
	while reader.best_number().unwrap() < 3 || reader_b.best_number().unwrap() < 2 {
		assert!(Instant::now() < deadline, "the nodes never reached block 3");
		std::thread::sleep(Duration::from_millis(500));
	}

	// Probes: RPC latency on A every 200 ms, memory of both nodes every second.
	let phase = Arc::new(AtomicU8::new(BASELINE));
	let stop = Arc::new(AtomicBool::new(false));
	let samples = Arc::new(Mutex::new(Samples::default()));
	let (pid_a, pid_b) = (node_a.0.id(), node_b.0.id());
	let prober = {
		let (phase, stop, samples) = (phase.clone(), stop.clone(), samples.clone());
		let probe = Client::read_only(&ws_a, backoff()).unwrap();
		std::thread::spawn(move || {
			let mut tick = 0u32;
			while !stop.load(Ordering::Relaxed) {
				let now = phase.load(Ordering::Relaxed);
				let started = Instant::now();
				let header = probe.rpc().call("chain_getHeader", json!([]));
				let header_s = started.elapsed().as_secs_f64();
				let started = Instant::now();
				let version = probe
					.rpc()
					.call("state_call", json!(["Core_version", "0x", null]));
				let call_s = started.elapsed().as_secs_f64();
				let mut s = samples.lock().unwrap();
				match (header, version) {
					(Ok(_), Ok(_)) => {
						s.header.push((now, header_s));
						s.state_call.push((now, call_s));
					}
					(h, v) => s.failures.push(format!("{:?} {:?}", h.err(), v.err())),
				}
				if tick.is_multiple_of(5) {
					s.rss_a.push((now, rss_kib(pid_a)));
					s.rss_b.push((now, rss_kib(pid_b)));
				}
				drop(s);
				tick += 1;
				std::thread::sleep(Duration::from_millis(200));
			}
		})
	};
	let mut imports = vec![import_histogram(prometheus_b)];
	let mut heights = vec![reader.best_number().unwrap()];
	std::thread::sleep(Duration::from_secs(size.baseline_s));
	imports.push(import_histogram(prometheus_b));
	heights.push(reader.best_number().unwrap());

	// ---- load: accounts, tasks, bids, then every selected trainer's blob ----
	phase.store(LOAD, Ordering::Relaxed);
	let load_started = Instant::now();
	let publishers: Vec<String> = (0..size.tasks.div_ceil(4))
		.map(|i| format!("//LoadPublisher{i}"))
		.collect();
	let bidders: Vec<String> = (0..size.bidders)
		.map(|i| format!("//LoadBidder{i}"))
		.collect();
	let alice = signer(&http_a, pair("//Alice"));
	let stakes = u128::from(size.tasks) * 25 * UNIT;
	let transfers = publishers
		.iter()
		.chain(&bidders)
		.map(|who| {
			RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
				dest: sp_runtime::MultiAddress::Id(sp_runtime::AccountId32::from(
					pair(who).public(),
				)),
				value: 1_000 * UNIT + stakes,
			})
		})
		.collect();
	send_all(&alice, transfers, 512);

	// Enough blocks for every bid and every blob, at a quarter of the block length.
	let bidding = 8 + size.tasks * size.bidders / 100;
	let per_block = (5 * 1024 * 1024 * 3 / 4 / 4) as u64;
	// Plus a block per task: the hook moves at most a few tasks a block out of bidding,
	// and the first ones must still be in Submit when the last one gets there.
	let submit = 10
		+ 2 * size.tasks
		+ (u64::from(size.tasks * size.trainers) * size.blob_len() / per_block) as u32;
	let task_spec = spec(&size, bidding, submit);
	let mut tasks = Vec::new();
	for (p, who) in publishers.iter().enumerate() {
		let mut publisher = signer(&http_a, pair(who));
		let count = (size.tasks - 4 * p as u32).min(4);
		let mut pending = Vec::new();
		for _ in 0..count {
			pending.push(
				publisher
					.submit(RuntimeCall::FlTasks(FlCall::publish_task {
						spec: task_spec,
					}))
					.unwrap(),
			);
		}
		for p in pending {
			let confirmed = publisher.confirm(p).unwrap();
			assert!(confirmed.failure().is_none(), "{:?}", confirmed.failure());
		}
	}
	for (task, _) in reader.active_tasks(None).unwrap() {
		tasks.push(task);
	}
	assert_eq!(tasks.len() as u32, size.tasks, "every task published");
	let mut refused = Vec::new();
	if size.tasks >= 64 {
		// The bound: one more task is refused, nothing held for it.
		let mut extra = signer(&http_a, pair("//Ferdie"));
		let result = extra.fl(FlCall::publish_task { spec: task_spec });
		assert!(
			matches!(&result, Err(Error::Dispatch { error, .. }) if error.contains("TooManyTasks")),
			"the 65th task: {result:?}"
		);
		refused.push("65th task: TooManyTasks");
	}

	let bid_started = Instant::now();
	let items: Vec<String> = bidders.clone();
	let task_list = tasks.clone();
	let url = http_a.clone();
	// Many senders at once (they mostly wait on the chain), each with all its bids in the
	// pool at once.
	parallel(items, 32, move |who| {
		let client = signer(&url, pair(&who));
		let bids = task_list
			.iter()
			.map(|&task| {
				RuntimeCall::FlTasks(FlCall::bid {
					task,
					samples: 100,
					price: UNIT,
					capability: 1,
					commitment: H256::repeat_byte(3),
				})
			})
			.collect();
		send_all(&client, bids, 64);
	});
	let wanted_bids = size.bidders.min(128);
	loop {
		let views: Vec<_> = tasks
			.iter()
			.map(|&t| reader.task(t, None).unwrap().unwrap())
			.collect();
		let counts: Vec<u32> = views.iter().map(|v| v.bids).collect();
		assert!(
			counts.iter().all(|&c| c <= 128),
			"a task holds more than MaxBids bids: {counts:?}"
		);
		if counts.iter().all(|&c| c >= wanted_bids) {
			break;
		}
		assert!(
			views.iter().all(|v| v.phase == Phase::Bidding),
			"bidding ended before every bid landed (bids {counts:?}): lengthen it"
		);
		std::thread::sleep(Duration::from_millis(500));
	}
	let bids_s = bid_started.elapsed().as_secs_f64();
	if size.bidders >= 128 {
		let mut extra = signer(&http_a, pair("//Ferdie"));
		let result = extra.fl(FlCall::bid {
			task: tasks[0],
			samples: 100,
			price: UNIT,
			capability: 1,
			commitment: H256::repeat_byte(3),
		});
		assert!(
			matches!(&result, Err(Error::Dispatch { error, .. }) if error.contains("TooManyBids")),
			"the 129th bid: {result:?}"
		);
		refused.push("129th bid: TooManyBids");
	}

	// Every task in Submit: each selected trainer sends one blob.
	let deadline = Instant::now() + Duration::from_secs(1200);
	let selected: Vec<(u64, Vec<sp_runtime::AccountId32>)> = loop {
		let views: Vec<_> = tasks
			.iter()
			.map(|&t| {
				let view = reader.task(t, None).unwrap();
				(
					t,
					view.unwrap_or_else(|| {
						panic!("task {t} settled before the last task reached Submit")
					}),
				)
			})
			.collect();
		if views.iter().all(|(_, v)| v.phase == Phase::Submit) {
			break views.into_iter().map(|(t, v)| (t, v.trainers)).collect();
		}
		assert!(Instant::now() < deadline, "the tasks never reached Submit");
		std::thread::sleep(Duration::from_secs(1));
	};
	let by_account: std::collections::HashMap<sp_runtime::AccountId32, String> = bidders
		.iter()
		.map(|w| (sp_runtime::AccountId32::from(pair(w).public()), w.clone()))
		.collect();
	// Per trainer, the tasks it sits in (one account may be selected in many): each
	// trainer sends its blobs in order, from consecutive nonces.
	let mut jobs: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
	for (task, trainers) in &selected {
		assert_eq!(
			trainers.len() as u32,
			size.trainers.min(wanted_bids),
			"task {task} seats"
		);
		for t in trainers {
			jobs.entry(by_account[t].clone()).or_default().push(*task);
		}
	}
	let expected_updates: usize = jobs.values().map(Vec::len).sum();
	println!(
		"{expected_updates} updates to send from {} trainers",
		jobs.len()
	);
	let submit_started = Instant::now();
	let submit_from = reader.best_number().unwrap();
	let url = http_a.clone();
	let params = size.params as usize;
	parallel(
		jobs.into_iter().collect(),
		4,
		move |(who, its_tasks): (String, Vec<u64>)| {
			let client = signer(&url, pair(&who));
			let values: Vec<f32> = (0..params)
				.map(|i| ((i % 97) as f32 - 48.0) * 1e-4)
				.collect();
			// A few blobs in the pool per trainer: a full pool drops what it took.
			let updates = its_tasks
				.into_iter()
				.map(|task| {
					RuntimeCall::FlTasks(FlCall::submit_update {
						task,
						round: 0,
						blob: encode_f32(task, 0, &values).try_into().unwrap(),
						next_commitment: H256::repeat_byte(4),
					})
				})
				.collect();
			send_all(&client, updates, 4);
		},
	);
	// What the blocks say, from the first block the updates could be in to the head once
	// every sender's nonces are used (a phase that ended early is still in the events):
	// one `UpdateSubmitted` per (task, trainer), and every failed extrinsic by its error.
	let (landed, failures) = {
		let mut submitted = std::collections::HashSet::new();
		let mut failures: std::collections::BTreeMap<String, u32> = Default::default();
		let head = reader.best_number().unwrap();
		for n in submit_from..=head {
			let hash = reader.block_hash(n).unwrap().unwrap();
			for record in reader.event_records(hash).unwrap() {
				match record.event {
					RuntimeEvent::FlTasks(FlEvent::UpdateSubmitted { task, trainer, .. }) => {
						assert!(submitted.insert((task, trainer)), "an update counted twice");
					}
					RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
						dispatch_error,
						..
					}) => *failures.entry(describe_error(&dispatch_error)).or_default() += 1,
					_ => {}
				}
			}
		}
		(submitted.len() as u32, failures)
	};
	println!("updates: {landed} landed; failed extrinsics: {failures:?}");
	let submit_s = submit_started.elapsed().as_secs_f64();
	let load_s = load_started.elapsed().as_secs_f64();
	imports.push(import_histogram(prometheus_b));
	heights.push(reader.best_number().unwrap());

	// ---- drain: the pool empties ----
	phase.store(DRAIN, Ordering::Relaxed);
	let drain_started = Instant::now();
	let deadline = Instant::now() + Duration::from_secs(600);
	loop {
		let pending: Vec<serde_json::Value> = serde_json::from_value(
			reader
				.rpc()
				.call("author_pendingExtrinsics", json!([]))
				.unwrap(),
		)
		.unwrap();
		if pending.is_empty() {
			break;
		}
		assert!(
			Instant::now() < deadline,
			"{} transactions still pending",
			pending.len()
		);
		std::thread::sleep(Duration::from_secs(1));
	}
	let drain_s = drain_started.elapsed().as_secs_f64();
	std::thread::sleep(Duration::from_secs(size.baseline_s.min(20)));
	imports.push(import_histogram(prometheus_b));
	heights.push(reader.best_number().unwrap());
	stop.store(true, Ordering::Relaxed);
	prober.join().unwrap();

	// Block sizes over the whole run, against the 5 MiB limit.
	let mut sizes = Vec::new();
	for n in heights[0]..=heights[3] {
		let hash = reader.block_hash(n).unwrap().unwrap();
		let bytes: usize = reader
			.block_extrinsics(hash)
			.unwrap()
			.iter()
			.map(Vec::len)
			.sum();
		sizes.push((n, bytes));
	}
	let largest = sizes.iter().map(|s| s.1).max().unwrap_or(0);

	// ---- figures ----
	let s = samples.lock().unwrap();
	println!("\n| phase | blocks | RPC calls | chain_getHeader p50 / p99 ms | state_call p50 / p99 ms | B import mean ms | RSS A MiB (first / last) | RSS B MiB (first / last) | largest block kB |");
	println!("|---|---|---|---|---|---|---|---|---|");
	for (i, name) in PHASES.iter().enumerate() {
		let of = |v: &[(u8, f64)]| {
			v.iter()
				.filter(|(p, _)| *p as usize == i)
				.map(|(_, x)| x * 1e3)
				.collect::<Vec<f64>>()
		};
		let (mut h, mut c) = (of(&s.header), of(&s.state_call));
		let rss = |v: &[(u8, u64)]| {
			let of: Vec<u64> = v
				.iter()
				.filter(|(p, _)| *p as usize == i)
				.map(|(_, x)| x / 1024)
				.collect();
			format!(
				"{} / {}",
				of.first().copied().unwrap_or(0),
				of.last().copied().unwrap_or(0)
			)
		};
		let (sum, count) = (
			imports[i + 1].0 - imports[i].0,
			imports[i + 1].1 - imports[i].1,
		);
		let largest_in = sizes
			.iter()
			.filter(|(n, _)| *n > heights[i] && *n <= heights[i + 1])
			.map(|s| s.1)
			.max()
			.unwrap_or(0);
		println!(
			"| {name} | {} | {} | {:.1} / {:.1} | {:.1} / {:.1} | {:.1} | {} | {} | {} |",
			heights[i + 1] - heights[i],
			h.len() + c.len(),
			quantile(&mut h, 0.5),
			quantile(&mut h, 0.99),
			quantile(&mut c, 0.5),
			quantile(&mut c, 0.99),
			if count > 0.0 {
				sum / count * 1e3
			} else {
				f64::NAN
			},
			rss(&s.rss_a),
			rss(&s.rss_b),
			largest_in / 1000,
		);
	}
	println!(
		"\nload held: {} tasks, {} bids ({bids_s:.0} s), {landed} updates of {} kB ({:.1} MB, {submit_s:.0} s), {:.0} s in all; pool drained in {drain_s:.1} s; bounds refused: {refused:?}",
		tasks.len(),
		tasks.len() as u32 * wanted_bids,
		size.blob_len() / 1000,
		landed as f64 * size.blob_len() as f64 / 1e6,
		load_s,
	);

	assert!(
		s.failures.is_empty(),
		"RPC probes failed under load: {:?}",
		s.failures
	);
	assert_eq!(landed as usize, expected_updates, "every update landed");
	assert!(largest <= 5 * 1024 * 1024, "a block of {largest} bytes");
	drop(node_b);
	drop(node_a);
}
