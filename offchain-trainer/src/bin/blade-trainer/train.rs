//! `run` and `export-model`: the subcommands that need libtorch (feature `torch`).

use std::path::PathBuf;

use anyhow::Context;
use blade_trainer::{
	behaviour::Behaviour,
	chain::UNIT,
	codec,
	keys::{self, KeySource},
	model::Model,
	partition::Scheme,
	registry::{self, DatasetName, ModelName},
	runner::{self, Noise, PrivacyConfig, RunConfig},
	state::Store,
	train::TrainConfig,
};
use clap::{Args, ValueEnum};
use tch::Device;

use crate::node::NodeArgs;

/// Trainer behaviour (experiments; `honest` for real use).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BehaviourArg {
	/// Train and publish the real update.
	Honest,
	/// Copy another trainer's update from the chain and add noise (`--lazy-noise`).
	Lazy,
	/// Publish the negated update.
	SignFlip,
	/// Publish the update times `--scale-factor`.
	Scale,
	/// Publish Gaussian noise as strong as the real update.
	Random,
	/// Copy another trainer's update and hide the copy under an own watermark of
	/// `--inflate-factor` times its RMS (the energy-inflating copier; proven lazy all the
	/// same).
	Inflate,
	/// Submit an int8 blob whose scale overflows `f32` (refused by the chain; the trainer
	/// then misses the round and is slashed).
	CraftedBlob,
	/// Train honestly but never publish the aggregate when chosen as aggregator (loses
	/// the fee; anyone may publish it instead).
	Withhold,
}

/// Local-DP mechanism.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NoiseArg {
	/// DP-SGD: each training record's gradient clipped to --clip, Gaussian noise every step
	/// (record-level DP: one record in or out).
	DpSgd,
	/// Output perturbation, Gaussian: the whole update clipped to L2 --clip, noise once per
	/// round (user-level DP: the trainer's whole data set in or out; needs far more noise).
	Gaussian,
	/// Output perturbation, Laplace: the update clipped to L1 --clip (user-level, pure DP).
	Laplace,
	/// No noise (explicit opt-out; tasks with a privacy floor are refused).
	Off,
}

/// Torch device.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DeviceArg {
	/// CUDA when libtorch sees a GPU, else CPU.
	Auto,
	/// CPU.
	Cpu,
	/// First CUDA GPU (fails without one).
	Cuda,
}

/// Partition scheme of the training split into shards.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SchemeArg {
	/// Uniform shuffle, equal shares.
	Iid,
	/// Dirichlet(alpha) label skew (`--alpha`).
	Dirichlet,
	/// Exactly k labels per shard (`--k`), in groups that share no label.
	KLabels,
	/// NIID-Bench's k labels per shard (`--k`): shard i holds label i and k-1 random ones.
	RandomLabels,
}

/// `run` arguments.
#[derive(Args, Debug)]
pub struct RunArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	#[command(flatten)]
	pub key: KeyArgs,
	/// Task to join.
	#[arg(long)]
	pub task: u64,
	#[command(flatten)]
	pub trainer: TrainerArgs,
}

/// Where the signing key comes from: `--key-file`, else `--keystore`, else `--suri` /
/// `BLADE_SURI`.
#[derive(Args, Debug)]
pub struct KeyArgs {
	/// Secret URI (development: //Bob ...; also the BLADE_SURI environment variable).
	#[arg(long, env = "BLADE_SURI", hide_env_values = true)]
	pub suri: Option<String>,
	/// File whose first line is the secret URI (must be mode 0600).
	#[arg(long)]
	pub key_file: Option<PathBuf>,
	/// Node keystore directory holding the trainer key (`blade-fl-node key insert
	/// --keystore-path DIR --key-type bltr --scheme sr25519`).
	#[arg(long)]
	pub keystore: Option<PathBuf>,
	/// Which keystore key (SS58 or hex public key) when it holds several.
	#[arg(long, requires = "keystore")]
	pub account: Option<String>,
	/// Password of the key (keystore or key file); prefer the environment variable.
	#[arg(long, env = "BLADE_KEY_PASSWORD", hide_env_values = true)]
	pub password: Option<String>,
}

