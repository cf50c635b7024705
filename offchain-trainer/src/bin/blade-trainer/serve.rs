//! `serve`: the long-running trainer, its policy flags and its TOML configuration file.

use std::{
	ffi::OsString,
	net::SocketAddr,
	path::{Path, PathBuf},
	sync::atomic::AtomicBool,
	time::Duration,
};

use anyhow::Context;
use blade_trainer::{
	chain::UNIT,
	metrics,
	policy::Policy,
	registry::{DatasetName, ModelName},
	service::{self, ServiceConfig},
};
use clap::Args;

use crate::{
	node::NodeArgs,
	train::{print_outcome, KeyArgs, TrainerArgs},
};

/// `serve` arguments. Every flag may also be given in the `--config` file (TOML: a flag's
/// long name as key, in any table); flags on the command line override the file.
#[derive(Args, Debug)]
pub struct ServeArgs {
	/// TOML configuration file (see docs/operations.md); command-line flags override it.
	#[arg(long)]
	pub config: Option<PathBuf>,
	#[command(flatten)]
	pub node: NodeArgs,
	#[command(flatten)]
	pub key: KeyArgs,
	#[command(flatten)]
	pub trainer: TrainerArgs,
	#[command(flatten)]
	pub policy: PolicyArgs,
	/// Serve Prometheus metrics on this address (`GET /metrics`), e.g. 127.0.0.1:9616.
	#[arg(long)]
	pub metrics: Option<SocketAddr>,
}

/// When to bid (see docs/operations.md, "Bidding policy").
#[derive(Args, Debug)]
pub struct PolicyArgs {
	/// Least reward per seat and round (reward / rounds / trainers wanted), BLADE.
	#[arg(long, default_value_t = 0.1)]
	pub min_reward_per_round: f64,
	/// Most stake put at risk in one task, BLADE.
	#[arg(long, default_value_t = 100.0)]
	pub max_stake: f64,
	/// Tasks served at once.
	#[arg(long, default_value_t = 4)]
	pub max_tasks: usize,
	/// Least per-task epsilon cap this trainer can learn at.
	#[arg(long, default_value_t = 0.0)]
	pub min_epsilon: f64,
	/// Data sets this trainer has data for (the data of the first is at --data-dir).
	#[arg(
		long,
		value_enum,
		value_delimiter = ',',
		default_value = "fashion-mnist"
	)]
	pub datasets: Vec<DatasetName>,
	/// Models it trains.
	#[arg(
		long,
		value_enum,
		value_delimiter = ',',
		default_value = "mlp32,mlp128,cnn"
	)]
	pub models: Vec<ModelName>,
	/// Seconds one round of local training takes on this machine.
	#[arg(long, default_value_t = 10.0)]
	pub round_seconds: f64,
	/// Expected seconds per block (the chain's target block time).
	#[arg(long, default_value_t = 2.0)]
	pub block_seconds: f64,
	/// Free balance always kept for fees, BLADE.
	#[arg(long, default_value_t = 1.0)]
	pub reserve: f64,
}

fn planck(blade: f64) -> u128 {
	(blade.max(0.0) * UNIT as f64) as u128
}

impl PolicyArgs {
	fn policy(&self, confirmations: u32) -> Policy {
		Policy {
			min_reward_per_round: planck(self.min_reward_per_round),
			max_stake: planck(self.max_stake),
			max_tasks: self.max_tasks,
			min_epsilon: self.min_epsilon,
			datasets: self.datasets.iter().map(|d| d.id()).collect(),
			models: self.models.iter().map(|m| m.id()).collect(),
			round_seconds: self.round_seconds,
			block_seconds: self.block_seconds,
			confirmations,
			reserve: planck(self.reserve),
		}
	}
}

/// Insert the `--config` file's settings as flags right after `serve`, so that flags given
/// on the command line (parsed later, overriding) win.
pub fn expand_config(args: Vec<OsString>) -> anyhow::Result<Vec<OsString>> {
	let Some(serve) = args.iter().position(|a| a == "serve") else {
		return Ok(args);
	};
	let mut path = None;
	for (i, arg) in args.iter().enumerate().skip(serve + 1) {
		let text = arg.to_string_lossy();
		if let Some(value) = text.strip_prefix("--config=") {
			path = Some(PathBuf::from(value));
		} else if text == "--config" {
			path = args.get(i + 1).map(PathBuf::from);
		}
	}
	let Some(path) = path else {
		return Ok(args);
	};
	let flags = config_flags(&path)?;
	let mut out = args[..=serve].to_vec();
	out.extend(flags);
	out.extend_from_slice(&args[serve + 1..]);
	Ok(out)
}

