//! `blade-bench`: prints throughput figures for BLADE-FL's hot paths.
#![allow(clippy::expect_used)] // a benchmark tool: failing loudly on impossible setup is right
//!
//! Figures are printed, never asserted: compare them across commits and machines.

use std::time::{Duration, Instant};

use blade_pow::{Miner, WORK_INPUT_LEN};

mod fl;
mod kernels;
#[cfg(feature = "torch")]
mod lazy;
#[cfg(feature = "torch")]
mod paper;
#[cfg(feature = "torch")]
mod train;
use clap::{Parser, Subcommand};
use sp_core::{H256, U256};

#[derive(Parser)]
#[command(
	about = "BLADE-FL benchmark harness: prints throughput figures",
	version
)]
struct Cli {
	#[command(subcommand)]
	bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
	/// Proof-of-work: hashes/s of the mining loop per thread versus the raw Blake2b-256
	/// throughput on the same 40-byte input, and their ratio (goal: loop >= 90% of raw).
	Pow {
		/// Seconds to run each measurement.
		#[arg(long, default_value_t = 3.0)]
		seconds: f64,
		/// Repetitions; the best of each is reported.
		#[arg(long, default_value_t = 3)]
		repeats: u32,
		/// Difficulty for the expected-block-time line (default: the `development` preset's).
		#[arg(long, default_value_t = 12_000_000.0)]
		difficulty: f64,
	},
	/// Federated-learning calls that carry blobs (`submit_update`, `report_lazy`): weight,
	/// proof size, fee and how many fit in one block, from the runtime's weights, next to
	/// their execution time measured natively in the real runtime (wasm is slower).
	/// Trainer kernels: aggregation of `clients` updates per rule (GB/s and ratio to a plain
	/// memory copy of the same bytes), PN chip generation, correlation (float and the
	/// runtime's fixed point), blob encode/decode per codec.
	Kernels {
		/// Model sizes in parameters.
		#[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
		params: Vec<usize>,
		/// Updates aggregated.
		#[arg(long, default_value_t = 20)]
		clients: usize,
		/// Repetitions; the fastest run is reported.
		#[arg(long, default_value_t = 3)]
		repeats: u32,
	},
	/// Training throughput (samples/s) of the Rust trainer against PyTorch from Python on
	/// the same model, data, batch and thread count, and their ratio (goal >= 1.0). Needs
	/// the `torch` feature.
	#[cfg(feature = "torch")]
	Train {
		/// Fashion-MNIST directory.
		#[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
		data_dir: std::path::PathBuf,
		/// `mlp` or `cnn`.
		#[arg(long, default_value = "cnn")]
		arch: String,
		/// Training samples (one epoch).
		#[arg(long, default_value_t = 10_000)]
		samples: usize,
		/// Batch size.
		#[arg(long, default_value_t = 64)]
		batch: usize,
		/// Threads for both.
		#[arg(long, default_value_t = 1)]
		threads: usize,
	},
	/// The paper's lazy-client figures on real Fashion-MNIST training: detection rates
	/// at 3-20 dB with 95 % intervals for plain, noisy and energy-inflating copiers, and FedAvg accuracy with no lazy clients, lazy
	/// clients undetected, and lazy clients caught by PN signatures. Writes an SVG.
	/// Needs the `torch` feature.
	#[cfg(feature = "torch")]
	Lazy {
		/// Fashion-MNIST directory.
		#[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
		data_dir: std::path::PathBuf,
		/// Clients.
		#[arg(long, default_value_t = 10)]
		clients: usize,
		/// Samples per client.
		#[arg(long, default_value_t = 3000)]
		samples: usize,
		/// Federated rounds of the accuracy runs.
		#[arg(long, default_value_t = 30)]
		rounds: usize,
		/// Rounds of the detection-rate run (each gives clients x (clients - 1) copies per SNR).
		#[arg(long, default_value_t = 20)]
		rate_rounds: usize,
		/// Share of lazy clients.
		#[arg(long, default_value_t = 0.3)]
		lazy_fraction: f64,
		/// Noise levels a lazy client adds, relative to the copied update's RMS (0: a plain
		/// copy).
		#[arg(long, value_delimiter = ',', default_values_t = [0.0, 1.0, 3.0, 10.0])]
		lazy_noise: Vec<f64>,
		/// The energy-inflating copier's own watermark, in multiples of the copy's RMS.
		#[arg(long, default_value_t = 15.0)]
		inflate: f64,
		/// Watermark SNRs (dB) of the detection-rate run.
		#[arg(long, value_delimiter = ',', default_values_t = [3.0, 6.0, 9.0, 12.0, 15.0, 20.0])]
		snrs: Vec<f64>,
		/// Random keys each honest update is tested against besides the other clients'
		/// (false-alarm trials: 10 clients x 20 rounds x 50 = 10 000 per SNR).
		#[arg(long, default_value_t = 50)]
		extra_honest_keys: usize,
		/// Watermark SNR (dB) of the accuracy runs.
		#[arg(long, default_value_t = 6.0)]
		snr_db: f64,
		/// libtorch threads.
		#[arg(long, default_value_t = 1)]
		threads: usize,
		/// Split of the training data: `iid`, `k-labels` (`--k` labels per client in groups
		/// that share no label, the classic pathological non-IID split), `random-labels`
		/// (NIID-Bench's `#C=k`: client i holds label i and k-1 random ones) or
		/// `dirichlet` (`--alpha`).
		#[arg(long, default_value = "iid")]
		scheme: String,
		/// Local learning rate.
		#[arg(long, default_value_t = 0.05)]
		lr: f64,
		/// Local SGD momentum (0: plain SGD, steadier on non-IID splits).
		#[arg(long, default_value_t = 0.9)]
		momentum: f64,
		/// Labels per client for `k-labels` and `random-labels`.
		#[arg(long, default_value_t = 2)]
		k: usize,
		/// Dirichlet concentration.
		#[arg(long, default_value_t = 0.5)]
		alpha: f64,
		/// Where to write the accuracy plot.
		#[arg(long, default_value = "docs/figures/lazy-accuracy.svg")]
		svg: std::path::PathBuf,
	},
	/// The paper's experiments and ours beyond it on Fashion-MNIST (CSV + SVG under
	/// `--out`; `benchmarking/results/paper.md` reports them): `dp` (Fig. 2 and the DP-SGD
	/// goal), `k-sweep` (Fig. 3 and the planner), `attacks` (robust rules against sign-flip, scaling and random updates), `niid`
	/// (NIID-Bench's configuration). Needs the `torch` feature.
	#[cfg(feature = "torch")]
	Paper {
		#[command(subcommand)]
		experiment: PaperExperiment,
		/// Fashion-MNIST directory.
		#[arg(
			long,
			global = true,
			default_value = "/usr/share/datasets/fashion-mnist"
		)]
		data_dir: std::path::PathBuf,
		/// Output directory.
		#[arg(long, global = true, default_value = "benchmarking/results/paper")]
		out: std::path::PathBuf,
		/// Trainers.
		#[arg(long, global = true, default_value_t = 20)]
		clients: usize,
		/// Samples per trainer (0: its whole shard of the 60 000).
		#[arg(long, global = true, default_value_t = 0)]
		samples: usize,
		/// Rounds.
		#[arg(long, global = true, default_value_t = 10)]
		rounds: usize,
		/// Local epochs per round.
		#[arg(long, global = true, default_value_t = 1)]
		epochs: usize,
		/// Batch size (DP-SGD: the expected Poisson batch).
		#[arg(long, global = true, default_value_t = 64)]
		batch: usize,
		/// Learning rate.
		#[arg(long, global = true, default_value_t = 0.05)]
		lr: f64,
		/// Momentum.
		#[arg(long, global = true, default_value_t = 0.9)]
		momentum: f64,
		/// SGD weight decay (NIID-Bench: 1e-5; runs without DP-SGD only).
		#[arg(long, global = true, default_value_t = 0.0)]
		weight_decay: f64,
		/// libtorch threads.
		#[arg(long, global = true, default_value_t = 2)]
		threads: usize,
		/// The chain's contribution screen: `off`; `apply` (only the updates it keeps are
		/// aggregated, as trainers on a chain do); `observe` (measured, every update
		/// aggregated). With a screen each run prints how many updates it kept each round
		/// (with the honest updates' lowest and median alignment z; it keeps z >= 4) and
		/// each trainer's evidence accumulated from round 3.
		#[arg(long, global = true, value_enum, default_value_t = blade_trainer::fedsim::Screening::Off)]
		screen: blade_trainer::fedsim::Screening,
		/// The last N trainers are free riders sending Gaussian noise as long as their
		/// update.
		#[arg(long, global = true, default_value_t = 0)]
		free_riders: usize,
	},
	Fl {
		/// Blob sizes in bytes (default: 100 kB, the 1 MiB governance maximum, the 2 MiB
		/// hard bound).
		#[arg(long, value_delimiter = ',', default_values_t = [100_000u32, 1_048_576, 2_097_152])]
		sizes: Vec<u32>,
		/// Repetitions; the fastest run is reported.
		#[arg(long, default_value_t = 3)]
		repeats: u32,
	},
}