impl KeyArgs {
	/// The signing key.
	pub fn pair(&self) -> anyhow::Result<sp_core::sr25519::Pair> {
		let source = match (&self.suri, &self.key_file, &self.keystore) {
			(_, Some(file), _) => KeySource::File(file.clone()),
			(_, _, Some(dir)) => KeySource::Keystore {
				dir: dir.clone(),
				account: self.account.clone(),
			},
			(Some(suri), _, _) => KeySource::Suri(suri.clone()),
			_ => anyhow::bail!(
				"no signing key: pass --keystore DIR, --key-file FILE or --suri (or set BLADE_SURI)"
			),
		};
		keys::load(&source, self.password.as_deref()).context("loading the signing key")
	}
}

/// What a trainer trains with and how (shared by `run` and `serve`).
#[derive(Args, Debug)]
pub struct TrainerArgs {
	/// Where seeds, sent blobs and progress are kept. Keep it: a trainer restarted with
	/// the same directory resumes the task; a lost directory loses unrevealed seeds.
	#[arg(long, default_value = "blade-trainer-state")]
	pub state_dir: PathBuf,
	/// Directory of the task's data set (Fashion-MNIST: Debian's package by default).
	#[arg(long, default_value = blade_trainer::data::DEBIAN_FASHION_MNIST_DIR)]
	pub data_dir: PathBuf,
	/// This trainer's shard of the training split, as INDEX/COUNT (e.g. 0/10).
	#[arg(long, default_value = "0/10", value_parser = parse_shard)]
	pub shard: (usize, usize),
	/// How the training split is cut into shards.
	#[arg(long, value_enum, default_value_t = SchemeArg::Iid)]
	pub scheme: SchemeArg,
	/// Dirichlet concentration.
	#[arg(long, default_value_t = 0.5)]
	pub alpha: f64,
	/// Labels per shard for k-labels.
	#[arg(long, default_value_t = 2)]
	pub k: usize,
	/// Seed of the split (the same for every trainer of an experiment).
	#[arg(long, default_value_t = 0)]
	pub partition_seed: u64,
	/// Use at most this many samples of the shard.
	#[arg(long)]
	pub max_samples: Option<usize>,
	/// Test samples used to evaluate each round's global model.
	#[arg(long, default_value_t = 2000)]
	pub eval_samples: usize,
	/// Local epochs per round (tau).
	#[arg(long, default_value_t = 1)]
	pub epochs: usize,
	/// Learning rate.
	#[arg(long, default_value_t = 0.05)]
	pub lr: f64,
	/// Mini-batch size.
	#[arg(long, default_value_t = 64)]
	pub batch_size: usize,
	/// libtorch intra-op threads (0: libtorch's default).
	#[arg(long, default_value_t = 0)]
	pub threads: usize,
	/// Torch device.
	#[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
	pub device: DeviceArg,
	/// How this trainer protects its data. Noise is calibrated, before bidding, so that
	/// all rounds of the task together spend at most the privacy budget: the tighter of
	/// the task's floor and --epsilon. Without either, no noise is added.
	#[arg(long, value_enum, default_value_t = NoiseArg::DpSgd)]
	pub noise: NoiseArg,
	/// This trainer's own total epsilon over a task (the task's floor applies if tighter).
	#[arg(long)]
	pub epsilon: Option<f64>,
	/// This trainer's delta (the task's applies if smaller).
	#[arg(long, default_value_t = 1e-5)]
	pub delta: f64,
	/// Clipping norm: of each sample's gradient (dp-sgd), of the update (L2 for gaussian,
	/// L1 for laplace).
	#[arg(long, default_value_t = 1.0)]
	pub clip: f64,
	/// Fix the noise multiplier instead of calibrating it; tasks whose budget it would
	/// exceed are refused.
	#[arg(long)]
	pub noise_multiplier: Option<f64>,
	/// Adaptive decay (the paper's): each round's noise is this factor times the previous
	/// round's, more noise early and less late, for the same total budget (1: constant).
	#[arg(long, default_value_t = 1.0)]
	pub decay: f64,
	/// Asking price of the bid, in BLADE.
	#[arg(long, default_value_t = 1)]
	pub price: u64,
	/// Declared capability (updates per hour).
	#[arg(long, default_value_t = 60)]
	pub capability: u32,
	/// Behaviour (experiments).
	#[arg(long, value_enum, default_value_t = BehaviourArg::Honest)]
	pub behaviour: BehaviourArg,
	/// Lazy: noise added to the copy, relative to its RMS.
	#[arg(long, default_value_t = 1.0)]
	pub lazy_noise: f64,
	/// Scale: the factor.
	#[arg(long, default_value_t = 10.0)]
	pub scale_factor: f32,
	/// Inflate: the own watermark's amplitude in multiples of the copied update's RMS.
	#[arg(long, default_value_t = 15.0)]
	pub inflate_factor: f64,
	/// No progress bars.
	#[arg(long)]
	pub quiet: bool,
}