/// The flags a configuration file stands for.
fn config_flags(path: &Path) -> anyhow::Result<Vec<OsString>> {
	let text =
		std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
	let table: toml::Table = text
		.parse()
		.with_context(|| format!("{} is not valid TOML", path.display()))?;
	let mut flags = Vec::new();
	flatten(&table, &mut flags, path)?;
	Ok(flags)
}

fn flatten(table: &toml::Table, flags: &mut Vec<OsString>, path: &Path) -> anyhow::Result<()> {
	for (key, value) in table {
		let flag = format!("--{key}");
		match value {
			toml::Value::Table(inner) => flatten(inner, flags, path)?,
			toml::Value::Boolean(true) => flags.push(flag.into()),
			toml::Value::Boolean(false) => {}
			toml::Value::String(s) => flags.extend([flag.into(), s.into()]),
			toml::Value::Integer(i) => flags.extend([flag.into(), i.to_string().into()]),
			toml::Value::Float(f) => flags.extend([flag.into(), f.to_string().into()]),
			toml::Value::Array(items) => {
				let joined: Vec<String> = items
					.iter()
					.map(|v| match v {
						toml::Value::String(s) => s.clone(),
						other => other.to_string(),
					})
					.collect();
				flags.extend([flag.into(), joined.join(",").into()]);
			}
			toml::Value::Datetime(_) => {
				anyhow::bail!("{}: `{key}` is a date; no flag takes one", path.display())
			}
		}
	}
	Ok(())
}

pub fn serve(args: ServeArgs) -> anyhow::Result<()> {
	let pair = args.key.pair()?;
	if let Some(addr) = args.metrics {
		metrics::serve(addr).context("starting the metrics endpoint")?;
	}
	let cfg = ServiceConfig {
		connection: args.node.connection(),
		state_dir: args.trainer.state_dir.clone(),
		run: args.trainer.config(0),
		policy: args.policy.policy(args.node.confirmations),
		poll: Duration::from_millis(500),
	};
	let stop = AtomicBool::new(false);
	service::serve(&cfg, pair, &stop, |task, outcome| {
		print_outcome(task, outcome);
	})
	.context("serving")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn config_file_becomes_flags_that_the_command_line_overrides() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("serve.toml");
		std::fs::write(
			&path,
			"url = \"ws://10.0.0.1:9944\"\nquiet = true\nverbose = false\n[policy]\nmax-tasks = 2\nmin-reward-per-round = 0.5\ndatasets = [\"fashion-mnist\", \"mnist\"]\n",
		)
		.unwrap();
		let args: Vec<OsString> = [
			"blade-trainer",
			"serve",
			"--config",
			path.to_str().unwrap(),
			"--max-tasks",
			"3",
		]
		.iter()
		.map(OsString::from)
		.collect();
		let expanded: Vec<String> = expand_config(args)
			.unwrap()
			.into_iter()
			.map(|a| a.into_string().unwrap())
			.collect();
		let flags = &expanded[2..expanded.len() - 4];
		assert!(flags
			.windows(2)
			.any(|w| w == ["--url", "ws://10.0.0.1:9944"]));
		assert!(flags.contains(&"--quiet".to_string()));
		assert!(!flags.contains(&"--verbose".to_string()));
		assert!(flags
			.windows(2)
			.any(|w| w == ["--datasets", "fashion-mnist,mnist"]));
		assert!(flags.windows(2).any(|w| w == ["--max-tasks", "2"]));
		// The command line's own flags come last, so they override.
		assert_eq!(&expanded[expanded.len() - 2..], ["--max-tasks", "3"]);
		std::fs::write(&path, "not = [toml").unwrap();
		let bad: Vec<OsString> = ["x", "serve", "--config", path.to_str().unwrap()]
			.iter()
			.map(OsString::from)
			.collect();
		assert!(expand_config(bad).is_err());
	}
}
