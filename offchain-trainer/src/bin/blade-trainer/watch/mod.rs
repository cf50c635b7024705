//! `watch`: follow one task live (a table row per round) and write a Markdown report when
//! it settles: rounds, lazy-client detection, trainers' pay, reputation and privacy,
//! blocks per miner, and the effect of governance changes made meanwhile. With `--web` a
//! live page shows the same while it happens (`web`); the report is `report`.

mod report;
mod web;

use std::{
	collections::{BTreeMap, HashMap},
	net::SocketAddr,
	path::{Path, PathBuf},
	time::{Duration, Instant},
};

use anyhow::Context;
use blade_trainer::chain::{self, AccountId, Client, TaskView};
use clap::Args;

use crate::node::{account_of, NodeArgs};

/// `watch` arguments.
#[derive(Args, Debug)]
pub struct WatchArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	/// The task.
	#[arg(long)]
	pub task: u64,
	/// Write a Markdown report here when the task settles.
	#[arg(long)]
	pub report: Option<PathBuf>,
	/// Trainers' roles, one `SECRET_URI_OR_SS58 ROLE` per line (shown in the report; the
	/// role `lazy` is what detection is measured against).
	#[arg(long)]
	pub roles: Option<PathBuf>,
	/// Directory of the trainers' `trainer-N.log` / `trainer-N.out` files: test accuracy,
	/// privacy spent and balance changes are read from them.
	#[arg(long)]
	pub logs: Option<PathBuf>,
	/// JSON written by `govern --out` (changes shown with their effect).
	#[arg(long)]
	pub governance: Option<PathBuf>,
	/// Serve a live page of the task on this address (e.g. `127.0.0.1:9990`): rounds,
	/// accuracy curve, trainers with stakes and reputation, lazy proofs, latest blocks and
	/// their miners. It reads only from the watcher, which reads the node's RPC.
	#[arg(long, value_name = "ADDR")]
	pub web: Option<SocketAddr>,
	/// After the task settles (and the report is written), keep following the chain and
	/// serving the page until interrupted.
	#[arg(long, requires = "web")]
	pub linger: bool,
	/// JSON written by `blade-trainer baseline --out` (the same task without the chain):
	/// its accuracy is shown beside the chain's; the report waits up to 5 minutes for it.
	#[arg(long)]
	pub baseline: Option<PathBuf>,
}

/// One finished round as the watcher saw it.
#[derive(Clone, Debug, Default)]
struct Round {
	first_block: u32,
	last_block: u32,
	seconds: f64,
	submitted: u32,
	revealed: u32,
	lazy: u32,
	votes: Option<(u32, u32)>,
	/// Trainers whose updates the agreed aggregate included.
	included: u64,
	accuracy: Option<f64>,
}

fn count(mask: u64) -> u32 {
	mask.count_ones()
}

fn median(mut values: Vec<f64>) -> Option<f64> {
	if values.is_empty() {
		return None;
	}
	values.sort_by(|a, b| a.total_cmp(b));
	Some(values[values.len() / 2])
}

/// The text of every trainer's log (`trainer-*.log`) in `dir`.
fn trainer_logs(dir: &Path) -> Vec<String> {
	let Ok(entries) = std::fs::read_dir(dir) else {
		return Vec::new();
	};
	entries
		.flatten()
		.filter(|e| {
			let name = e.file_name().to_string_lossy().into_owned();
			name.starts_with("trainer-") && name.ends_with(".log")
		})
		.map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
		.collect()
}

/// Test accuracy of the global model after `round` (1-based) as the trainers evaluated it:
/// the median over every `trainer-*.log` line `global model round=R accuracy=X`.
fn accuracy_from_logs(logs: Option<&Path>, round: u32) -> Option<f64> {
	let needle = format!("global model round={round} accuracy=");
	let values = trainer_logs(logs?)
		.iter()
		.filter_map(|text| {
			text.lines().rev().find_map(|l| {
				let at = l.find(&needle)? + needle.len();
				l[at..].split_whitespace().next()?.parse::<f64>().ok()
			})
		})
		.collect();
	median(values)
}

