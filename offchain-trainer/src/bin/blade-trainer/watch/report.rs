//! The Markdown report written when the task settles, with its SVG figures.

use std::{collections::BTreeMap, fmt::Write as _, path::Path};

use anyhow::Context;
use blade_trainer::chain::{self, AccountId};
use codec::Decode;
use serde_json::json;

use super::Watcher;

/// `sc-consensus-pow`'s digest id.
const POW_ENGINE: sp_runtime::ConsensusEngineId = *b"pow_";

/// The miner of a block: the account in its `pow_` pre-runtime digest.
pub(super) fn author(header: &blade_fl_runtime::Header) -> Option<AccountId> {
	header.digest.logs.iter().find_map(|item| match item {
		sp_runtime::DigestItem::PreRuntime(POW_ENGINE, data) => {
			AccountId::decode(&mut &data[..]).ok()
		}
		_ => None,
	})
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

impl Watcher {
	/// The round time split table: where the median trainer's time went per round.
	fn write_split(&self, md: &mut String) -> anyhow::Result<()> {
		let rows: Vec<(u32, (f64, f64, f64), usize)> = self
			.rounds
			.keys()
			.filter_map(|r| {
				let (split, n) = super::split_from_logs(self.args.logs.as_deref(), *r)?;
				Some((*r, split, n))
			})
			.collect();
		if rows.is_empty() {
			return Ok(());
		}
		writeln!(
			md,
			"\n### Round time split (the trainer with the median wall time)\n"
		)?;
		writeln!(md, "| round | training (s) | client work (s) | waiting on the chain (s) | chain's share | trainers |")?;
		writeln!(md, "|---|---|---|---|---|---|")?;
		for (round, (training, client, waiting), n) in rows {
			let total = training + client + waiting;
			writeln!(
				md,
				"| {} | {training:.1} | {client:.1} | {waiting:.1} | {:.0} % | {n} |",
				round + 1,
				if total > 0.0 {
					100.0 * waiting / total
				} else {
					0.0
				}
			)?;
		}
		writeln!(
			md,
			"\nOf the trainers that trained in the round, the one whose wall time is the median \
			 (the machine's cores are shared by every trainer): \
			 waiting is time spent waiting for blocks (phases, inclusions, confirmations), \
			 training is local SGD, client work is the rest (verifying the others' updates, \
			 aggregating, encoding, signing, RPC). Phases are fixed in blocks when the task is \
			 published and end early once everyone has acted."
		)?;
		Ok(())
	}

	/// Accuracy after `round` (0-based) of the run without the chain, once known.
	pub(super) fn baseline_at(&self, round: u32) -> Option<f64> {
		self.baseline
			.as_ref()?
			.get(round as usize)
			.copied()
			.flatten()
	}

	/// Read `--baseline` if it has been written (by `blade-trainer baseline`).
	pub(super) fn load_baseline(&mut self) {
		if self.baseline.is_some() {
			return;
		}
		let Some(path) = &self.args.baseline else {
			return;
		};
		let Ok(text) = std::fs::read_to_string(path) else {
			return;
		};
		let record: serde_json::Value = serde_json::from_str(&text).unwrap_or(json!({}));
		if let Some(error) = record["error"].as_str() {
			tracing::warn!(error, "the run without the chain failed");
			self.baseline = Some(Vec::new());
		} else if let Some(values) = record["accuracy"].as_array() {
			// One entry per round; a NaN accuracy was written as null and stays a gap.
			self.baseline = Some(values.iter().map(|v| v.as_f64()).collect());
		}
	}

	/// Test accuracy of the agreed model and the share of trainers proven lazy, per round
	/// so far; `None` before the first accuracy is known.
	pub(super) fn accuracy_chart(&self, spec: &chain::TaskSpec) -> Option<String> {
		let accuracy: Vec<(f64, f64)> = self
			.rounds
			.iter()
			.filter_map(|(r, row)| row.accuracy.map(|a| (f64::from(r + 1), a * 100.0)))
			.collect();
		if accuracy.is_empty() {
			return None;
		}
		let wanted = f64::from(spec.trainers_wanted.max(1));
		let lazy: Vec<(f64, f64)> = self
			.rounds
			.iter()
			.map(|(r, row)| (f64::from(r + 1), 100.0 * f64::from(row.lazy) / wanted))
			.collect();
		let alone: Vec<(f64, f64)> = self
			.baseline
			.iter()
			.flatten()
			.enumerate()
			.filter_map(|(r, a)| Some((r as f64 + 1.0, (*a)? * 100.0)))
			.collect();
		Some(blade_trainer::plot::line_chart(
			&format!(
				"Task {}: test accuracy of the agreed model, lazy trainers proven",
				self.args.task
			),
			"round",
			"percent",
			(1.0, f64::from(spec.rounds.max(2))),
			(0.0, 100.0),
			&[
				blade_trainer::plot::Series {
					label: "test accuracy (%)".into(),
					colour: "#1f77b4",
					points: accuracy,
					dashed: false,
				},
				blade_trainer::plot::Series {
					label: "lazy proven (% of trainers)".into(),
					colour: "#d62728",
					points: lazy,
					dashed: false,
				},
				blade_trainer::plot::Series {
					label: "test accuracy without the chain (%)".into(),
					colour: "#7f7f7f",
					points: alone,
					dashed: true,
				},
			],
		))
	}

	pub(super) fn header_at(
		&self,
		number: u32,
	) -> anyhow::Result<Option<blade_fl_runtime::Header>> {
		let Some(hash) = self.client.block_hash(number)? else {
			return Ok(None);
		};
		let value = self
			.client
			.rpc()
			.call("chain_getHeader", json!([format!("{hash:?}")]))?;
		Ok(serde_json::from_value(value).ok())
	}

	pub(super) fn timestamp_at(&self, number: u32) -> anyhow::Result<Option<u64>> {
		Ok(self.client.timestamp_at(number)?)
	}

	/// Mean block time (seconds) over blocks `from..to`.
	fn mean_block_time(&self, from: u32, to: u32) -> anyhow::Result<Option<f64>> {
		Ok(self.client.mean_block_time(from, to)?)
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

	pub(super) fn report(&self, path: &Path) -> anyhow::Result<String> {
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
			 PN watermark at {} dB, privacy floor: {}, reward {:.0} BLADE, stake {:.0} BLADE.\n",
			spec.model_id,
			spec.dataset_id,
			spec.param_count,
			spec.trainers_wanted,
			spec.rounds,
			spec.rule,
			f64::from(spec.pn_snr_centi_db) / 100.0,
			blade_trainer::privacy::task::floor_text(spec.privacy),
			spec.reward as f64 / chain::UNIT as f64,
			spec.min_stake as f64 / chain::UNIT as f64,
		)?;

		writeln!(md, "## Rounds\n")?;
		writeln!(md, "| round | blocks | seconds | submitted | revealed | lazy proven (total) | votes for the aggregate | test accuracy | without the chain |")?;
		writeln!(md, "|---|---|---|---|---|---|---|---|---|")?;
		for (index, r) in &self.rounds {
			writeln!(
				md,
				"| {} | {}-{} | {:.0} | {} | {} | {} | {} | {} | {} |",
				index + 1,
				r.first_block,
				r.last_block,
				r.seconds,
				r.submitted,
				r.revealed,
				r.lazy,
				r.votes.map_or("-".into(), |(v, e)| format!("{v} of {e}")),
				r.accuracy
					.map_or("-".into(), |a| format!("{:.2} %", a * 100.0)),
				self.baseline_at(*index)
					.map_or("-".into(), |a| format!("{:.2} %", a * 100.0)),
			)?;
		}
		let last = self.rounds.keys().next_back().copied();
		let on_chain = last.and_then(|r| self.rounds.get(&r)?.accuracy);
		match (on_chain, last.and_then(|r| self.baseline_at(r))) {
			(Some(chain), Some(alone)) => writeln!(
				md,
				"\nFinal accuracy {:.2} % on chain, {:.2} % for the same trainers and seeds without \
				 the chain (`blade-trainer baseline`): {:+.2} points.",
				chain * 100.0,
				alone * 100.0,
				(chain - alone) * 100.0
			)?,
			_ if self.args.baseline.is_some() => {
				writeln!(md, "\nThe run without the chain did not finish in time.")?
			}
			_ => {}
		}
		self.write_split(&mut md)?;
		writeln!(
			md,
			"\nForks seen by the watcher (best head replaced by a sibling): {}.\n",
			self.forks
		)?;
		if let Some(svg) = self.accuracy_chart(spec) {
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
				self.reputation.get(who).copied().unwrap_or_default(),
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
				"{} trainers trained with differential privacy (DP-SGD unless configured \
				 otherwise); their accounted epsilon over the whole task (Renyi-DP accountant \
				 of the sampled Gaussian mechanism, at the delta printed above) ranges from \
				 {lo:.2} to {hi:.2}: each calibrated its noise before bidding so that all rounds \
				 together stay within its budget (docs/privacy.md).",
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
					"\nThe {dp_count} private trainers had their updates in {dp_included} \
					 round-aggregates of {} possible (the screen keeps updates that point where \
					 the others point; a private update that does is used and paid like any other).",
					dp_count * self.rounds.len(),
				)?;
			}
		}

		// Miners: authors of the blocks the task spanned.
		let mut authors: BTreeMap<String, u32> = BTreeMap::new();
		for number in first..=best {
			let Some(header) = self.header_at(number)? else {
				continue;
			};
			if let Some(who) = author(&header) {
				*authors.entry(who.to_string()).or_default() += 1;
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

#[cfg(test)]
mod tests {
	use super::*;
	use crate::watch::median;

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
