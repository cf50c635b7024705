//! The main job end to end through `scripts/demo` itself, smaller: three mining nodes, six
//! trainers (two lazy, one sign flipper, three honest), two rounds, the
//! council motion and the sudo call mid-task. The task must settle with both copiers
//! proven and nobody else, the sign flipper in no aggregate, the report and its figures
//! written, and the exported model must load in PyTorch and score on the full test set
//! what the trainers reported on their evaluation samples.
#![cfg(feature = "torch")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	net::TcpListener,
	path::{Path, PathBuf},
	process::Command,
};

use blade_trainer::{data, model, registry, train};
use common::{node_bin, trainer_bin};

/// A base port with the 23 ports the demo uses after it free (RPC +0..2, p2p +10..12,
/// Prometheus +20..22).
fn free_base() -> u16 {
	for attempt in 0..200u16 {
		let base = 20_000 + (std::process::id() as u16 % 200 + attempt) * 150 % 40_000;
		let all = [0u16, 1, 2, 10, 11, 12, 20, 21, 22]
			.iter()
			.all(|o| TcpListener::bind(("0.0.0.0", base + o)).is_ok());
		if all {
			return base;
		}
	}
	panic!("no free port range for the demo");
}

fn repo_root() -> PathBuf {
	Path::new(env!("CARGO_MANIFEST_DIR"))
		.parent()
		.unwrap()
		.to_path_buf()
}

/// The test accuracy (fraction) in the last row of the report's rounds table.
fn last_round_accuracy(report: &str) -> f64 {
	report
		.lines()
		.skip_while(|l| !l.starts_with("## Rounds"))
		.take_while(|l| !l.starts_with("Forks"))
		.filter(|l| l.starts_with("| ") && l.ends_with(" % |"))
		.last()
		.and_then(|l| {
			l.trim_end_matches(" % |")
				.rsplit("| ")
				.next()?
				.parse::<f64>()
				.ok()
		})
		.map(|p| p / 100.0)
		.expect("a rounds row with an accuracy")
}

#[test]
fn the_demo_settles_a_task_on_three_nodes_and_reports_it() {
	let dir = tempfile::tempdir().unwrap();
	let out = dir.path().join("demo");
	let log = std::fs::File::create(dir.path().join("demo.log")).unwrap();
	let status = Command::new("bash")
		.arg(repo_root().join("scripts/demo"))
		.args([
			"--trainers",
			"6",
			"--lazy-percent",
			"34",
			"--dp-trainers",
			"0",
		])
		.args([
			"--rounds",
			"2",
			"--samples",
			"800",
			"--govern-at",
			"30",
			"--no-wait",
		])
		.args(["--base-port", &free_base().to_string()])
		.arg("--out")
		.arg(&out)
		.arg("--node-bin")
		.arg(node_bin())
		.arg("--trainer-bin")
		.arg(trainer_bin())
		.current_dir(repo_root())
		.stdout(log.try_clone().unwrap())
		.stderr(log)
		.status()
		.unwrap();
	let shown = || std::fs::read_to_string(dir.path().join("demo.log")).unwrap_or_default();
	assert!(status.success(), "the demo failed:\n{}", shown());

	let report = std::fs::read_to_string(out.join("report.md")).unwrap();
	println!("{report}");
	assert!(
		report.contains("2 of 2 selected lazy trainers proven and slashed")
			&& report.contains("; 0 other trainers proven lazy"),
		"both copiers proven, nobody else:\n{report}"
	);
	let rows: Vec<&str> = report
		.lines()
		.filter(|l| l.starts_with("| ") && l.contains(" of 2 |"))
		.collect();
	assert!(
		rows.iter()
			.filter(|l| l.contains("| sign-flip |"))
			.all(|l| l.contains("| 0 of 2 |")),
		"the sign flipper is in no aggregate:\n{report}"
	);
	assert!(
		rows.iter()
			.filter(|l| l.contains("| honest |"))
			.all(|l| l.contains("| 2 of 2 |")),
		"honest trainers are in every aggregate:\n{report}"
	);
	assert!(report.contains("by a council motion at block") && report.contains("by sudo at block"));
	for figure in ["report-rounds.svg", "report-trainers.svg"] {
		let svg = std::fs::read_to_string(out.join(figure)).unwrap();
		assert!(
			svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
			"{figure}"
		);
	}

	// The model: PyTorch loads it, and it scores on all 10 000 test images what the
	// trainers measured on their 2 000 evaluation samples.
	let path = out.join("model.safetensors");
	let python =
		std::env::var("HOME").map(|h| PathBuf::from(h).join(".cache/blade-fl/venv/bin/python"));
	if let Some(python) = python.ok().filter(|p| p.exists()) {
		let loaded = Command::new(python)
			.args([
				"-c",
				"import sys; from safetensors.torch import load_file; \
				 print(sum(t.numel() for t in load_file(sys.argv[1]).values()))",
			])
			.arg(&path)
			.output()
			.unwrap();
		assert!(
			loaded.status.success(),
			"{}",
			String::from_utf8_lossy(&loaded.stderr)
		);
		let params: u64 = String::from_utf8_lossy(&loaded.stdout)
			.trim()
			.parse()
			.unwrap();
		assert_eq!(params, registry::param_count(1, 1).unwrap() as u64);
	}
	let mut net = model::Model::new(
		registry::model(1).unwrap(),
		registry::shape(1).unwrap(),
		tch::Device::Cpu,
		7,
	)
	.unwrap();
	net.load_safetensors(&path).unwrap();
	let (_, test) =
		data::load_fashion_mnist(Path::new(data::DEBIAN_FASHION_MNIST_DIR), false).unwrap();
	let test = train::to_tensors(&test, tch::Device::Cpu).unwrap();
	let accuracy = train::evaluate(&net, &test, 500).unwrap().accuracy;
	let reported = last_round_accuracy(&report);
	assert!(
		(accuracy - reported).abs() < 0.04,
		"full test set {accuracy:.4} against the trainers' {reported:.4}"
	);
}
