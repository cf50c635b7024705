//! `blade-bench paper` (feature `torch`): the paper's experiments and ours beyond it, run
//! with the trainer's own pieces through `blade_trainer::fedsim`, each written as CSV (one
//! row per round) and SVG under `--out`, and printed.
//!
//! - `dp`: accuracy over rounds for several total epsilons, DP-SGD and output perturbation
//!   (Gaussian, Laplace), constant and adaptive noise (the paper's Fig. 2, with each curve's
//!   accounted epsilon), and the non-private run beside them;
//! - `k-sweep`: training loss after a fixed time budget against the number of rounds `K`
//!   for several `theta = t_T / t_B` (the paper's Fig. 3), beside the planner's choice;
//! - `attacks`: sign-flip, scaling and random updates at several shares under FedAvg,
//!   median, trimmed mean and Multi-Krum;
//! - `niid`: FedAvg in NIID-Bench's Fashion-MNIST configuration, IID, Dirichlet 0.5 and
//!   2 labels per client.

use std::{fmt::Write as _, path::Path};

use blade_trainer::{
	aggregation::{lowest_and_median, Rule},
	behaviour::Behaviour,
	data::{self, Dataset},
	fedsim::{self, Screening, Sim},
	model::Arch,
	partition::Scheme,
	plot::{line_chart, Series},
	runner::{Noise, PrivacyConfig},
	train::TrainConfig,
};

/// One curve: its label and the configuration.
pub struct Case {
	/// Label (legend and CSV).
	pub label: String,
	/// Configuration.
	pub sim: Sim,
}