fn parse_shard(text: &str) -> Result<(usize, usize), String> {
	let (i, n) = text
		.split_once('/')
		.ok_or_else(|| format!("{text:?}: expected INDEX/COUNT"))?;
	let i: usize = i.parse().map_err(|e| format!("{text:?}: {e}"))?;
	let n: usize = n.parse().map_err(|e| format!("{text:?}: {e}"))?;
	if n == 0 || i >= n {
		return Err(format!("{text:?}: need INDEX < COUNT"));
	}
	Ok((i, n))
}

fn device(arg: DeviceArg) -> Device {
	match arg {
		DeviceArg::Auto => Device::cuda_if_available(),
		DeviceArg::Cpu => Device::Cpu,
		DeviceArg::Cuda => Device::Cuda(0),
	}
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
	let mut client = args.node.signer_pair(args.key.pair()?)?;
	let store = Store::open(&args.trainer.state_dir).with_context(|| {
		format!(
			"opening the state directory {}",
			args.trainer.state_dir.display()
		)
	})?;
	let cfg = args.trainer.config(args.task);
	tracing::info!(device = ?cfg.device, behaviour = ?cfg.behaviour, "joining task {}", cfg.task);
	if !args.trainer.quiet {
		crate::progress::enable();
	}
	let outcome = runner::run(&mut client, &store, &cfg);
	crate::progress::finish();
	let outcome = outcome.with_context(|| format!("running task {}", cfg.task))?;
	print_outcome(cfg.task, &outcome);
	let metrics = blade_trainer::metrics::get();
	println!(
		"  chain client: {} RPC calls ({}), {:.2} s CPU in all",
		metrics.rpc_calls_total(),
		if client.subscribed() {
			"heads and transactions by subscription"
		} else {
			"polling"
		},
		blade_trainer::metrics::cpu_seconds().unwrap_or(f64::NAN)
	);
	Ok(())
}

/// The outcome of a task, on stdout.
pub fn print_outcome(task: u64, outcome: &runner::Outcome) {
	let (before, after) = outcome.balance;
	println!(
		"task {}: selected {}, excluded {}, updates submitted {}, lazy reports upheld {}",
		task, outcome.selected, outcome.excluded, outcome.submitted, outcome.reports_upheld
	);
	for (round, accuracy) in &outcome.accuracy {
		println!(
			"  global model after round {}: test accuracy {:.4}",
			round + 1,
			accuracy
		);
	}
	if let Some((epsilon, delta)) = outcome.privacy {
		println!("  privacy spent: epsilon {epsilon:.3} at delta {delta:e} (Renyi-DP accountant)");
	}
	println!(
		"  free balance {:.4} -> {:.4} BLADE ({:+.4})",
		before as f64 / UNIT as f64,
		after as f64 / UNIT as f64,
		(after as f64 - before as f64) / UNIT as f64
	);
}