/// The `round time split` of `round` (0-based) of the median trainer: of the trainers
/// that trained that round (copiers do not), the one whose wall time (training + client
/// work + waiting) is the median. Returns (training, client work, waiting) in seconds and
/// how many trainers logged the round.
fn split_from_logs(logs: Option<&Path>, round: u32) -> Option<((f64, f64, f64), usize)> {
	let needle = format!("round time split round={round} ");
	let mut splits = Vec::new();
	for text in trainer_logs(logs?) {
		// A restarted trainer logs a round twice; the last line counts.
		let Some(line) = text.lines().rev().find(|l| l.contains(&needle)) else {
			continue;
		};
		let field = |name: &str| -> Option<f64> {
			let key = format!(" {name}=");
			let at = line.find(&key)? + key.len();
			line[at..].split_whitespace().next()?.parse().ok()
		};
		if let (Some(t), Some(c), Some(w)) = (field("training"), field("client"), field("waiting"))
		{
			splits.push((t, c, w));
		}
	}
	let logged = splits.len();
	let mut trained: Vec<(f64, f64, f64)> = splits.iter().copied().filter(|s| s.0 > 0.0).collect();
	if trained.is_empty() {
		trained = splits;
	}
	trained.sort_by(|a, b| (a.0 + a.1 + a.2).total_cmp(&(b.0 + b.1 + b.2)));
	let median = *trained.get(trained.len() / 2)?;
	Some((median, logged))
}

struct Watcher {
	args: WatchArgs,
	client: Client,
	roles: HashMap<AccountId, String>,
	/// Account -> `trainer-N` file stem, from the roles file order.
	files: HashMap<AccountId, String>,
	rounds: BTreeMap<u32, Round>,
	last: Option<TaskView>,
	started: Option<(u32, Instant)>,
	forks: u32,
	published_at: Option<u32>,
	/// Per round: most updates submitted and revealed seen, and the votes and included
	/// set of the decided aggregate (read while the round is in its aggregate phase).
	seen: BTreeMap<u32, Seen>,
	/// The live page, with `--web`.
	web: Option<web::Web>,
	/// Recent blocks for the page: hash, miner, timestamp (ms).
	blocks: BTreeMap<u32, (sp_core::H256, Option<AccountId>, Option<u64>)>,
	/// Trainers' reputation (percent), refreshed when a round closes.
	reputation: HashMap<AccountId, f64>,
	/// Where the report went, once written.
	report_written: Option<PathBuf>,
	/// Accuracy per round without the chain (`--baseline`), once written (empty if the
	/// run failed).
	baseline: Option<Vec<Option<f64>>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Seen {
	submitted: u32,
	revealed: u32,
	votes: Option<(u32, u32)>,
	included: u64,
}

impl Watcher {
	fn new(args: WatchArgs) -> anyhow::Result<Watcher> {
		let client = args.node.reader()?;
		let mut roles = HashMap::new();
		let mut files = HashMap::new();
		if let Some(path) = &args.roles {
			let text = std::fs::read_to_string(path)
				.with_context(|| format!("reading {}", path.display()))?;
			for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
				let (who, role) = line
					.split_once(' ')
					.with_context(|| format!("roles line {line:?}: want `ACCOUNT ROLE`"))?;
				let account = account_of(who)?;
				roles.insert(account.clone(), role.trim().to_string());
				files.insert(account, format!("trainer-{i}"));
			}
		}
		let web = match args.web {
			Some(addr) => {
				let (web, bound) = web::Web::start(addr)?;
				println!("live page: http://{bound}/");
				Some(web)
			}
			None => None,
		};
		Ok(Watcher {
			web,
			blocks: BTreeMap::new(),
			reputation: HashMap::new(),
			report_written: None,
			baseline: None,
			args,
			client,
			roles,
			files,
			rounds: BTreeMap::new(),
			last: None,
			started: None,
			forks: 0,
			published_at: None,
			seen: BTreeMap::new(),
		})
	}

	fn print_header(&self) {
		println!(
			"{:>5}  {:>13}  {:>6}  {:>9}  {:>8}  {:>11}  {:>9}  {:>7}  {:>5}",
			"round",
			"blocks",
			"secs",
			"submitted",
			"revealed",
			"lazy proven",
			"agreement",
			"acc %",
			"forks"
		);
	}

	fn print_row(&self, index: u32, round: &Round) {
		println!(
			"{:>5}  {:>6}-{:<6}  {:>6.0}  {:>9}  {:>8}  {:>11}  {:>9}  {:>7}  {:>5}",
			index + 1,
			round.first_block,
			round.last_block,
			round.seconds,
			round.submitted,
			round.revealed,
			round.lazy,
			round.votes.map_or("-".into(), |(v, e)| format!("{v}/{e}")),
			round
				.accuracy
				.map_or("-".into(), |a| format!("{:.2}", a * 100.0)),
			self.forks
		);
	}

