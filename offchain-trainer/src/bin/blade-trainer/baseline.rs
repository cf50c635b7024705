//! `baseline`: the same task without the chain (see `blade_trainer::runner::baseline`), for
//! the report's comparison of the chain's accuracy with what the same trainers reach
//! alone.

use std::{
	path::PathBuf,
	time::{Duration, Instant},
};

use anyhow::Context;
use blade_trainer::{
	behaviour::Behaviour,
	runner::{self, Noise},
};
use clap::Args;
use serde_json::json;

use crate::{node::NodeArgs, train::TrainerArgs};

/// `baseline` arguments.
#[derive(Args, Debug)]
pub struct BaselineArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	/// The task whose specification (model, data set, rounds, rule, watermark, norm bound)
	/// is copied; read from the chain once, while the task is live.
	#[arg(long)]
	pub task: u64,
	/// Trainers' roles, one `ACCOUNT ROLE` per line as for `watch --roles`: line i is
	/// shard i of N. `lazy` copies (left out of every aggregate, as the chain proves it),
	/// `sign-flip` negates, `honest-dp` trains with DP-SGD at `--dp-epsilon`, `honest`
	/// and `honest-*` (e.g. `honest-restarted`) train without noise; other roles are refused.
	#[arg(long)]
	pub roles: PathBuf,
	/// Total epsilon of the `honest-dp` trainers over the task (DP-SGD; default: the
	/// task's floor).
	#[arg(long)]
	pub dp_epsilon: Option<f64>,
	/// Write `{"task", "accuracy": [per round], "seconds"}` here.
	#[arg(long)]
	pub out: PathBuf,
	/// Everything else as each trainer runs (samples, evaluation set, training).
	#[command(flatten)]
	pub trainer: TrainerArgs,
}

/// Run, and on failure leave `{"error": ...}` at `--out` so that a watcher waiting for the
/// result stops waiting.
pub fn baseline(args: BaselineArgs) -> anyhow::Result<()> {
	let out = args.out.clone();
	let result = compute(args);
	if let Err(e) = &result {
		let _ = std::fs::write(&out, json!({ "error": format!("{e:#}") }).to_string());
	}
	result
}

fn compute(args: BaselineArgs) -> anyhow::Result<()> {
	let client = args.node.reader()?;
	let started = Instant::now();
	let view = loop {
		if let Some(view) = client.task(args.task, None)? {
			break view;
		}
		anyhow::ensure!(
			started.elapsed() < Duration::from_secs(60),
			"task {} is not on the chain",
			args.task
		);
		client.wait_new_head(Duration::from_secs(10))?;
	};
	let text = std::fs::read_to_string(&args.roles)
		.with_context(|| format!("reading {}", args.roles.display()))?;
	let roles: Vec<&str> = text
		.lines()
		.filter(|l| !l.trim().is_empty())
		.map(|l| l.split_whitespace().nth(1).unwrap_or("honest"))
		.collect();
	anyhow::ensure!(!roles.is_empty(), "no trainers in {}", args.roles.display());
	let trainers = roles
		.iter()
		.enumerate()
		.map(|(i, role)| {
			let mut cfg = args.trainer.config(args.task);
			cfg.shard = (i, roles.len());
			cfg.privacy.noise = Noise::Off;
			cfg.behaviour = match *role {
				"lazy" => Behaviour::Lazy {
					noise: args.trainer.lazy_noise,
				},
				"sign-flip" => Behaviour::SignFlip,
				"honest-dp" => {
					cfg.privacy.noise = Noise::DpSgd;
					cfg.privacy.epsilon = args.dp_epsilon;
					Behaviour::Honest
				}
				r if r == "honest" || r.starts_with("honest-") => Behaviour::Honest,
				other => anyhow::bail!(
					"role {other:?} of trainer {i}: the baseline knows lazy, sign-flip, \
					 honest-dp and honest[-*]"
				),
			};
			Ok(cfg)
		})
		.collect::<anyhow::Result<Vec<runner::RunConfig>>>()?;
	let clock = Instant::now();
	let accuracy = runner::baseline::without_chain(args.task, &view.spec, &trainers, |r, i| {
		tracing::debug!(round = r, trainer = i, "training without the chain");
	})?;
	for (round, a) in accuracy.iter().enumerate() {
		println!(
			"without the chain: round {} test accuracy {:.4}",
			round + 1,
			a
		);
	}
	let record = json!({
		"task": args.task,
		"accuracy": accuracy,
		"seconds": clock.elapsed().as_secs_f64(),
	});
	let partial = args.out.with_extension("json.partial");
	std::fs::write(&partial, record.to_string())
		.and_then(|()| std::fs::rename(&partial, &args.out))
		.with_context(|| format!("writing {}", args.out.display()))?;
	Ok(())
}