impl TrainerArgs {
	/// The runner's configuration for `task`.
	pub fn config(&self, task: u64) -> RunConfig {
		let args = self;
		RunConfig {
			task,
			behaviour: match args.behaviour {
				BehaviourArg::Honest => Behaviour::Honest,
				BehaviourArg::Lazy => Behaviour::Lazy {
					noise: args.lazy_noise,
				},
				BehaviourArg::SignFlip => Behaviour::SignFlip,
				BehaviourArg::Scale => Behaviour::Scale {
					factor: args.scale_factor,
				},
				BehaviourArg::Random => Behaviour::Random,
				BehaviourArg::Inflate => Behaviour::Inflate {
					factor: args.inflate_factor,
				},
				BehaviourArg::CraftedBlob => Behaviour::CraftedBlob,
				BehaviourArg::Withhold => Behaviour::Withhold,
			},
			train: TrainConfig {
				epochs: args.epochs,
				lr: args.lr,
				batch_size: args.batch_size,
				threads: args.threads,
				..TrainConfig::default()
			},
			data_dir: args.data_dir.clone(),
			shard: args.shard,
			scheme: match args.scheme {
				SchemeArg::Iid => Scheme::Iid,
				SchemeArg::Dirichlet => Scheme::Dirichlet { alpha: args.alpha },
				SchemeArg::KLabels => Scheme::KLabels { k: args.k },
				SchemeArg::RandomLabels => Scheme::RandomLabels { k: args.k },
			},
			partition_seed: args.partition_seed,
			max_samples: args.max_samples,
			eval_samples: args.eval_samples,
			price: u128::from(args.price) * UNIT,
			capability: args.capability,
			privacy: PrivacyConfig {
				noise: match args.noise {
					NoiseArg::DpSgd => Noise::DpSgd,
					NoiseArg::Gaussian => Noise::Gaussian,
					NoiseArg::Laplace => Noise::Laplace,
					NoiseArg::Off => Noise::Off,
				},
				epsilon: args.epsilon,
				delta: args.delta,
				clip: args.clip,
				noise_multiplier: args.noise_multiplier,
				decay: args.decay,
			},
			device: device(args.device),
		}
	}
}

/// `export-model` arguments.
#[derive(Args, Debug)]
pub struct ExportArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	/// The task.
	#[arg(long)]
	pub task: u64,
	/// Output safetensors file.
	#[arg(long)]
	pub out: PathBuf,
	/// Model, when the task has settled (its spec is gone from state).
	#[arg(long, value_enum, default_value_t = ModelName::Mlp32)]
	pub model: ModelName,
	/// Data set, when the task has settled.
	#[arg(long, value_enum, default_value_t = DatasetName::FashionMnist)]
	pub dataset: DatasetName,
	/// Blocks searched back for a settled task's last publication.
	#[arg(long, default_value_t = 20_000)]
	pub scan: u32,
}

pub fn export(args: ExportArgs) -> anyhow::Result<()> {
	let client = args.node.reader()?;
	let (model_id, dataset_id) = match client.task(args.task, None)? {
		Some(view) => (view.spec.model_id, view.spec.dataset_id),
		None => (args.model.id(), args.dataset.id()),
	};
	let (round, blob) = client.final_model(args.task, args.scan)?.with_context(|| {
		format!(
				"task {} has no published global model (if it settled more than {} blocks ago, raise --scan)",
				args.task, args.scan
			)
	})?;
	let (header, values) =
		codec::decode(&blob, blob.len()).context("decoding the published model")?;
	let arch = registry::model(model_id)?;
	let shape = registry::shape(dataset_id)?;
	let mut model = Model::new(arch, shape, Device::Cpu, 0)?;
	anyhow::ensure!(
		model.param_count() == values.len(),
		"the published model has {} parameters; model {model_id} on data set {dataset_id} has {} (pass --model/--dataset)",
		values.len(),
		model.param_count()
	);
	model.load_flat(&values)?;
	model
		.save_safetensors(&args.out)
		.with_context(|| format!("writing {}", args.out.display()))?;
	println!(
		"task {} global model after round {} ({} parameters, hash 0x{}) written to {}",
		header.task,
		round + 1,
		values.len(),
		hex::encode(codec::hash(&blob)),
		args.out.display()
	);
	Ok(())
}
