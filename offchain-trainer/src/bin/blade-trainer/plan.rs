//! `blade-trainer plan`: the paper's resource allocation for a task (rounds `K`, local
//! epochs `tau`, cores mining vs training) within a time budget.

use clap::Args;

use blade_trainer::planner::{self, Block, Inputs};

/// `plan` arguments.
#[derive(Args, Debug)]
pub struct PlanArgs {
	/// Time the task may take, seconds (the paper's t_Sum).
	#[arg(long)]
	pub budget: f64,
	/// One local epoch on one core, seconds (t_T). Measured with --measure instead when
	/// the trainer is built with libtorch.
	#[arg(long, required_unless_present = "measure")]
	pub epoch_seconds: Option<f64>,
	/// Measure the epoch: train one epoch of `--model` on `--samples` Fashion-MNIST
	/// samples on one core.
	#[arg(long)]
	pub measure: bool,
	/// Model measured.
	#[arg(long, value_enum, default_value_t = blade_trainer::registry::ModelName::Mlp32)]
	pub model: blade_trainer::registry::ModelName,
	/// Samples per trainer.
	#[arg(long, default_value_t = 3000)]
	pub samples: usize,
	/// Fashion-MNIST directory.
	#[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
	pub data_dir: std::path::PathBuf,
	/// Expected block time, seconds (t_B). Default: the mean over the node's last 50
	/// blocks (--url), the chain retargeting its difficulty to it.
	#[arg(long)]
	pub block_seconds: Option<f64>,
	/// Node to read the block time from.
	#[arg(long, env = "BLADE_NODE_URL", default_value = "ws://127.0.0.1:9944")]
	pub url: String,
	/// Instead of a block time: the chain's difficulty (expected hashes per block), with
	/// --hash-rate and --others; the planner then splits --cores between mining and
	/// training (the paper's symmetric setting: every miner does the same).
	#[arg(long, requires = "hash_rate")]
	pub difficulty: Option<f64>,
	/// Hashes per second of one mining thread here (`blade-bench pow` prints it).
	#[arg(long)]
	pub hash_rate: Option<f64>,
	/// Hash rate of the rest of the network.
	#[arg(long, default_value_t = 0.0)]
	pub others: f64,
	/// Cores of this machine.
	#[arg(long, default_value_t = 1)]
	pub cores: u32,
	/// Drift weight of the convergence bound (fit with `blade-bench paper k-sweep`).
	#[arg(long, default_value_t = planner::DRIFT)]
	pub drift: f64,
	/// Step-size offset of the bound.
	#[arg(long, default_value_t = planner::WARMUP)]
	pub warmup: f64,
	/// Most local epochs per round considered.
	#[arg(long, default_value_t = 50)]
	pub max_epochs: u32,
}

pub fn plan(args: PlanArgs) -> anyhow::Result<()> {
	let epoch_seconds = match (args.epoch_seconds, args.measure) {
		(Some(s), false) => s,
		(_, true) => measure(&args)?,
		(None, false) => anyhow::bail!("give --epoch-seconds or --measure"),
	};
	let block = match (args.difficulty, args.hash_rate, args.block_seconds) {
		(Some(difficulty), Some(per_thread), _) => Block::Mined {
			difficulty,
			others: args.others,
			per_thread,
		},
		(_, _, Some(s)) => Block::Seconds(s),
		_ => {
			let client = blade_trainer::chain::Client::read_only(
				&args.url,
				blade_trainer::chain::Backoff::default(),
			)?;
			let best = client.best_number()?;
			let mean = client
				.mean_block_time(best.saturating_sub(50), best)?
				.ok_or_else(|| {
					anyhow::anyhow!(
						"the chain at {} has too few blocks to time; give --block-seconds",
						args.url
					)
				})?;
			println!(
				"block time: {mean:.2} s (mean of the last {} blocks at {})",
				best.min(50),
				args.url
			);
			Block::Seconds(mean)
		}
	};
	let inputs = Inputs {
		budget: args.budget,
		epoch_seconds,
		block,
		cores: args.cores,
		drift: args.drift,
		warmup: args.warmup,
		max_epochs: args.max_epochs,
	};
	let choice = planner::plan(&inputs)?;
	println!(
		"inputs: budget {:.0} s, one-core epoch {epoch_seconds:.2} s, {} cores, drift {}, warmup {}",
		args.budget, args.cores, args.drift, args.warmup
	);
	println!("  tau   K   bound      seconds");
	for tau in [1, 2, 3, 4, 5, 6, 8, 10, 15, 20] {
		let k =
			planner::rounds_within(args.budget, tau, choice.epoch_seconds, choice.block_seconds);
		if k > 0 {
			println!(
				"  {tau:>3} {k:>3}   {:.5}  {:>7.0}",
				planner::bound(k, tau, args.drift, args.warmup),
				f64::from(k) * (f64::from(tau) * choice.epoch_seconds + choice.block_seconds)
			);
		}
	}
	println!(
		"choice: K = {} rounds of tau = {} local epochs, {} of {} cores mining (epoch {:.2} s, block {:.2} s), {:.0} s of {:.0}; bound {:.5}",
		choice.rounds,
		choice.epochs,
		choice.mining_cores,
		args.cores,
		choice.epoch_seconds,
		choice.block_seconds,
		choice.seconds,
		args.budget,
		choice.bound
	);
	let submit_blocks = ((f64::from(choice.epochs) * choice.epoch_seconds / choice.block_seconds)
		.ceil() as u32)
		* 2 + 8;
	println!(
		"publish with: blade-trainer publish-task --rounds {} --submit {submit_blocks} ...; trainers: --epochs {}",
		choice.rounds, choice.epochs
	);
	Ok(())
}

#[cfg(feature = "torch")]
fn measure(args: &PlanArgs) -> anyhow::Result<f64> {
	use blade_trainer::{
		data,
		model::Model,
		registry,
		train::{self, TrainConfig},
	};
	let (train_set, _) = data::load_fashion_mnist(&args.data_dir, true)?;
	let take: Vec<usize> = (0..args.samples.min(train_set.len())).collect();
	let tensors = train::to_tensors(&train_set.subset(&take)?, tch::Device::Cpu)?;
	let arch = registry::model(args.model.id())?;
	let shape = registry::shape(1)?;
	let mut model = Model::new(arch, shape, tch::Device::Cpu, 0)?;
	let config = TrainConfig {
		threads: 1,
		..TrainConfig::default()
	};
	train::train(&mut model, &tensors, &config)?; // warm-up
	let started = std::time::Instant::now();
	train::train(&mut model, &tensors, &config)?;
	let seconds = started.elapsed().as_secs_f64();
	println!(
		"measured: one epoch of {:?} on {} samples, one core: {seconds:.2} s",
		args.model,
		take.len()
	);
	Ok(seconds)
}

#[cfg(not(feature = "torch"))]
fn measure(_: &PlanArgs) -> anyhow::Result<f64> {
	anyhow::bail!(
		"--measure needs the trainer built with libtorch (feature torch); give --epoch-seconds"
	)
}