	/// Close the round `view` was in (the task moved on or settled).
	fn close_round(&mut self, view: &TaskView, number: u32) -> anyhow::Result<()> {
		let (first, began) = self.started.unwrap_or((number, Instant::now()));
		let seen = self.seen.get(&view.round).copied().unwrap_or_default();
		// Trainers log the agreed model's accuracy shortly after the round ends.
		let deadline = Instant::now() + Duration::from_secs(20);
		let mut accuracy = accuracy_from_logs(self.args.logs.as_deref(), view.round + 1);
		while accuracy.is_none() && self.args.logs.is_some() && Instant::now() < deadline {
			std::thread::sleep(Duration::from_millis(500));
			accuracy = accuracy_from_logs(self.args.logs.as_deref(), view.round + 1);
		}
		let round = Round {
			first_block: first,
			last_block: number,
			seconds: began.elapsed().as_secs_f64(),
			submitted: seen.submitted.max(count(view.submitted)),
			revealed: seen.revealed.max(count(view.revealed)),
			lazy: count(view.lazy),
			votes: seen.votes,
			included: seen.included,
			accuracy,
		};
		self.print_row(view.round, &round);
		self.rounds.insert(view.round, round);
		if let Err(e) = self.refresh_reputation() {
			tracing::warn!(error = %e, "reputation not refreshed");
		}
		self.started = Some((number, Instant::now()));
		Ok(())
	}

	/// Read every selected trainer's reputation again.
	fn refresh_reputation(&mut self) -> anyhow::Result<()> {
		let Some(view) = &self.last else {
			return Ok(());
		};
		for who in &view.trainers {
			let value = self.client.reputation(who, None)?.deconstruct() as f64 / 1e7;
			self.reputation.insert(who.clone(), value);
		}
		Ok(())
	}

	/// Remember the round's peaks and, once it is decided, its votes and included set.
	fn observe(&mut self, view: &TaskView, head: sp_core::H256) -> anyhow::Result<()> {
		let entry = self.seen.entry(view.round).or_default();
		entry.submitted = entry.submitted.max(count(view.submitted));
		entry.revealed = entry.revealed.max(count(view.revealed));
		if let Some((hash, mask)) = view.decided {
			if entry.votes.is_none() {
				let tallies = self.client.tallies(self.args.task, Some(head))?;
				let votes = tallies.iter().find(|t| t.hash == hash).map(|t| t.votes);
				let entry = self.seen.entry(view.round).or_default();
				entry.votes = votes.map(|v| (v, count(view.eligible())));
				entry.included = mask;
			}
		}
		Ok(())
	}

	/// Wait (at most a minute) until every trainer named in the roles file has written its
	/// `trainer-N.out`: they print after the settlement is confirmed.
	fn wait_for_outputs(&self) {
		let Some(dir) = &self.args.logs else { return };
		let deadline = Instant::now() + Duration::from_secs(60);
		while Instant::now() < deadline {
			let all = self.files.values().all(|stem| {
				std::fs::read_to_string(dir.join(format!("{stem}.out")))
					.is_ok_and(|t| t.contains("free balance") || t.contains("selected false"))
			});
			if all {
				return;
			}
			std::thread::sleep(Duration::from_secs(1));
		}
	}

	/// Wait (at most 5 minutes) for the run without the chain to write its result.
	fn wait_for_baseline(&mut self) {
		let deadline = Instant::now() + Duration::from_secs(300);
		self.load_baseline();
		while self.args.baseline.is_some() && self.baseline.is_none() && Instant::now() < deadline {
			std::thread::sleep(Duration::from_secs(1));
			self.load_baseline();
		}
	}

