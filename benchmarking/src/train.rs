//! `blade-bench train` (feature `torch`): training throughput of the Rust trainer against
//! PyTorch from Python on the same model, data, batch size, optimiser and thread count.

use std::{path::Path, process::Command};

use blade_trainer::{
	data,
	model::{Arch, Model, Shape},
	train::{to_tensors, train, TrainConfig},
};
use tch::Device;

/// Run both and print samples/s and the ratio.
pub fn report(data_dir: &Path, arch: &str, samples: usize, batch: usize, threads: usize) {
	let (train_set, _) = data::load_fashion_mnist(data_dir, true).expect("Fashion-MNIST");
	let subset: Vec<usize> = (0..samples.min(train_set.len())).collect();
	let tensors =
		to_tensors(&train_set.subset(&subset).expect("subset"), Device::Cpu).expect("tensors");
	let shape = Shape {
		channels: 1,
		height: 28,
		width: 28,
		classes: 10,
	};
	let model_arch = if arch == "mlp" {
		Arch::Mlp { hidden: 128 }
	} else {
		Arch::Cnn
	};
	let config = TrainConfig {
		epochs: 1,
		lr: 0.05,
		batch_size: batch,
		momentum: 0.9,
		weight_decay: 0.0,
		threads,
		seed: 0,
	};
	// Warm-up pass (allocator, kernels), then the measured epoch.
	let mut model = Model::new(model_arch, shape, Device::Cpu, 0).expect("model");
	train(&mut model, &tensors, &config).expect("warm-up");
	let mut model = Model::new(model_arch, shape, Device::Cpu, 0).expect("model");
	let rust = train(&mut model, &tensors, &config).expect("training");

	let python = std::env::var("BLADE_VENV")
		.map(|v| format!("{v}/bin/python"))
		.unwrap_or_else(|_| "python3".into());
	let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/train_throughput.py");
	let run = || {
		let out = Command::new(&python)
			.arg(&script)
			.args([
				"--data-dir",
				&data_dir.display().to_string(),
				"--arch",
				arch,
			])
			.args([
				"--samples",
				&subset.len().to_string(),
				"--batch",
				&batch.to_string(),
			])
			.args(["--threads", &threads.max(1).to_string()])
			.output()
			.expect("python runs");
		assert!(
			out.status.success(),
			"{}",
			String::from_utf8_lossy(&out.stderr)
		);
		let line = String::from_utf8_lossy(&out.stdout)
			.lines()
			.last()
			.unwrap_or("")
			.to_string();
		let v: serde_json::Value = serde_json::from_str(&line).expect("JSON from the script");
		v["samples_per_sec"].as_f64().unwrap_or(0.0)
	};
	run(); // warm-up
	let torch = run();
	println!(
		"train {arch}: {} samples, batch {batch}, {} thread(s): rust (tch) {:.0} samples/s, \
		 pytorch {:.0} samples/s, ratio {:.3}",
		subset.len(),
		threads.max(1),
		rust.samples_per_sec,
		torch,
		rust.samples_per_sec / torch
	);
}