const COLOURS: [&str; 8] = [
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn fmnist(dir: &Path) -> (Dataset, Dataset) {
	data::load_fashion_mnist(dir, true).expect("Fashion-MNIST (scripts/setup installs it)")
}

/// Run every case, write `NAME.csv` and `NAME.svg` in `out`, print a summary line per case.
pub fn run_cases(name: &str, title: &str, cases: &[Case], dir: &Path, out: &Path) {
	let (train_set, test) = fmnist(dir);
	std::fs::create_dir_all(out).expect("output directory");
	// `kept`: updates the contribution screen kept that round (empty without a screen).
	let mut csv = String::from("case,round,accuracy,train_loss,epsilon,delta,noise,seconds,kept\n");
	let mut series = Vec::new();
	for (i, case) in cases.iter().enumerate() {
		let outcome = fedsim::run(&case.sim, &train_set, &test, |round, acc| {
			eprintln!(
				"{name}: {} round {} accuracy {:.4}",
				case.label,
				round + 1,
				acc
			);
		})
		.unwrap_or_else(|e| panic!("{}: {e}", case.label));
		let (eps, delta) = outcome.privacy.unwrap_or((f64::INFINITY, 0.0));
		for (round, (acc, loss)) in outcome.accuracy.iter().zip(&outcome.loss).enumerate() {
			writeln!(
				csv,
				"{},{},{:.4},{:.4},{:.4},{:e},{:.4},{:.1},{}",
				case.label,
				round + 1,
				acc,
				loss,
				eps,
				delta,
				outcome.noise.unwrap_or(0.0),
				outcome.seconds,
				outcome
					.kept
					.get(round)
					.map_or(String::new(), |k| k.to_string())
			)
			.expect("string");
		}
		if !outcome.kept.is_empty() {
			let honest = case.sim.clients - case.sim.attack.map_or(0, |(_, n)| n);
			let rounds: Vec<String> = outcome
				.kept
				.iter()
				.zip(&outcome.alignment)
				.map(|(k, z)| {
					let (low, mid) = lowest_and_median(&z[..honest]);
					format!("{k} (z {low:.2}/{mid:.2})")
				})
				.collect();
			println!(
				"{name}: {:<44} screen kept per round (lowest/median honest z): {}",
				case.label,
				rounds.join(", ")
			);
			let evidence = evidence(&outcome.alignment, case.sim.clients);
			if !evidence.is_empty() {
				let (lowest, median) = lowest_and_median(&evidence[..honest]);
				let riders = evidence[honest..].iter().copied().reduce(f64::max);
				println!(
					"{name}: {:<44} task-level evidence from round 3 (sum of z / sqrt(rounds)): honest lowest {lowest:.2}, median {median:.2}; free riders highest {}",
					case.label,
					riders.map_or("-".to_string(), |z| format!("{z:.2}"))
				);
			}
		}
		let last = outcome.accuracy.last().copied().unwrap_or(0.0);
		let best = outcome.accuracy.iter().copied().fold(0.0, f64::max);
		let privacy = match outcome.privacy {
			Some((e, d)) => format!("epsilon {e:.3} at delta {d:e}"),
			None => "no noise".into(),
		};
		println!(
			"{name}: {:<44} final {:.2} % (best {:.2} %), {privacy}, first-round noise {}, {:.0} s",
			case.label,
			100.0 * last,
			100.0 * best,
			outcome.noise.map_or("-".to_string(), |z| format!("{z:.3}")),
			outcome.seconds
		);
		series.push(Series {
			label: match outcome.privacy {
				Some((e, d)) => format!("{} (eps {e:.2}, delta {d:e})", case.label),
				None => case.label.clone(),
			},
			colour: COLOURS[i % COLOURS.len()],
			points: outcome
				.accuracy
				.iter()
				.enumerate()
				.map(|(r, a)| ((r + 1) as f64, 100.0 * a))
				.collect(),
			dashed: outcome.privacy.is_none(),
		});
		// After every case, so that a run stopped part way keeps the cases it finished.
		write_curves(name, title, cases, &csv, &series, out);
	}
	println!("{name}: wrote {}/{name}.csv and .svg", out.display());
}

/// The CSV and the accuracy-over-rounds SVG of the cases run so far.
fn write_curves(name: &str, title: &str, cases: &[Case], csv: &str, series: &[Series], out: &Path) {
	std::fs::write(out.join(format!("{name}.csv")), csv).expect("csv");
	let rounds = cases.iter().map(|c| c.sim.rounds).max().unwrap_or(1) as f64;
	let low = series
		.iter()
		.flat_map(|s| s.points.iter().map(|p| p.1))
		.fold(100.0, f64::min);
	let svg = line_chart(
		title,
		"round",
		"test accuracy (%)",
		(1.0, rounds.max(2.0)),
		((low / 10.0).floor() * 10.0, 100.0),
		series,
	);
	std::fs::write(out.join(format!("{name}.svg")), svg).expect("svg");
}

/// Every trainer's evidence accumulated over rounds 3 to the last (the rounds a per-round
/// screen cannot decide under DP): the sum of its alignments over the square root of their
/// count, in trainer order (the attackers last); empty with fewer than three rounds.
fn evidence(alignment: &[Vec<f64>], clients: usize) -> Vec<f64> {
	let rounds = &alignment[alignment.len().min(2)..];
	if rounds.is_empty() {
		return Vec::new();
	}
	(0..clients)
		.map(|k| {
			let (sum, count) = rounds
				.iter()
				.map(|r| r[k])
				.filter(|z| !z.is_nan())
				.fold((0.0, 0usize), |(s, c), z| (s + z, c + 1));
			sum / (count.max(1) as f64).sqrt()
		})
		.collect()
}

/// Common settings of the experiments.
pub struct Base {
	/// Trainers.
	pub clients: usize,
	/// Samples per trainer (0: the whole shard).
	pub samples: usize,
	/// Rounds.
	pub rounds: usize,
	/// Local epochs.
	pub epochs: usize,
	/// Batch (DP-SGD: expected batch).
	pub batch: usize,
	/// Learning rate.
	pub lr: f64,
	/// Momentum.
	pub momentum: f64,
	/// SGD weight decay (non-private runs only).
	pub weight_decay: f64,
	/// libtorch threads.
	pub threads: usize,
	/// Whether the chain's contribution screen runs, and decides (see `Sim::screen`).
	pub screen: Screening,
	/// The last this many trainers send Gaussian noise as long as their update (free
	/// riders; `Behaviour::Random`).
	pub free_riders: usize,
}

impl Base {
	fn sim(&self, arch: Arch, scheme: Scheme, privacy: PrivacyConfig) -> Sim {
		Sim {
			clients: self.clients,
			samples: self.samples,
			scheme,
			arch,
			train: TrainConfig {
				epochs: self.epochs,
				lr: self.lr,
				batch_size: self.batch,
				momentum: self.momentum,
				weight_decay: self.weight_decay,
				threads: self.threads,
				seed: 0,
			},
			rounds: self.rounds,
			rule: Rule::FedAvg,
			privacy,
			floor: None,
			attack: (self.free_riders > 0).then_some((Behaviour::Random, self.free_riders)),
			seed: 1,
			screen: self.screen,
		}
	}
}

fn no_noise() -> PrivacyConfig {
	PrivacyConfig {
		noise: Noise::Off,
		..PrivacyConfig::default()
	}
}

/// Fig. 2 and the DP goal: DP-SGD at each of `epsilons` (total, per trainer), constant and
/// adaptive (`decay`), output perturbation (Gaussian, Laplace) at the largest epsilon, and
/// the non-private run (`reference`); on `scheme`. `dp_sgd` false leaves the DP-SGD
/// curves out.
#[allow(clippy::too_many_arguments)]
pub fn dp(
	base: &Base,
	arch: Arch,
	scheme: Scheme,
	scheme_name: &str,
	epsilons: &[f64],
	clip: f64,
	decay: f64,
	output_perturbation: bool,
	(reference, dp_sgd, name): (bool, bool, &str),
	dir: &Path,
	out: &Path,
) {
	let mut cases = Vec::new();
	if reference {
		cases.push(Case {
			label: "no DP".into(),
			sim: base.sim(arch, scheme, no_noise()),
		});
	}
	for eps in epsilons.iter().filter(|_| dp_sgd) {
		let privacy = PrivacyConfig {
			noise: Noise::DpSgd,
			epsilon: Some(*eps),
			delta: 1e-5,
			clip,
			noise_multiplier: None,
			decay: 1.0,
		};
		cases.push(Case {
			label: format!("DP-SGD eps {eps} constant"),
			sim: base.sim(arch, scheme, privacy),
		});
		if decay < 1.0 {
			cases.push(Case {
				label: format!("DP-SGD eps {eps} adaptive {decay}"),
				sim: base.sim(arch, scheme, PrivacyConfig { decay, ..privacy }),
			});
		}
	}
	if output_perturbation {
		let eps = epsilons.iter().copied().fold(0.0, f64::max);
		for (noise, name) in [(Noise::Gaussian, "Gaussian"), (Noise::Laplace, "Laplace")] {
			for d in [1.0, decay] {
				let privacy = PrivacyConfig {
					noise,
					epsilon: Some(eps),
					delta: 1e-5,
					clip: 1.0,
					noise_multiplier: None,
					decay: d,
				};
				cases.push(Case {
					label: format!(
						"output {name} eps {eps} {}",
						if d < 1.0 { "adaptive" } else { "constant" }
					),
					sim: base.sim(arch, scheme, privacy),
				});
			}
		}
	}
	run_cases(
		name,
		&format!(
			"Fashion-MNIST, {} trainers ({scheme_name}), {arch:?}: accuracy vs total epsilon per trainer",
			base.clients
		),
		&cases,
		dir,
		out,
	);
}

/// Beyond the paper: attackers at each share in `shares` under each rule.
pub fn attacks(base: &Base, shares: &[f64], dir: &Path, out: &Path) {
	let (train_set, test) = fmnist(dir);
	std::fs::create_dir_all(out).expect("output directory");
	let rules = [
		("FedAvg", Rule::FedAvg),
		("median", Rule::Median),
		("trimmed mean 20 %", Rule::TrimmedMean { trim: 0.2 }),
	];
	let attacks = [
		("sign-flip", Behaviour::SignFlip),
		("scale x10", Behaviour::Scale { factor: 10.0 }),
		("random", Behaviour::Random),
	];
	let mut csv = String::from("attack,share,rule,attackers,final_accuracy\n");
	let mut table = String::new();
	for (attack_name, behaviour) in attacks {
		for share in shares {
			let count = ((base.clients as f64) * share).round() as usize;
			let mut row = format!("| {attack_name} | {:.0} % |", share * 100.0);
			let krum = Rule::MultiKrum {
				byzantine: count.max(1).min(base.clients.saturating_sub(3) / 2),
			};
			for (rule_name, rule) in rules.iter().copied().chain([("Multi-Krum", krum)]) {
				let mut sim = base.sim(Arch::Mlp { hidden: 128 }, Scheme::Iid, no_noise());
				sim.rule = rule;
				sim.attack = (count > 0).then_some((behaviour, count));
				let outcome = fedsim::run(&sim, &train_set, &test, |_, _| {})
					.unwrap_or_else(|e| panic!("{attack_name} {share} {rule_name}: {e}"));
				let acc = outcome.accuracy.last().copied().unwrap_or(0.0);
				println!(
					"attacks: {attack_name:<10} {:>3.0} % ({count} of {}) {rule_name:<18} final accuracy {:.2} % ({:.0} s)",
					share * 100.0,
					base.clients,
					100.0 * acc,
					outcome.seconds
				);
				writeln!(csv, "{attack_name},{share},{rule_name},{count},{acc:.4}")
					.expect("string");
				write!(row, " {:.2} |", 100.0 * acc).expect("string");
			}
			writeln!(table, "{row}").expect("string");
		}
	}
	std::fs::write(out.join("attacks.csv"), csv).expect("csv");
	std::fs::write(
		out.join("attacks.md"),
		format!(
			"| attack | share | FedAvg | median | trimmed mean 20 % | Multi-Krum |\n|---|---|---|---|---|---|\n{table}"
		),
	)
	.expect("md");
	println!(
		"attacks: wrote {}/attacks.csv and attacks.md",
		out.display()
	);
}

/// NIID-Bench's Fashion-MNIST configuration (10 clients, its simple CNN, 10 local epochs,
/// batch 64, lr 0.01, momentum 0.9): each of `splits` (`iid`, `dirichlet` for Dirichlet
/// 0.5, `random-labels` for NIID-Bench's 2 labels per client, `k-labels` for 2 labels in
/// disjoint groups), written as `name`.csv and .svg.
pub fn niid(
	base: &Base,
	splits: &[String],
	label_sets: Option<blade_trainer::partition::LabelSets>,
	name: &str,
	dir: &Path,
	out: &Path,
) {
	let cases: Vec<Case> = splits
		.iter()
		.map(|split| match split.as_str() {
			"iid" => ("IID", Scheme::Iid),
			"dirichlet" => ("Dirichlet 0.5", Scheme::Dirichlet { alpha: 0.5 }),
			"random-labels" => ("2 labels", Scheme::RandomLabels { k: 2 }),
			"k-labels" => ("2 labels, disjoint groups", Scheme::KLabels { k: 2 }),
			"label-sets" => (
				"given label sets",
				Scheme::LabelSets(label_sets.expect("--splits label-sets needs --label-sets")),
			),
			other => panic!(
				"--splits {other:?}: use iid, dirichlet, random-labels, k-labels or label-sets"
			),
		})
		.map(|(label, scheme)| Case {
			label: label.into(),
			sim: base.sim(Arch::SimpleCnn, scheme, no_noise()),
		})
		.collect();
	run_cases(
		name,
		"FedAvg on Fashion-MNIST, NIID-Bench configuration",
		&cases,
		dir,
		out,
	);
}

/// One point of the K sweep.
struct SweepPoint {
	theta: f64,
	rounds: u32,
	epochs: u32,
	loss: f64,
}

/// The paper's Fig. 3: with a budget of `budget` time units, blocks of `t_b` and epochs of
/// `theta t_b`, each `K` in `ks` gets `tau = floor((budget / K - t_b) / t_T)` local epochs;
/// the global model's test loss after the run, per `theta`. Then the planner's choice
/// among the same `K` (its defaults, and its two constants fitted to this sweep) against
/// the measured optimum.
pub fn k_sweep(
	base: &Base,
	thetas: &[f64],
	ks: &[u32],
	(budget, t_b): (f64, f64),
	dir: &Path,
	out: &Path,
) {
	use blade_trainer::planner::{bound, rounds_within};
	let (train_set, test) = fmnist(dir);
	std::fs::create_dir_all(out).expect("output directory");
	let mut points = Vec::new();
	let mut csv = String::from("theta,rounds,epochs,test_loss,accuracy,seconds\n");
	for theta in thetas {
		let t_t = theta * t_b;
		for &k in ks {
			let tau = ((budget / f64::from(k) - t_b) / t_t).floor();
			if tau < 1.0 {
				continue;
			}
			let tau = tau as u32;
			let mut sim = base.sim(Arch::Mlp { hidden: 32 }, Scheme::Iid, no_noise());
			sim.rounds = k as usize;
			sim.train.epochs = tau as usize;
			let o = fedsim::run(&sim, &train_set, &test, |_, _| {}).expect("run");
			let loss = o.test_loss.last().copied().unwrap_or(f64::NAN);
			let accuracy = o.accuracy.last().copied().unwrap_or(0.0);
			println!(
				"k-sweep: theta {theta:<4} K {k:>3} tau {tau:>3}: test loss {loss:.4}, accuracy {:.2} % ({:.0} s)",
				100.0 * accuracy,
				o.seconds
			);
			writeln!(
				csv,
				"{theta},{k},{tau},{loss:.5},{accuracy:.4},{:.1}",
				o.seconds
			)
			.expect("string");
			points.push(SweepPoint {
				theta: *theta,
				rounds: k,
				epochs: tau,
				loss,
			});
		}
	}
	std::fs::write(out.join("k-sweep.csv"), &csv).expect("csv");
	// The planner's pick among the swept K, and its regret in measured loss.
	let pick = |drift: f64, warmup: f64, theta: f64| -> Option<&SweepPoint> {
		points
			.iter()
			.filter(|p| p.theta == theta)
			.filter(|p| rounds_within(budget, p.epochs, theta * t_b, t_b) >= p.rounds)
			.min_by(|a, b| {
				bound(a.rounds, a.epochs, drift, warmup)
					.total_cmp(&bound(b.rounds, b.epochs, drift, warmup))
			})
	};
	let best = |theta: f64| -> Option<&SweepPoint> {
		points
			.iter()
			.filter(|p| p.theta == theta)
			.min_by(|a, b| a.loss.total_cmp(&b.loss))
	};
	let regret = |drift: f64, warmup: f64| -> f64 {
		thetas
			.iter()
			.filter_map(|t| Some(pick(drift, warmup, *t)?.loss / best(*t)?.loss - 1.0))
			.sum::<f64>()
	};
	let mut fitted = (f64::INFINITY, 0.0, 0.0);
	for drift in [0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5] {
		for warmup in [0.0, 1.0, 2.0, 4.0, 8.0, 16.0] {
			let r = regret(drift, warmup);
			if r < fitted.0 {
				fitted = (r, drift, warmup);
			}
		}
	}
	let mut table = String::from(
		"| theta | measured best K (tau) | loss | planner, defaults: K (tau) | loss | planner, fitted: K (tau) | loss |\n|---|---|---|---|---|---|---|\n",
	);
	for theta in thetas {
		let (Some(b), Some(d), Some(f)) = (
			best(*theta),
			pick(
				blade_trainer::planner::DRIFT,
				blade_trainer::planner::WARMUP,
				*theta,
			),
			pick(fitted.1, fitted.2, *theta),
		) else {
			continue;
		};
		let line = format!(
			"| {theta} | {} ({}) | {:.4} | {} ({}) | {:.4} | {} ({}) | {:.4} |",
			b.rounds, b.epochs, b.loss, d.rounds, d.epochs, d.loss, f.rounds, f.epochs, f.loss
		);
		println!("k-sweep: {line}");
		table.push_str(&line);
		table.push('\n');
	}
	let summary = format!(
		"{table}\nFitted constants: drift {}, warmup {} (summed relative regret {:.4}; defaults: {:.4}).\n",
		fitted.1,
		fitted.2,
		fitted.0,
		regret(
			blade_trainer::planner::DRIFT,
			blade_trainer::planner::WARMUP
		)
	);
	println!("k-sweep: {}", summary.lines().last().unwrap_or_default());
	std::fs::write(out.join("k-sweep.md"), summary).expect("md");
	let series: Vec<Series> = thetas
		.iter()
		.enumerate()
		.map(|(i, theta)| Series {
			label: format!("theta = {theta}"),
			colour: COLOURS[i % COLOURS.len()],
			points: points
				.iter()
				.filter(|p| p.theta == *theta)
				.map(|p| (f64::from(p.rounds), p.loss))
				.collect(),
			dashed: false,
		})
		.collect();
	let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
		(lo.min(p.loss), hi.max(p.loss))
	});
	let kmax = ks.iter().copied().max().unwrap_or(1);
	let svg = line_chart(
		&format!(
			"Test loss after a budget of {budget} (t_B = {t_b}) vs rounds K, {} trainers",
			base.clients
		),
		"rounds K",
		"test loss",
		(0.0, f64::from(kmax)),
		(lo * 0.95, hi * 1.05),
		&series,
	);
	std::fs::write(out.join("k-sweep.svg"), svg).expect("svg");
	println!("k-sweep: wrote {}/k-sweep.csv, .md and .svg", out.display());
}
