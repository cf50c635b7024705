//! `watch`: follow one task live (a table row per round) and write a Markdown report when
//! it settles: rounds, lazy-client detection, trainers' pay, reputation and privacy,
//! blocks per miner, and the effect of governance changes made meanwhile.

use std::{
	collections::{BTreeMap, HashMap},
	fmt::Write as _,
	path::{Path, PathBuf},
	time::{Duration, Instant},
};

use anyhow::Context;
use blade_trainer::chain::{self, AccountId, Client, TaskView};
use clap::Args;
use codec::Decode;
use serde_json::json;

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

/// Test accuracy of the global model after `round` (1-based) as the trainers evaluated it:
/// the median over every `trainer-*.log` line `global model round=R accuracy=X`.
fn accuracy_from_logs(logs: Option<&Path>, round: u32) -> Option<f64> {
	let dir = logs?;
	let needle = format!("global model round={round} accuracy=");
	let mut values = Vec::new();
	for entry in std::fs::read_dir(dir).ok()?.flatten() {
		let name = entry.file_name().to_string_lossy().into_owned();
		if !(name.starts_with("trainer-") && name.ends_with(".log")) {
			continue;
		}
		let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
		if let Some(value) = text.lines().rev().find_map(|l| {
			let at = l.find(&needle)? + needle.len();
			l[at..].split_whitespace().next()?.parse::<f64>().ok()
		}) {
			values.push(value);
		}
	}
	median(values)
}

/// What a trainer's `run` printed at the end (`trainer-N.out`).
#[derive(Clone, Debug, Default)]
struct Printed {
	balance_change: Option<f64>,
	accuracy: Option<f64>,
	privacy: Option<(f64, f64)>,
	excluded: bool,
}

