//! The live web page of a watched task: `GET /` is a static page that polls
//! `GET /state.json` (the watcher's view of the chain, refreshed every block) and
//! `GET /accuracy.svg` (the accuracy and lazy-proof curve so far). Everything on it is read
//! from the node's RPC by the watcher; the page itself needs no JavaScript libraries and no
//! connection to anything but the watcher.

use std::{
	net::SocketAddr,
	sync::{Arc, Mutex},
};

use anyhow::Context;
use blade_trainer::{
	chain::{self, TaskView},
	http::{self, Response},
};
use serde_json::{json, Value};

use super::{count, Watcher};

/// The page (HTML, CSS and script in one file).
const PAGE: &str = include_str!("page.html");

#[derive(Default)]
struct Shared {
	state: String,
	chart: String,
}

/// The page's server and the data it shows.
pub(super) struct Web {
	shared: Arc<Mutex<Shared>>,
}

impl Web {
	/// Serve on `addr`; returns the bound address.
	pub(super) fn start(addr: SocketAddr) -> anyhow::Result<(Web, SocketAddr)> {
		let shared = Arc::new(Mutex::new(Shared {
			state: json!({ "loading": true }).to_string(),
			chart: String::new(),
		}));
		let served = shared.clone();
		let bound = http::serve(addr, "web", move |path| {
			// A poisoned lock only means a panic elsewhere; the data is still readable.
			let shared = served.lock().unwrap_or_else(|e| e.into_inner());
			match path {
				"/" | "/index.html" => Response::ok("text/html; charset=utf-8", PAGE),
				"/state.json" => Response::ok("application/json", shared.state.clone()),
				"/accuracy.svg" => Response::ok("image/svg+xml", shared.chart.clone()),
				_ => Response::not_found("try / , /state.json or /accuracy.svg"),
			}
		})
		.with_context(|| format!("serving the live page on {addr}"))?;
		Ok((Web { shared }, bound))
	}

	fn set(&self, state: Value, chart: Option<String>) {
		let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
		shared.state = state.to_string();
		if let Some(chart) = chart {
			shared.chart = chart;
		}
	}
}

fn blade(amount: chain::Balance) -> f64 {
	amount as f64 / chain::UNIT as f64
}

impl Watcher {
	/// Refresh what the page shows: the task as of the confirmed block `confirmed`, the
	/// chain as of `best`.
	pub(super) fn publish(
		&mut self,
		best: u32,
		confirmed: u32,
		settled: bool,
	) -> anyhow::Result<()> {
		if self.web.is_none() {
			return Ok(());
		}
		self.follow_blocks(best)?;
		self.load_baseline();
		let state = self.state_json(best, confirmed, settled)?;
		let chart = self
			.last
			.as_ref()
			.and_then(|v| self.accuracy_chart(&v.spec));
		if let Some(web) = &self.web {
			web.set(state, chart);
		}
		Ok(())
	}

	/// Remember author and time of blocks not seen yet (the last 64 kept).
	fn follow_blocks(&mut self, best: u32) -> anyhow::Result<()> {
		let from = self
			.blocks
			.keys()
			.next_back()
			.map_or(best.saturating_sub(15), |n| n + 1)
			.max(best.saturating_sub(63))
			.max(1);
		for number in from..=best {
			let Some(header) = self.header_at(number)? else {
				continue;
			};
			let time = self.timestamp_at(number)?;
			let author = super::report::author(&header);
			self.blocks.insert(number, (header.hash(), author, time));
		}
		while self.blocks.len() > 64 {
			self.blocks.pop_first();
		}
		Ok(())
	}