#[cfg(feature = "torch")]
#[derive(Subcommand)]
enum PaperExperiment {
	/// Accuracy over rounds at several total epsilons per trainer: DP-SGD constant and
	/// adaptive, output perturbation (Gaussian, Laplace), and without DP.
	Dp {
		/// Total epsilons per trainer over the run (delta 1e-5).
		#[arg(long, value_delimiter = ',', default_values_t = [1.0, 3.0, 8.0])]
		epsilons: Vec<f64>,
		/// Per-sample clipping norm.
		#[arg(long, default_value_t = 1.0)]
		clip: f64,
		/// Adaptive schedule's per-round noise factor (1: constant only).
		#[arg(long, default_value_t = 0.9)]
		decay: f64,
		/// Also output perturbation at the largest epsilon.
		#[arg(long)]
		output_perturbation: bool,
		/// Leave out the DP-SGD curves (with --output-perturbation: only the paper's
		/// mechanism, Gaussian and Laplace, constant and adaptive).
		#[arg(long)]
		no_dp_sgd: bool,
		/// The model: `dp-cnn` (Papernot et al.'s tanh CNN) or `scatter-linear` (Tramer and
		/// Boneh's fixed scattering features and a linear layer).
		#[arg(long, value_enum, default_value_t = blade_trainer::registry::ModelName::DpCnn)]
		model: blade_trainer::registry::ModelName,
		/// `iid`, `k-labels` (2 labels per trainer, disjoint groups) or `random-labels`
		/// (2 labels per trainer, NIID-Bench's draw).
		#[arg(long, default_value = "iid")]
		scheme: String,
		/// Leave out the run without DP.
		#[arg(long)]
		no_reference: bool,
		/// Name of the CSV and SVG (default: dp-SCHEME).
		#[arg(long)]
		name: Option<String>,
	},
	/// The paper's Fig. 3: test loss after a fixed time budget against the number of rounds
	/// K for several theta = t_T / t_B (MLP-32), and the planner's choice beside the
	/// measured optimum.
	KSweep {
		/// Ratios of epoch time to block time.
		#[arg(long, value_delimiter = ',', default_values_t = [0.5, 1.0, 2.0])]
		thetas: Vec<f64>,
		/// Rounds tried.
		#[arg(long, value_delimiter = ',', default_values_t = [2u32, 4, 6, 8, 10, 14, 20, 30, 45])]
		ks: Vec<u32>,
		/// Time budget t_Sum (the paper: 200).
		#[arg(long, default_value_t = 200.0)]
		budget: f64,
		/// Block time t_B (the paper: 2).
		#[arg(long, default_value_t = 2.0)]
		block: f64,
	},
	/// Sign-flip, x10 scaling and random updates at each share of trainers under FedAvg,
	/// median, trimmed mean (20 %) and Multi-Krum (MLP-128, no DP).
	Attacks {
		/// Shares of attackers.
		#[arg(long, value_delimiter = ',', default_values_t = [0.1, 0.2, 0.3])]
		shares: Vec<f64>,
	},
	/// FedAvg in NIID-Bench's configuration (use --clients 10 --epochs 10 --lr 0.01
	/// --rounds 50): IID, Dirichlet 0.5, 2 labels per client.
	Niid {
		/// Splits to run, in order: `iid`, `dirichlet` (alpha 0.5), `random-labels` (2
		/// labels per client, NIID-Bench's `#C=2` draw), `k-labels` (2 labels per client in
		/// disjoint groups, harder than NIID-Bench's), `label-sets` (the sets given with
		/// `--label-sets`). About 50 minutes each on two cores (2 labels: ~2 hours).
		#[arg(long, value_delimiter = ',', default_values_t = ["iid".to_string(), "dirichlet".to_string(), "random-labels".to_string()])]
		splits: Vec<String>,
		/// Label sets for the `label-sets` split, one per client: clients separated by
		/// spaces or `;`, labels by commas. NIID-Bench's `#C=2` draw with its seed 42 (as
		/// its Flower baseline partitions, computed with numpy's `default_rng(42)`) is
		/// "0,7 1,6 2,4 3,4 4,8 5,0 6,2 7,0 8,5 9,7".
		#[arg(long)]
		label_sets: Option<blade_trainer::partition::LabelSets>,
		/// Name of the CSV and SVG.
		#[arg(long, default_value = "niid-bench")]
		name: String,
	},
}

