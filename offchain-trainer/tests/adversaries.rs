//! One adversary of each protocol attack the trainer binary can play, on a real dev node
//! (see `docs/security.md`): Eve copies an update and hides the copy under her own
//! watermark at 15x its RMS (`--behaviour inflate`), Ferdie submits an int8 blob at
//! `f32`'s limit (`crafted-blob`), Bob//stash trains honestly but never publishes
//! an aggregate it is chosen for (`withhold`; it acts on shallower blocks than the others so
//! that it tends to vote first and become the aggregator), Charlie//stash publishes noise
//! instead of training (`random`, the free rider), Dave//stash the negated update
//! (`sign-flip`) and Eve//stash its update times 10 (`scale`). Bob, Charlie, Dave and
//! Alice//stash are honest. The same task is first run on a fresh chain by the honest
//! trainers and the withholder alone, as the reference.
//!
//! The task must settle; Eve must be proven lazy; the copier, the crafted-blob sender, the
//! free rider and the two poisoners must end with less than they started (not counting
//! fees for publishing a withheld aggregate, a service anyone may provide), and so must the withholder when
//! it was an aggregator; the honest trainers' final accuracy must be within one
//! point of the reference run.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	fs::File,
	path::Path,
	process::Command,
	time::{Duration, Instant},
};

use blade_trainer::chain::{self, Backoff, Client};
use common::{dev_account, free_port, publish_task, start_node, trainer_bin, wait_exit, Proc};

const HONEST: [&str; 4] = ["Bob", "Charlie", "Dave", "Alice//stash"];
/// The withholder (a funded development account).
const WITHHOLDER: &str = "Bob//stash";
/// The free rider: publishes Gaussian noise under its own watermark.
const FREE_RIDER: &str = "Charlie//stash";
/// Poisoners: the negated update, and the update boosted tenfold.
const SIGN_FLIPPER: &str = "Dave//stash";
const BOOSTER: &str = "Eve//stash";

/// `who` as a file name.
fn slug(who: &str) -> String {
	who.replace("//", "-")
}

fn trainer(dir: &Path, url: &str, who: &str, shard: usize, extra: &[&str]) -> Proc {
	let log = File::create(dir.join(format!("{}.log", slug(who)))).unwrap();
	let out = File::create(dir.join(format!("{}.out", slug(who)))).unwrap();
	// The withholder acts on blocks one deep, the others two: it sees each phase first.
	let confirmations = if who == WITHHOLDER { "1" } else { "2" };
	let child = Command::new(trainer_bin())
		.args(["run", "--url", url, "--confirmations", confirmations])
		.args(["--task", "0", "--suri", &format!("//{who}")])
		.args(["--shard", &format!("{shard}/7"), "--max-samples", "1500"])
		.args([
			"--state-dir",
			dir.join(format!("state-{}", slug(who))).to_str().unwrap(),
		])
		.args(["--threads", "1", "--quiet", "--eval-samples", "2000"])
		.args(["--noise", "off"])
		.args(extra)
		.env("RUST_LOG", "info")
		.stdout(out)
		.stderr(log)
		.spawn()
		.unwrap();
	Proc(child)
}

/// What one run left behind.
struct Run {
	/// Free balance change of each account, in planck.
	gains: Vec<(String, i128)>,
	/// Final test accuracy each honest trainer reported.
	accuracy: Vec<f64>,
	/// Trainer outputs.
	outputs: Vec<(String, String)>,
	/// Trainer logs.
	logs: Vec<(String, String)>,
	/// Aggregators that withheld a publication.
	withheld: Vec<chain::AccountId>,
	/// Publication fees earned by whoever published an aggregate (a service anyone may
	/// provide, adversaries included, once the aggregator's window has passed).
	publication_fees: Vec<(chain::AccountId, u128)>,
}