	fn trainer_rows(&self, view: &TaskView, settled: bool) -> anyhow::Result<Vec<Value>> {
		let participants = if settled {
			Vec::new()
		} else {
			self.client.participants(self.args.task, None)?
		};
		let mut rows = Vec::new();
		for (i, who) in view.trainers.iter().enumerate() {
			let bit = 1u64 << i;
			let participant = participants.iter().find(|(a, _)| a == who).map(|(_, p)| p);
			rows.push(json!({
				"index": i,
				"account": who.to_string(),
				"role": self.roles.get(who),
				"stake": participant.map(|p| blade(p.stake)),
				"earned": participant.map(|p| blade(p.earned)),
				"reputation": self.reputation.get(who),
				"lazy": view.lazy & bit != 0,
				"submitted": view.submitted & bit != 0,
				"revealed": view.revealed & bit != 0,
				"in_aggregates": self.rounds.values().filter(|r| r.included & bit != 0).count(),
			}));
		}
		Ok(rows)
	}

	fn state_json(&self, best: u32, confirmed: u32, settled: bool) -> anyhow::Result<Value> {
		let url = self.args.node.url.clone();
		let chain = json!({
			"url": url,
			"apps": format!("https://polkadot.js.org/apps/?rpc={}", percent_encode(&url)),
			"best": best,
			"confirmed": confirmed,
			"forks": self.forks,
		});
		let blocks: Vec<Value> = self
			.blocks
			.iter()
			.rev()
			.take(15)
			.map(|(n, (hash, author, time))| {
				json!({
					"number": n,
					"hash": format!("{hash:?}"),
					"author": author.as_ref().map(|a| a.to_string()),
					"time": time,
				})
			})
			.collect();
		let mut miners: std::collections::BTreeMap<String, u32> = Default::default();
		for (_, author, _) in self.blocks.values() {
			if let Some(a) = author {
				*miners.entry(a.to_string()).or_default() += 1;
			}
		}
		let Some(view) = &self.last else {
			return Ok(json!({
				"task": self.args.task,
				"published": false,
				"chain": chain,
				"blocks": blocks,
				"miners": miners,
			}));
		};
		let spec = &view.spec;
		let history: Vec<Value> = self
			.rounds
			.iter()
			.map(|(index, r)| {
				json!({
					"round": index + 1,
					"blocks": format!("{}-{}", r.first_block, r.last_block),
					"seconds": r.seconds.round(),
					"submitted": r.submitted,
					"revealed": r.revealed,
					"lazy": r.lazy,
					"votes": r.votes.map(|(v, e)| format!("{v} of {e}")),
					"accuracy": r.accuracy.map(|a| a * 100.0),
					"without_chain": self.baseline_at(*index).map(|a| a * 100.0),
				})
			})
			.collect();
		let current = (!settled).then(|| {
			json!({
				"round": view.round + 1,
				"phase": format!("{:?}", view.phase),
				"phase_end": view.phase_end,
				"submitted": count(view.submitted),
				"revealed": count(view.revealed),
				"lazy": count(view.lazy),
			})
		});
		Ok(json!({
			"task": self.args.task,
			"published": true,
			"settled": settled,
			"spec": {
				"model": spec.model_id,
				"dataset": spec.dataset_id,
				"params": spec.param_count,
				"rounds": spec.rounds,
				"trainers_wanted": spec.trainers_wanted,
				"rule": format!("{:?}", spec.rule),
				"reward": blade(spec.reward),
				"stake": blade(spec.min_stake),
				"snr_db": f64::from(spec.pn_snr_centi_db) / 100.0,
			},
			"publisher": view.publisher.to_string(),
			"escrow": blade(view.escrow),
			"current": current,
			"history": history,
			"trainers": self.trainer_rows(view, settled)?,
			"chain": chain,
			"blocks": blocks,
			"miners": miners,
			"report": self.report_written.as_ref().map(|p| p.display().to_string()),
		}))
	}
}

/// `text` with everything but unreserved URL characters percent-encoded.
fn percent_encode(text: &str) -> String {
	text.bytes()
		.map(|b| match b {
			b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
				(b as char).to_string()
			}
			_ => format!("%{b:02X}"),
		})
		.collect()
}

#[cfg(test)]
mod tests {
	#[test]
	fn node_urls_are_encoded_for_the_apps_link() {
		assert_eq!(
			super::percent_encode("ws://127.0.0.1:9944/?a=b&c"),
			"ws%3A%2F%2F127.0.0.1%3A9944%2F%3Fa%3Db%26c"
		);
	}
}