/// Raw hash: Blake2b-256 over a 40-byte buffer whose last 8 bytes change every call.
fn raw_hash_rate(duration: Duration) -> f64 {
	let mut input = [7u8; WORK_INPUT_LEN];
	let mut sink = 0u8;
	let mut count = 0u64;
	let start = Instant::now();
	while start.elapsed() < duration {
		for i in 0..10_000u64 {
			input[32..].copy_from_slice(&i.to_le_bytes());
			let out = sp_crypto_hashing::blake2_256(std::hint::black_box(&input));
			sink ^= out[0];
		}
		count += 10_000;
	}
	std::hint::black_box(sink);
	count as f64 / start.elapsed().as_secs_f64()
}

/// The node's mining loop at an unreachable difficulty, so it never stops early.
fn mining_loop_rate(duration: Duration) -> f64 {
	let mut miner = Miner::new(&H256::repeat_byte(7), U256::MAX).expect("non-zero difficulty");
	let mut nonce = 0u64;
	let mut count = 0u64;
	let start = Instant::now();
	while start.elapsed() < duration {
		// Same batch size as the node's mining threads.
		let found = miner.mine(nonce, 20_000);
		std::hint::black_box(found);
		nonce = nonce.wrapping_add(20_000);
		count += 20_000;
	}
	count as f64 / start.elapsed().as_secs_f64()
}