fn run_task(dir: &Path, adversaries: bool) -> Run {
	let (rpc, p2p) = (free_port(), free_port());
	let url = format!("ws://127.0.0.1:{rpc}");
	let _node = start_node(dir, "node", rpc, p2p, "node.log");
	let backoff = Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	};
	let client = Client::read_only(&url, backoff).unwrap();
	let mut cast: Vec<(&str, usize, Vec<&str>)> = HONEST
		.iter()
		.enumerate()
		.map(|(i, w)| (*w, i, vec![]))
		.collect();
	cast.push((WITHHOLDER, 4, vec!["--behaviour", "withhold"]));
	if adversaries {
		cast.push(("Eve", 5, vec!["--behaviour", "inflate"]));
		cast.push(("Ferdie", 6, vec!["--behaviour", "crafted-blob"]));
		cast.push((FREE_RIDER, 3, vec!["--behaviour", "random"]));
		cast.push((SIGN_FLIPPER, 2, vec!["--behaviour", "sign-flip"]));
		cast.push((BOOSTER, 1, vec!["--behaviour", "scale"]));
	}
	let balance = |who: &str| client.account_info(&dev_account(who), None).unwrap().free;
	let before: Vec<u128> = cast.iter().map(|(w, _, _)| balance(w)).collect();
	let trainers = cast.len().to_string();
	publish_task(
		&url,
		&[
			"--rounds",
			"2",
			"--trainers",
			&trainers,
			"--min-trainers",
			"3",
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
			"--reward",
			"100",
			"--stake",
			"10",
		],
	);
	let mut procs: Vec<(String, Proc)> = cast
		.iter()
		.map(|(who, shard, extra)| (who.to_string(), trainer(dir, &url, who, *shard, extra)))
		.collect();
	let deadline = Instant::now() + Duration::from_secs(600);
	let mut withheld = Vec::new();
	let mut publication_fees = Vec::new();
	for (who, proc) in procs.iter_mut() {
		let log = dir.join(format!("{}.log", slug(who)));
		wait_exit(proc, &log, who, deadline);
	}
	assert!(client.task(0, None).unwrap().is_none(), "the task settles");
	// Who withheld, and who was paid for publishing: the events of the blocks so far.
	let best = client.best_number().unwrap();
	for n in 1..=best {
		let Some(hash) = client.block_hash(n).unwrap() else {
			continue;
		};
		for record in client.event_records(hash).unwrap() {
			match record.event {
				chain::RuntimeEvent::FlTasks(pallet_fl_tasks::Event::PublicationMissed {
					aggregator,
					..
				}) => withheld.push(aggregator),
				chain::RuntimeEvent::FlTasks(pallet_fl_tasks::Event::AggregatePublished {
					by,
					fee,
					..
				}) => publication_fees.push((by, fee)),
				_ => {}
			}
		}
	}
	let outputs: Vec<(String, String)> = cast
		.iter()
		.map(|(w, _, _)| {
			let text = std::fs::read_to_string(dir.join(format!("{}.out", slug(w)))).unwrap();
			println!("--- {w}\n{text}");
			(w.to_string(), text)
		})
		.collect();
	let accuracy = outputs
		.iter()
		.filter(|(w, _)| HONEST.contains(&w.as_str()))
		.map(|(w, text)| {
			text.lines()
				.filter(|l| l.contains("global model after round 2"))
				.filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
				.next_back()
				.unwrap_or_else(|| panic!("{w} reported no final accuracy: {text}"))
		})
		.collect();
	let logs = cast
		.iter()
		.map(|(w, _, _)| {
			let text = std::fs::read_to_string(dir.join(format!("{}.log", slug(w)))).unwrap();
			(w.to_string(), text)
		})
		.collect();
	let gains = cast
		.iter()
		.zip(before)
		.map(|((w, _, _), b)| (w.to_string(), balance(w) as i128 - b as i128))
		.collect();
	Run {
		gains,
		accuracy,
		outputs,
		logs,
		withheld,
		publication_fees,
	}
}

#[test]
fn adversaries_on_a_real_node_end_with_less() {
	let reference_dir = tempfile::tempdir().unwrap();
	let reference = run_task(reference_dir.path(), false);
	let dir = tempfile::tempdir().unwrap();
	let attacked = run_task(dir.path(), true);

	// What an account's own play earned: its balance change less the fees it was paid for
	// publishing aggregates (backup publication is open to anyone, adversaries included,
	// and pays for the service, not for the attack).
	let gain = |run: &Run, who: &str| {
		let fees: u128 = run
			.publication_fees
			.iter()
			.filter(|(by, _)| *by == dev_account(who))
			.map(|(_, fee)| *fee)
			.sum();
		run.gains
			.iter()
			.find(|(w, _)| w == who)
			.map(|(_, g)| *g)
			.unwrap() - fees as i128
	};
	let output = |who: &str| {
		attacked
			.outputs
			.iter()
			.find(|(w, _)| w == who)
			.map(|(_, t)| t.clone())
			.unwrap()
	};
	assert!(output("Eve").contains("excluded true"), "{}", output("Eve"));
	assert!(gain(&attacked, "Eve") < 0, "the inflating copier lost");
	assert!(
		gain(&attacked, "Ferdie") < 0,
		"the crafted blob's sender lost"
	);
	// The free rider's noise is left out by every honest trainer's screen: never included,
	// never paid, its fees lost.
	assert!(gain(&attacked, FREE_RIDER) < 0, "the free rider lost");
	// The poisoners' updates are screened out too (unaligned, oversized): never paid.
	assert!(gain(&attacked, SIGN_FLIPPER) < 0, "the sign flipper lost");
	assert!(gain(&attacked, BOOSTER) < 0, "the booster lost");
	for (who, log) in attacked
		.logs
		.iter()
		.filter(|(w, _)| HONEST.contains(&w.as_str()))
	{
		assert!(
			log.lines()
				.any(|l| l.contains("left out by the screen") && l.contains("Unaligned")),
			"{who} screened out nothing"
		);
	}
	for who in HONEST {
		assert!(gain(&attacked, who) > 0, "{who} was paid");
		assert!(
			output(who).contains("selected true, excluded false"),
			"{who}: {}",
			output(who)
		);
	}
	if attacked.withheld.contains(&dev_account(WITHHOLDER)) {
		// Withholding forfeits what it had accrued and a stake share, and puts the
		// withholder out of the rest of the task: it ends with less than it started.
		assert!(
			gain(&attacked, WITHHOLDER) < 0,
			"the withholder gained {}",
			gain(&attacked, WITHHOLDER)
		);
		assert!(output(WITHHOLDER).contains("excluded true"));
	} else {
		println!("the withholder was never the aggregator of an agreed round: nothing withheld");
	}
	let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
	let (with, without) = (mean(&attacked.accuracy), mean(&reference.accuracy));
	println!("honest trainers' final accuracy: {with:.4} with adversaries, {without:.4} without");
	assert!(
		(with - without).abs() <= 0.01,
		"accuracy {with:.4} with adversaries vs {without:.4} without"
	);
}