	fn run(mut self) -> anyhow::Result<()> {
		let task = self.args.task;
		let mut last_head: Option<chain::Head> = None;
		let mut header_printed = false;
		loop {
			let best = self.client.best_head()?;
			if let Some(prev) = last_head {
				if best.hash != prev.hash && best.parent != prev.hash {
					self.forks += 1;
				}
			}
			last_head = Some(best);
			let (number, head) = self.client.confirmed_head()?;
			match self.client.task(task, Some(head))? {
				Some(view) => {
					self.published_at.get_or_insert(number);
					if !header_printed {
						println!(
							"task {task}: {} trainers wanted, {} rounds, model {} ({} parameters), {:?}",
							view.spec.trainers_wanted,
							view.spec.rounds,
							view.spec.model_id,
							view.spec.param_count,
							view.spec.rule
						);
						self.print_header();
						header_printed = true;
					}
					self.observe(&view, head)?;
					if view.phase != pallet_fl_tasks::Phase::Bidding && self.started.is_none() {
						self.started = Some((number, Instant::now()));
					}
					if let Some(prev) = self.last.clone() {
						if view.round > prev.round {
							self.close_round(&prev, number)?;
						}
					}
					let first_sight = self.last.is_none();
					self.last = Some(view);
					if first_sight {
						self.refresh_reputation()?;
					}
				}
				None if self.last.is_some() => {
					let prev = self.last.clone().context("seen")?;
					if prev.phase == pallet_fl_tasks::Phase::Bidding {
						println!(
							"task {task} ended in bidding at block {number}: {} bids, {} needed (escrow refunded)",
							prev.bids, prev.spec.trainers_min
						);
					} else {
						self.close_round(&prev, number)?;
						println!("task {task} settled at block {number}");
					}
					break;
				}
				None => {
					if self.client.task(task, None)?.is_none() && self.published_at.is_none() {
						// Not even at the best block: wait for publication a while.
						tracing::debug!(task, "task not published yet");
					}
				}
			}
			if let Err(e) = self.publish(best.number, number, false) {
				tracing::warn!(error = %e, "live page not refreshed");
			}
			self.client.wait_new_head(Duration::from_secs(30))?;
		}
		// The page shows the settlement while the report waits for the trainers' outputs.
		let best = self.client.best_number()?;
		if let Err(e) = self.publish(best, best, true) {
			tracing::warn!(error = %e, "live page not refreshed");
		}
		if let Some(path) = self.args.report.clone() {
			self.wait_for_outputs();
			self.wait_for_baseline();
			self.refresh_reputation()?;
			let text = self.report(&path)?;
			// Written whole under a temporary name first: whoever waits for the file
			// never reads half of it.
			let partial = path.with_extension("md.partial");
			std::fs::write(&partial, text)
				.and_then(|()| std::fs::rename(&partial, &path))
				.with_context(|| format!("writing {}", path.display()))?;
			println!("report written to {}", path.display());
			self.report_written = Some(path);
		}
		if self.args.linger {
			println!("the task is over; still serving the live page (Ctrl-C stops)");
			loop {
				let best = self.client.best_number()?;
				if let Err(e) = self.publish(best, best, true) {
					tracing::warn!(error = %e, "live page not refreshed");
				}
				self.client.wait_new_head(Duration::from_secs(30))?;
			}
		}
		Ok(())
	}
}

pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
	Watcher::new(args)?.run()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
	use super::{accuracy_from_logs, split_from_logs};

	#[test]
	fn accuracy_is_the_median_of_the_trainers_last_word() {
		let dir = tempfile::tempdir().unwrap();
		let line =
			|r: u32, a: f64| format!("INFO runner: global model round={r} accuracy={a} loss=1\n");
		std::fs::write(dir.path().join("trainer-0.log"), line(1, 0.5)).unwrap();
		std::fs::write(
			dir.path().join("trainer-1.log"),
			line(1, 0.1) + &line(1, 0.6),
		)
		.unwrap();
		std::fs::write(dir.path().join("trainer-2.log"), line(1, 0.7)).unwrap();
		std::fs::write(dir.path().join("node-0.log"), line(1, 0.9)).unwrap();
		assert_eq!(accuracy_from_logs(Some(dir.path()), 1), Some(0.6));
		assert_eq!(accuracy_from_logs(Some(dir.path()), 2), None);
	}

	#[test]
	fn the_round_split_is_the_median_trainers_own() {
		let dir = tempfile::tempdir().unwrap();
		let line = |t: f64, c: f64, w: f64| {
			format!(
				"2026-11-28T10:58:43Z  INFO blade_trainer::runner: round time split round=0 training={t} client={c} waiting={w}\n"
			)
		};
		// Wall times 10, 20, 40 among those that trained; the copier (no training) is left
		// out; trainer 3 restarted and logged round 0 twice (the last line counts).
		let logs = [
			line(8.0, 1.0, 1.0),
			line(5.0, 5.0, 10.0),
			line(30.0, 5.0, 5.0),
			line(0.0, 1.0, 99.0),
		];
		for (i, text) in logs.iter().enumerate() {
			std::fs::write(dir.path().join(format!("trainer-{i}.log")), text).unwrap();
		}
		std::fs::write(
			dir.path().join("trainer-4.log"),
			line(1.0, 1.0, 1.0) + &line(50.0, 50.0, 50.0),
		)
		.unwrap();
		std::fs::write(dir.path().join("node-0.log"), line(1.0, 1.0, 1.0)).unwrap();
		let (split, logged) = split_from_logs(Some(dir.path()), 0).unwrap();
		// Trained: walls 10, 20, 40, 150 -> the upper median, 40.
		assert_eq!(split, (30.0, 5.0, 5.0));
		assert_eq!(logged, 5);
		assert!(split_from_logs(Some(dir.path()), 1).is_none());
	}
}