fn main() {
	let cli = Cli::parse();
	match cli.bench {
		Bench::Fl { sizes, repeats } => fl::report(&sizes, repeats),
		Bench::Kernels {
			params,
			clients,
			repeats,
		} => kernels::report(&params, clients, repeats),
		#[cfg(feature = "torch")]
		Bench::Train {
			data_dir,
			arch,
			samples,
			batch,
			threads,
		} => train::report(&data_dir, &arch, samples, batch, threads),
		#[cfg(feature = "torch")]
		Bench::Lazy {
			data_dir,
			clients,
			samples,
			rounds,
			rate_rounds,
			lazy_fraction,
			lazy_noise,
			inflate,
			snrs,
			extra_honest_keys,
			snr_db,
			threads,
			scheme,
			k,
			alpha,
			lr,
			momentum,
			svg,
		} => lazy::report(&lazy::Options {
			data_dir: &data_dir,
			clients,
			samples,
			rounds,
			rate_rounds,
			lazy_fraction,
			lazy_noise: &lazy_noise,
			inflate,
			snrs: &snrs,
			extra_honest_keys,
			snr_db,
			threads,
			lr,
			momentum,
			scheme: match scheme.as_str() {
				"iid" => blade_trainer::partition::Scheme::Iid,
				"k-labels" => blade_trainer::partition::Scheme::KLabels { k },
				"random-labels" => blade_trainer::partition::Scheme::RandomLabels { k },
				"dirichlet" => blade_trainer::partition::Scheme::Dirichlet { alpha },
				other => {
					panic!("--scheme {other:?}: use iid, k-labels, random-labels or dirichlet")
				}
			},
			svg: &svg,
		}),
		#[cfg(feature = "torch")]
		Bench::Paper {
			experiment,
			data_dir,
			out,
			clients,
			samples,
			rounds,
			epochs,
			batch,
			lr,
			momentum,
			weight_decay,
			threads,
			screen,
			free_riders,
		} => {
			let base = paper::Base {
				clients,
				samples,
				rounds,
				epochs,
				batch,
				lr,
				momentum,
				weight_decay,
				threads,
				screen,
				free_riders,
			};
			match experiment {
				PaperExperiment::Dp {
					epsilons,
					clip,
					decay,
					output_perturbation,
					no_dp_sgd,
					model,
					scheme,
					no_reference,
					name,
				} => {
					let split = match scheme.as_str() {
						"iid" => blade_trainer::partition::Scheme::Iid,
						"k-labels" => blade_trainer::partition::Scheme::KLabels { k: 2 },
						"random-labels" => blade_trainer::partition::Scheme::RandomLabels { k: 2 },
						other => panic!("--scheme {other:?}: use iid, k-labels or random-labels"),
					};
					paper::dp(
						&base,
						blade_trainer::registry::model(model.id())
							.expect("a named model has an id"),
						split,
						&scheme,
						&epsilons,
						clip,
						decay,
						output_perturbation,
						(
							!no_reference,
							!no_dp_sgd,
							&name.unwrap_or_else(|| format!("dp-{scheme}")),
						),
						&data_dir,
						&out,
					)
				}
				PaperExperiment::Attacks { shares } => {
					paper::attacks(&base, &shares, &data_dir, &out)
				}
				PaperExperiment::Niid {
					splits,
					name,
					label_sets,
				} => paper::niid(&base, &splits, label_sets, &name, &data_dir, &out),
				PaperExperiment::KSweep {
					thetas,
					ks,
					budget,
					block,
				} => paper::k_sweep(&base, &thetas, &ks, (budget, block), &data_dir, &out),
			}
		}
		Bench::Pow {
			seconds,
			repeats,
			difficulty,
		} => {
			let duration = Duration::from_secs_f64(seconds.max(0.1));
			let mut raw = 0f64;
			let mut looped = 0f64;
			for _ in 0..repeats.max(1) {
				raw = raw.max(raw_hash_rate(duration));
				looped = looped.max(mining_loop_rate(duration));
			}
			println!("pow: raw blake2b-256 (40 B input) : {:>12.0} H/s", raw);
			println!("pow: mining loop, 1 thread       : {:>12.0} H/s", looped);
			println!(
				"pow: loop / raw                  : {:>11.1} %",
				100.0 * looped / raw
			);
			println!(
				"pow: expected block time at difficulty {difficulty:.3e}, 1 thread: {:.2} s",
				difficulty / looped
			);
		}
	}
}