fn printed(text: &str) -> Printed {
	let mut out = Printed::default();
	for line in text.lines() {
		let line = line.trim();
		if let Some(rest) = line.strip_prefix("free balance ") {
			out.balance_change = rest
				.rsplit_once('(')
				.and_then(|(_, d)| d.trim_end_matches(')').trim().parse().ok());
		} else if line.starts_with("global model after round") {
			out.accuracy = line.rsplit(' ').next().and_then(|a| a.parse().ok());
		} else if let Some(rest) = line.strip_prefix("privacy spent: epsilon ") {
			let mut words = rest.split_whitespace();
			let epsilon = words.next().and_then(|e| e.parse().ok());
			let delta = words.nth(2).and_then(|d| d.parse().ok());
			out.privacy = epsilon.zip(delta);
		} else if line.starts_with("task ") && line.contains("excluded true") {
			out.excluded = true;
		}
	}
	out
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
		Ok(Watcher {
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
		self.started = Some((number, Instant::now()));
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
					self.last = Some(view);
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
			self.client.wait_new_head(Duration::from_secs(30))?;
		}
		if let Some(path) = self.args.report.clone() {
			self.wait_for_outputs();
			let text = self.report(&path)?;
			std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
			println!("report written to {}", path.display());
		}
		Ok(())
	}

	fn header_at(&self, number: u32) -> anyhow::Result<Option<blade_fl_runtime::Header>> {
		let Some(hash) = self.client.block_hash(number)? else {
			return Ok(None);
		};
		let value = self
			.client
			.rpc()
			.call("chain_getHeader", json!([format!("{hash:?}")]))?;
		Ok(serde_json::from_value(value).ok())
	}

	fn timestamp_at(&self, number: u32) -> anyhow::Result<Option<u64>> {
		let Some(hash) = self.client.block_hash(number)? else {
			return Ok(None);
		};
		let key = [
			sp_crypto_hashing::twox_128(b"Timestamp"),
			sp_crypto_hashing::twox_128(b"Now"),
		]
		.concat();
		Ok(self
			.client
			.storage(&key, Some(hash))?
			.and_then(|raw| u64::decode(&mut &raw[..]).ok()))
	}

	/// Mean block time (seconds) over blocks `from..to`.
	fn mean_block_time(&self, from: u32, to: u32) -> anyhow::Result<Option<f64>> {
		if to <= from + 1 {
			return Ok(None);
		}
		let (Some(a), Some(b)) = (self.timestamp_at(from.max(1))?, self.timestamp_at(to)?) else {
			return Ok(None);
		};
		Ok(Some(
			(b.saturating_sub(a)) as f64 / 1000.0 / f64::from(to - from.max(1)),
		))
	}

	/// Write `name` beside the report and return the Markdown line that shows it.
	fn figure(&self, report: &Path, name: &str, svg: String, alt: &str) -> anyhow::Result<String> {
		let stem = report
			.file_stem()
			.map_or("report".into(), |s| s.to_string_lossy().into_owned());
		let file = format!("{stem}-{name}.svg");
		let path = report.with_file_name(&file);
		std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?;
		Ok(format!("![{alt}]({file})\n"))
	}

	fn report(&self, path: &Path) -> anyhow::Result<String> {
		let view = self.last.clone().context("the task was never seen")?;
		let best = self.client.best_number()?;
		let first = self.published_at.unwrap_or(1);
		let mut md = String::new();
		let task = self.args.task;
		let spec = &view.spec;
		writeln!(md, "# BLADE-FL task {task}: report\n")?;
		writeln!(
			md,
			"Model {} on data set {} ({} parameters), {} trainers wanted, {} rounds, rule {:?}, \
			 PN watermark at {} dB, local-DP epsilon cap {} per round, reward {:.0} BLADE, stake {:.0} BLADE.\n",
			spec.model_id,
			spec.dataset_id,
			spec.param_count,
			spec.trainers_wanted,
			spec.rounds,
			spec.rule,
			f64::from(spec.pn_snr_centi_db) / 100.0,
			f64::from(spec.max_epsilon_milli) / 1000.0,
			spec.reward as f64 / chain::UNIT as f64,
			spec.min_stake as f64 / chain::UNIT as f64,
		)?;

		writeln!(md, "## Rounds\n")?;
		writeln!(md, "| round | blocks | seconds | submitted | revealed | lazy proven (total) | votes for the aggregate | test accuracy |")?;
		writeln!(md, "|---|---|---|---|---|---|---|---|")?;
		for (index, r) in &self.rounds {
			writeln!(
				md,
				"| {} | {}-{} | {:.0} | {} | {} | {} | {} | {} |",
				index + 1,
				r.first_block,
				r.last_block,
				r.seconds,
				r.submitted,
				r.revealed,
				r.lazy,
				r.votes.map_or("-".into(), |(v, e)| format!("{v} of {e}")),
				r.accuracy
					.map_or("-".into(), |a| format!("{:.2} %", a * 100.0))
			)?;
		}
		writeln!(
			md,
			"\nForks seen by the watcher (best head replaced by a sibling): {}.\n",
			self.forks
		)?;
		let accuracy: Vec<(f64, f64)> = self
			.rounds
			.iter()
			.filter_map(|(r, row)| row.accuracy.map(|a| (f64::from(r + 1), a * 100.0)))
			.collect();
		if !accuracy.is_empty() {
			let wanted = f64::from(spec.trainers_wanted.max(1));
			let lazy: Vec<(f64, f64)> = self
				.rounds
				.iter()
				.map(|(r, row)| (f64::from(r + 1), 100.0 * f64::from(row.lazy) / wanted))
				.collect();
			let svg = blade_trainer::plot::line_chart(
				&format!("Task {task}: test accuracy of the agreed model, lazy trainers proven"),
				"round",
				"percent",
				(1.0, f64::from(spec.rounds.max(2))),
				(0.0, 100.0),
				&[
					blade_trainer::plot::Series {
						label: "test accuracy (%)".into(),
						colour: "#1f77b4",
						points: accuracy,
					},
					blade_trainer::plot::Series {
						label: "lazy proven (% of trainers)".into(),
						colour: "#d62728",
						points: lazy,
					},
				],
			);
			md.push_str(&self.figure(path, "rounds", svg, "accuracy and lazy proofs per round")?);
		}

		// Detection against the roles given.
		let lazy_accounts: Vec<&AccountId> = self
			.roles
			.iter()
			.filter(|(_, r)| r.as_str() == "lazy")
			.map(|(a, _)| a)
			.collect();
		let proven: Vec<&AccountId> = view
			.trainers
			.iter()
			.enumerate()
			.filter(|(i, _)| view.lazy & (1u64 << i) != 0)
			.map(|(_, a)| a)
			.collect();
		if !self.roles.is_empty() {
			let selected_lazy = lazy_accounts
				.iter()
				.filter(|a| view.trainers.contains(a))
				.count();
			let caught = lazy_accounts.iter().filter(|a| proven.contains(a)).count();
			let wrongly = proven
				.iter()
				.filter(|a| self.roles.get(**a).is_some_and(|r| r != "lazy"))
				.count();
			writeln!(md, "## Lazy-client detection\n")?;
			writeln!(
				md,
				"{caught} of {selected_lazy} selected lazy trainers proven and slashed \
				 (detection rate {}); {wrongly} other trainers proven lazy (false positives).\n",
				if selected_lazy == 0 {
					"-".to_string()
				} else {
					format!("{:.3}", caught as f64 / selected_lazy as f64)
				}
			)?;
		}

		writeln!(md, "## Trainers\n")?;
		writeln!(md, "| # | account | role | proven lazy | excluded | rounds in the aggregate | balance change (BLADE) | reputation | final accuracy | privacy (epsilon, delta) |")?;
		writeln!(md, "|---|---|---|---|---|---|---|---|---|---|")?;
		let mut bars = Vec::new();
		for (i, who) in view.trainers.iter().enumerate() {
			let out = self
				.files
				.get(who)
				.zip(self.args.logs.as_ref())
				.and_then(|(stem, dir)| {
					std::fs::read_to_string(dir.join(format!("{stem}.out"))).ok()
				})
				.map(|t| printed(&t))
				.unwrap_or_default();
			let short = who.to_string();
			let role = self.roles.get(who).map_or("-", |r| r.as_str());
			if let Some(change) = out.balance_change {
				bars.push(blade_trainer::plot::Bar {
					label: format!("{i} {role}"),
					value: change,
					colour: match role {
						"lazy" => "#d62728",
						"sign-flip" => "#ff7f0e",
						"honest-dp" => "#9467bd",
						_ => "#2ca02c",
					},
				});
			}
			writeln!(
				md,
				"| {i} | {}…{} | {} | {} | {} | {} of {} | {} | {:.2} % | {} | {} |",
				&short[..6],
				&short[short.len() - 4..],
				role,
				if view.lazy & (1u64 << i) != 0 {
					"yes"
				} else {
					"-"
				},
				if out.excluded { "yes" } else { "-" },
				self.rounds
					.values()
					.filter(|r| r.included & (1u64 << i) != 0)
					.count(),
				self.rounds.len(),
				out.balance_change
					.map_or("-".into(), |d| format!("{d:+.3}")),
				self.client.reputation(who, None)?.deconstruct() as f64 / 1e7,
				out.accuracy
					.map_or("-".into(), |a| format!("{:.2} %", a * 100.0)),
				out.privacy
					.map_or("none (no noise)".into(), |(e, d)| format!("{e:.2}, {d:e}"))
			)?;
		}

		if !bars.is_empty() {
			let svg = blade_trainer::plot::bar_chart(
				&format!("Task {task}: change of each trainer's free balance"),
				"BLADE",
				&bars,
				&[
					("#2ca02c", "honest"),
					("#9467bd", "honest, local DP"),
					("#ff7f0e", "sign flip"),
					("#d62728", "lazy"),
				],
			);
			md.push('\n');
			md.push_str(&self.figure(path, "trainers", svg, "balance change per trainer")?);
		}

		// Privacy, stated plainly.
		let spent: Vec<f64> = view
			.trainers
			.iter()
			.filter_map(|who| {
				let stem = self.files.get(who)?;
				let dir = self.args.logs.as_ref()?;
				let text = std::fs::read_to_string(dir.join(format!("{stem}.out"))).ok()?;
				printed(&text).privacy.map(|(e, _)| e)
			})
			.collect();
		writeln!(md, "\n## Privacy\n")?;
		if spent.is_empty() {
			writeln!(md, "No trainer added differential-privacy noise.")?;
		} else {
			let lo = spent.iter().cloned().fold(f64::INFINITY, f64::min);
			let hi = spent.iter().cloned().fold(0.0, f64::max);
			writeln!(
				md,
				"{} trainers added Gaussian local-DP noise; their accounted epsilon over the \
				 whole task (Renyi-DP accountant, at the delta printed above) ranges from \
				 {lo:.2} to {hi:.2}.",
				spent.len()
			)?;
			let dp_included: usize = view
				.trainers
				.iter()
				.enumerate()
				.filter(|(_, who)| self.roles.get(*who).is_some_and(|r| r == "honest-dp"))
				.map(|(i, _)| {
					self.rounds
						.values()
						.filter(|r| r.included & (1u64 << i) != 0)
						.count()
				})
				.sum();
			let dp_count = self
				.roles
				.values()
				.filter(|r| r.as_str() == "honest-dp")
				.count();
			if dp_count > 0 {
				writeln!(
					md,
					"\nThe {dp_count} trainers with local DP had their updates in {dp_included} \
					 round-aggregates of {} possible. Gaussian noise at this epsilon on a \
					 {}-parameter update is far larger than the update itself: the screen (which \
					 keeps updates aligned with the others) leaves such updates out, so private \
					 trainers are neither used nor paid. Local DP per update cannot learn at a \
					 protective epsilon; per-example DP-SGD with a Renyi accountant is the fix \
					 under way.",
					dp_count * self.rounds.len(),
					spec.param_count
				)?;
			}
			if hi > 10.0 {
				writeln!(
					md,
					"\n**This is not meaningful privacy.** Noise is added once per update to a \
					 {}-parameter model (local DP on the whole update); at an epsilon that \
					 protects (say 1-8 over the task) the noise drowns the update and the model \
					 does not learn. Per-example DP-SGD with a proper accountant is the fix \
					 under way; until then read these trainers as \"noised\", not \"private\".",
					spec.param_count
				)?;
			}
		}

		// Miners: authors of the blocks the task spanned.
		let mut authors: BTreeMap<String, u32> = BTreeMap::new();
		for number in first..=best {
			let Some(header) = self.header_at(number)? else {
				continue;
			};
			for item in &header.digest.logs {
				if let sp_runtime::DigestItem::PreRuntime(id, data) = item {
					if id == b"pow_" {
						if let Ok(who) = AccountId::decode(&mut &data[..]) {
							*authors.entry(who.to_string()).or_default() += 1;
						}
					}
				}
			}
		}
		writeln!(md, "\n## Miners (blocks {first}-{best})\n")?;
		writeln!(md, "| miner | blocks mined |")?;
		writeln!(md, "|---|---|")?;
		for (who, blocks) in &authors {
			writeln!(md, "| {who} | {blocks} |")?;
		}

		if let Some(path) = &self.args.governance {
			let text = std::fs::read_to_string(path).unwrap_or_default();
			let record: serde_json::Value = serde_json::from_str(&text).unwrap_or(json!({}));
			writeln!(md, "\n## Governance during the task\n")?;
			if let Some(change) = record.get("target_block_time") {
				let block = change["block"].as_u64().unwrap_or(0) as u32;
				let before = self.mean_block_time(block.saturating_sub(30).max(first), block)?;
				let after = self.mean_block_time(block, (block + 30).min(best))?;
				writeln!(
					md,
					"- Target block time set to {} ms by a council motion at block {block}: mean \
					 block time {} over the 30 blocks before, {} over the (up to) 30 after \
					 (the retarget moves difficulty gradually).",
					change["ms"],
					before.map_or("-".into(), |t| format!("{t:.2} s")),
					after.map_or("-".into(), |t| format!("{t:.2} s")),
				)?;
			}
			if let Some(change) = record.get("lazy_slash") {
				writeln!(
					md,
					"- Lazy slash set to {} % of the stake by sudo at block {}; lazy proofs \
					 after that block slash at the new rate.",
					change["percent"], change["block"]
				)?;
			}
			if record.as_object().is_none_or(|o| o.is_empty()) {
				writeln!(md, "- (no change recorded)")?;
			}
		}
		Ok(md)
	}
}

pub fn watch(args: WatchArgs) -> anyhow::Result<()> {
	Watcher::new(args)?.run()
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn run_output_is_read_back() {
		let text =
			"task 0: selected true, excluded false, updates submitted 2, lazy reports upheld 1\n  \
		            global model after round 1: test accuracy 0.6100\n  \
		            global model after round 2: test accuracy 0.7250\n  \
		            privacy spent: epsilon 12.500 at delta 1e-5 (Renyi-DP accountant)\n  \
		            free balance 100.0000 -> 104.8360 BLADE (+4.8360)\n";
		let p = printed(text);
		assert_eq!(p.accuracy, Some(0.725));
		assert_eq!(p.balance_change, Some(4.836));
		assert_eq!(p.privacy, Some((12.5, 1e-5)));
		assert!(!p.excluded);
		assert!(printed("task 0: selected true, excluded true, updates").excluded);
		assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
		assert_eq!(median(vec![]), None);
	}
}
