//! `blade-bench lazy` (feature `torch`): the paper's lazy-client figures with the trainer's
//! real training, watermarking, detection and aggregation on Fashion-MNIST:
//! detection rates at 3/6/9/12/15/20 dB over many trials (with 95 % Wilson intervals) for
//! plain copies, noisy copies and the energy-inflating copier, by the chain's verdict and
//! (for comparison) the plain correlation detector, with false alarms over at least
//! 10 000 honest tests per SNR; and the
//! accuracy of FedAvg with 0 % lazy clients, 30 % lazy clients undetected, and 30 % lazy
//! clients caught by their PN signatures and excluded. Writes an SVG of the accuracy curves.

use std::path::Path;

use blade_trainer::{
	data,
	experiment::{detection_rates, federate, Round, Setup},
	model::Arch,
	train::TrainConfig,
};

use blade_trainer::plot::{line_chart, Series};

/// 95 % Wilson score interval of `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
	if n == 0 {
		return (0.0, 1.0);
	}
	let (k, n, z) = (k as f64, n as f64, 1.96f64);
	let p = k / n;
	let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
	let half = z * ((p * (1.0 - p) + z * z / (4.0 * n)) / n).sqrt() / (1.0 + z * z / n);
	((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Options of the run.
pub struct Options<'a> {
	pub data_dir: &'a Path,
	pub clients: usize,
	pub samples: usize,
	pub rounds: usize,
	pub rate_rounds: usize,
	pub lazy_fraction: f64,
	pub lazy_noise: &'a [f64],
	pub inflate: f64,
	pub snrs: &'a [f64],
	pub extra_honest_keys: usize,
	pub snr_db: f64,
	pub threads: usize,
	pub lr: f64,
	pub momentum: f64,
	pub scheme: blade_trainer::partition::Scheme,
	pub svg: &'a Path,
}

pub fn report(o: &Options) {
	let (train_set, test) = data::load_fashion_mnist(o.data_dir, true).expect("Fashion-MNIST");
	let setup = Setup {
		clients: o.clients,
		samples: o.samples,
		scheme: o.scheme,
		train: TrainConfig {
			threads: o.threads,
			lr: o.lr,
			momentum: o.momentum,
			..TrainConfig::default()
		},
		arch: Arch::Mlp { hidden: 32 },
		snr_db: o.snr_db,
		lazy_noise: o.lazy_noise.first().copied().unwrap_or(1.0),
		fpr: 1e-6,
		chain_z_centi: 600,
		inflate: None,
		extra_honest_keys: o.extra_honest_keys,
		seed: 2026,
	};
	println!(
		"lazy: Fashion-MNIST, {} clients x {} samples ({:?}), MLP-32 (25 450 parameters), 1 local epoch, lr {}, momentum {}, batch 64; detector fpr 1e-6 and the runtime's 6-sigma z-test",
		o.clients, o.samples, o.scheme, o.lr, o.momentum
	);
	println!(
		"lazy: detection over {} rounds by the chain's verdict (own watermark removed, sign statistic, 6 sigma); paper, Fashion-MNIST: 0.931 / 0.989 / 0.999 at 9 / 6 / 3 dB",
		o.rate_rounds
	);
	println!("lazy:  copier                SNR   copies caught  rate     95% interval        plain corr.  false alarms (honest tests, 95% upper bound)");
	let mut copiers: Vec<(String, Setup)> = o
		.lazy_noise
		.iter()
		.map(|&noise| {
			let label = if noise == 0.0 {
				"plain copy".to_string()
			} else {
				format!("noisy copy {noise}x")
			};
			let setup = Setup {
				lazy_noise: noise,
				..setup.clone()
			};
			(label, setup)
		})
		.collect();
	copiers.push((
		format!("inflating {}x", o.inflate),
		Setup {
			lazy_noise: 0.0,
			inflate: Some(o.inflate),
			..setup.clone()
		},
	));
	for (label, setup) in &copiers {
		let rates = detection_rates(setup, &train_set, &test, o.rate_rounds, o.snrs, |r| {
			eprint!(
				"\rdetection rates, {label}: round {}/{}",
				r + 1,
				o.rate_rounds
			)
		})
		.expect("detection rates");
		eprintln!();
		for r in &rates {
			let (lo, hi) = wilson(r.caught, r.trials);
			let (_, fa_hi) = wilson(r.false_alarms, r.honest_tests);
			println!(
				"lazy: {label:<20} {:>4} dB  {:>6} {:>6}  {:.4}  [{:.4}, {:.4}]   {:>6}       {} / {} (< {:.1e})",
				r.snr_db,
				r.trials,
				r.caught,
				r.caught as f64 / r.trials as f64,
				lo,
				hi,
				r.caught_detector,
				r.false_alarms,
				r.honest_tests,
				fa_hi
			);
		}
	}
	let lazy = ((o.clients as f64) * o.lazy_fraction).round() as usize;
	let mut runs = vec![("no lazy clients".to_string(), 0, false, 1.0)];
	for &noise in o.lazy_noise {
		runs.push((
			format!("{lazy}/{} lazy, noise {noise}x, undetected", o.clients),
			lazy,
			false,
			noise,
		));
		runs.push((
			format!("{lazy}/{} lazy, noise {noise}x, PN detection", o.clients),
			lazy,
			true,
			noise,
		));
	}
	const COLOURS: [&str; 7] = [
		"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#17becf", "#9467bd", "#8c564b",
	];
	let mut curves = Vec::new();
	for (i, (label, lazy, detect, noise)) in runs.into_iter().enumerate() {
		let setup = Setup {
			lazy_noise: noise,
			..setup.clone()
		};
		let rounds = federate(
			&setup,
			&train_set,
			&test,
			o.rounds,
			lazy,
			detect,
			|r, round| {
				eprint!(
					"\r{label}: round {}/{} accuracy {:.4}",
					r + 1,
					o.rounds,
					round.accuracy
				)
			},
		)
		.expect("federated run");
		eprintln!();
		curves.push((label, COLOURS[i % COLOURS.len()], rounds));
	}
	// Non-IID accuracy swings from round to round: average the last five rounds.
	let final_acc = |rounds: &[Round]| {
		let tail = &rounds[rounds.len().saturating_sub(5)..];
		tail.iter().map(|r| r.accuracy).sum::<f64>() / tail.len().max(1) as f64
	};
	let base = final_acc(&curves[0].2);
	println!(
		"lazy: test accuracy, mean of rounds {}-{} (paper: 30 % lazy clients cost 22.1 %, PN detection gains 18 %)",
		o.rounds.saturating_sub(4),
		o.rounds
	);
	for (label, _, rounds) in &curves {
		let acc = final_acc(rounds);
		let caught: usize = rounds.iter().map(|r| r.caught).sum();
		let submitted: usize = rounds.iter().map(|r| r.lazy).sum();
		let alarms: usize = rounds.iter().map(|r| r.false_alarms).sum();
		println!(
			"lazy:   {label:<42} {acc:.4}  drop {:>5.2} points ({:>5.1} % relative); lazy updates {submitted}, caught {caught}, false alarms {alarms}",
			100.0 * (base - acc),
			100.0 * (base - acc) / base
		);
	}
	let series: Vec<Series> = curves
		.iter()
		.map(|(label, colour, rounds)| Series {
			label: label.clone(),
			colour,
			points: rounds
				.iter()
				.enumerate()
				.map(|(i, r)| ((i + 1) as f64, r.accuracy))
				.collect(),
			dashed: false,
		})
		.collect();
	let lazy = ((o.clients as f64) * o.lazy_fraction).round() as usize;
	let y_min = curves
		.iter()
		.flat_map(|(_, _, r)| r.iter().map(|x| x.accuracy))
		.fold(1.0f64, f64::min);
	let svg = line_chart(
		&format!(
			"Fashion-MNIST FedAvg, {} clients, {lazy} lazy, PN {} dB",
			o.clients, o.snr_db
		),
		"round",
		"test accuracy",
		(1.0, o.rounds as f64),
		((y_min - 0.05).clamp(0.0, 0.9), 1.0),
		&series,
	);
	if let Some(parent) = o.svg.parent() {
		std::fs::create_dir_all(parent).expect("output directory");
	}
	std::fs::write(o.svg, svg).expect("writing the SVG");
	println!("lazy: accuracy curves written to {}", o.svg.display());
}
