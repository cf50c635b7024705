//! `blade-trainer`: the BLADE-FL off-chain trainer's command line.

#[cfg(feature = "torch")]
mod baseline;
mod govern;
mod node;
mod plan;
#[cfg(feature = "torch")]
mod progress;
#[cfg(feature = "torch")]
mod serve;
#[cfg(feature = "torch")]
mod train;
mod watch;

use std::path::PathBuf;

use anyhow::Context;
use blade_trainer::{
	aggregation::{aggregate, Rule},
	codec, data,
	partition::{partition, Scheme},
};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
	version,
	about = "BLADE-FL off-chain trainer",
	long_about = "BLADE-FL off-chain trainer: joins federated-learning tasks on a BLADE-FL \
	              chain. It bids with a stake, trains locally with libtorch, protects each \
	              update with local differential privacy and a PN watermark, submits it, \
	              reveals its seed, checks everyone else's updates for lazy copies (and \
	              proves them on chain), aggregates deterministically, votes, publishes the \
	              aggregate and collects its reward.\n\n\
	              Typical use on a dev chain (scripts/run-dev):\n  \
	              blade-trainer publish-task --suri //Alice\n  \
	              blade-trainer run --suri //Bob --task 0 --shard 0/3 --state-dir bob\n  \
	              blade-trainer serve --config serve.toml   (an operator's long-running trainer)\n  \
	              blade-trainer status\n  \
	              blade-trainer export-model --task 0 --out model.safetensors\n\n\
	              Logs go to stderr (RUST_LOG=debug for more); results to stdout.",
	after_help = "`run`, `serve` and `export-model` need the `torch` feature (libtorch; scripts/env.sh)."
)]
struct Cli {
	#[command(subcommand)]
	command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemeArg {
	/// Uniform shuffle, equal shares.
	Iid,
	/// Dirichlet(alpha) label skew per class.
	Dirichlet,
	/// Exactly k labels per client, in groups that share no label.
	KLabels,
	/// NIID-Bench's k labels per client: client i holds label i and k-1 random ones.
	RandomLabels,
}

#[derive(Clone, Copy, ValueEnum)]
enum RuleArg {
	/// Weighted mean (weights from --weights).
	Fedavg,
	/// Coordinate-wise median.
	Median,
	/// Coordinate-wise trimmed mean (--trim).
	TrimmedMean,
	/// Multi-Krum (--byzantine).
	MultiKrum,
}

#[derive(Subcommand)]
enum Command {
	/// Publish a task: escrow its reward and open bidding. Prints the task id.
	PublishTask(node::PublishArgs),
	/// Plan a task's rounds K and local epochs tau (and this machine's mining and training
	/// cores) within a time budget, from the measured epoch time and the chain's block
	/// time: the paper's resource allocation, with the convergence bound it optimises.
	Plan(plan::PlanArgs),
	/// Cancel one of your tasks while it is still in bidding (full refunds).
	CancelTask {
		#[command(flatten)]
		node: node::NodeArgs,
		/// Publisher's secret URI.
		#[arg(long, env = "BLADE_SURI")]
		suri: String,
		/// The task.
		#[arg(long)]
		task: u64,
	},
	/// Send BLADE from one account to several (trainers' stakes and fees on a dev or test
	/// chain). Transfers are sent together and confirmed together.
	Fund(node::FundArgs),
	/// Change chain parameters as governance does: the target block time by a council
	/// motion (propose, majority votes, close), the lazy slash by sudo.
	Govern(govern::GovernArgs),
	/// Follow one task live (a table row per round: blocks, time, submitted, revealed,
	/// lazy proven, votes for the aggregate, test accuracy, forks) and write a Markdown
	/// report when it settles.
	Watch(watch::WatchArgs),
	/// Show tasks (phase, round, trainers, updates, votes, global models), reputation and
	/// balances, read at the confirmed head.
	Status {
		#[command(flatten)]
		node: node::NodeArgs,
		/// Only this task (default: all active tasks).
		#[arg(long)]
		task: Option<u64>,
		/// Also show these accounts (SS58).
		#[arg(long = "account")]
		accounts: Vec<String>,
		/// Machine-readable output (JSON; amounts in planck as strings).
		#[arg(long)]
		json: bool,
	},
	/// Join a task as trainer and follow it to settlement: bid, train, add local-DP noise
	/// and the PN watermark, submit, reveal, verify others and report lazy copies,
	/// aggregate, vote and publish. Safe to kill and restart with the same --state-dir.
	#[cfg(feature = "torch")]
	Run(Box<train::RunArgs>),
	/// Train a task's trainers without the chain, in one process and through the same
	/// pipeline (shards, seeds, behaviours, local DP, watermarks, screen, rule), and write
	/// the accuracy per round: what the chain's coordination costs in learning.
	#[cfg(feature = "torch")]
	Baseline(Box<baseline::BaselineArgs>),
	/// Run as a service: watch the chain for tasks, bid where the policy says (data set,
	/// model, reward per round, stake, privacy cap, time to train), serve every task won
	/// at once, collect rewards, keep going. Restart with the same --state-dir to resume
	/// every task. Settings from --config (TOML), overridden by flags.
	#[cfg(feature = "torch")]
	#[command(args_override_self = true)]
	Serve(Box<serve::ServeArgs>),
	/// Download the last published global model of a task and write it as safetensors
	/// (loadable with `safetensors.torch.load_file`).
	#[cfg(feature = "torch")]
	ExportModel(train::ExportArgs),
	/// Aggregate update blobs deterministically and write the aggregate blob; prints its
	/// Blake2-256 hash, the value every trainer proposes on chain. Bit-exact across
	/// machines and thread counts (`RAYON_NUM_THREADS`).
	Aggregate {
		/// Update blobs (already de-watermarked), in trainer order.
		#[arg(required = true)]
		blobs: Vec<PathBuf>,
		/// Aggregation rule.
		#[arg(long, value_enum, default_value_t = RuleArg::Fedavg)]
		rule: RuleArg,
		/// FedAvg weights (declared samples x reputation), one per blob; default all 1.
		#[arg(long, value_delimiter = ',')]
		weights: Vec<u128>,
		/// Trimmed-mean share dropped at each end.
		#[arg(long, default_value_t = 0.1)]
		trim: f64,
		/// Multi-Krum's assumed Byzantine count.
		#[arg(long, default_value_t = 1)]
		byzantine: usize,
		/// Where to write the aggregate blob.
		#[arg(long)]
		out: PathBuf,
	},
	/// Load Fashion-MNIST (checksums verified) and show how a partition splits it among
	/// clients: samples and labels per client.
	Data {
		/// Directory with the four Fashion-MNIST IDX files (.gz or not).
		#[arg(long, default_value = data::DEBIAN_FASHION_MNIST_DIR)]
		data_dir: PathBuf,
		/// Number of clients.
		#[arg(long, default_value_t = 10)]
		clients: usize,
		/// Partition scheme.
		#[arg(long, value_enum, default_value_t = SchemeArg::Iid)]
		scheme: SchemeArg,
		/// Dirichlet concentration (scheme `dirichlet`).
		#[arg(long, default_value_t = 0.5)]
		alpha: f64,
		/// Labels per client (scheme `k-labels`).
		#[arg(long, default_value_t = 2)]
		k: usize,
		/// Seed of the partition.
		#[arg(long, default_value_t = 0)]
		seed: u64,
	},
}

fn main() -> anyhow::Result<()> {
	use tracing_subscriber::{layer::SubscriberExt, util::SubscriberInitExt, Layer};
	let logs = tracing_subscriber::fmt::layer()
		.with_writer(std::io::stderr)
		// Colours only on a terminal: logs written to files stay greppable.
		.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
		.with_filter(
			tracing_subscriber::EnvFilter::try_from_default_env()
				.unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
		);
	let registry = tracing_subscriber::registry().with(logs);
	#[cfg(feature = "torch")]
	let registry = registry.with(progress::layer());
	registry.init();
	#[cfg(feature = "torch")]
	let args = serve::expand_config(std::env::args_os().collect())?;
	#[cfg(not(feature = "torch"))]
	let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
	match Cli::parse_from(args).command {
		Command::PublishTask(args) => node::publish(args)?,
		Command::Plan(args) => plan::plan(args)?,
		Command::CancelTask { node, suri, task } => node::cancel(node, &suri, task)?,
		Command::Fund(args) => node::fund(args)?,
		Command::Govern(args) => govern::govern(args)?,
		Command::Watch(args) => watch::watch(args)?,
		Command::Status {
			node,
			task,
			accounts,
			json,
		} => node::status(node, task, accounts, json)?,
		#[cfg(feature = "torch")]
		Command::Run(args) => train::run(*args)?,
		#[cfg(feature = "torch")]
		Command::Baseline(args) => baseline::baseline(*args)?,
		#[cfg(feature = "torch")]
		Command::Serve(args) => serve::serve(*args)?,
		#[cfg(feature = "torch")]
		Command::ExportModel(args) => train::export(args)?,
		Command::Aggregate {
			blobs,
			rule,
			weights,
			trim,
			byzantine,
			out,
		} => {
			let mut updates = Vec::new();
			let mut header = None;
			for path in &blobs {
				let bytes =
					std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
				let (h, values) = codec::decode(&bytes, bytes.len())
					.with_context(|| format!("decoding {}", path.display()))?;
				header.get_or_insert(h);
				updates.push(values);
			}
			let weights = if weights.is_empty() {
				vec![1; updates.len()]
			} else {
				weights
			};
			let rule = match rule {
				RuleArg::Fedavg => Rule::FedAvg,
				RuleArg::Median => Rule::Median,
				RuleArg::TrimmedMean => Rule::TrimmedMean { trim },
				RuleArg::MultiKrum => Rule::MultiKrum { byzantine },
			};
			let result = aggregate(&updates, &weights, rule).context("aggregating")?;
			let header = header.context("no blobs")?;
			let blob = codec::encode(
				header.task,
				header.round,
				blade_fl_primitives::blob::Codec::F32,
				&result.values,
			)
			.context("encoding the aggregate")?;
			std::fs::write(&out, &blob).with_context(|| format!("writing {}", out.display()))?;
			tracing::info!(included = ?result.included, bytes = blob.len(), "aggregate written");
			println!(
				"0x{}",
				codec::hash(&blob)
					.iter()
					.map(|b| format!("{b:02x}"))
					.collect::<String>()
			);
		}
		Command::Data {
			data_dir,
			clients,
			scheme,
			alpha,
			k,
			seed,
		} => {
			let (train, test) = data::load_fashion_mnist(&data_dir, true)
				.with_context(|| format!("loading Fashion-MNIST from {}", data_dir.display()))?;
			tracing::info!(
				train = train.len(),
				test = test.len(),
				"Fashion-MNIST loaded, checksums verified"
			);
			let scheme = match scheme {
				SchemeArg::Iid => Scheme::Iid,
				SchemeArg::Dirichlet => Scheme::Dirichlet { alpha },
				SchemeArg::KLabels => Scheme::KLabels { k },
				SchemeArg::RandomLabels => Scheme::RandomLabels { k },
			};
			let parts = partition(&train.labels, train.classes, clients, scheme, seed)
				.context("partitioning the training split")?;
			println!("client  samples  per-label counts (0..9)");
			for (i, part) in parts.iter().enumerate() {
				let mut counts = [0usize; 10];
				part.iter()
					.for_each(|s| counts[train.labels[*s] as usize] += 1);
				println!("{i:>6} {:>8}  {counts:?}", part.len());
			}
		}
	}
	Ok(())
}
