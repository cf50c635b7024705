//! The `blade-trainer` binary: two separate processes with different thread counts
//! aggregate the same blobs into the same bytes and hash; bad input fails clearly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use blade_fl_primitives::blob::Codec;
use blade_trainer::codec;

fn bin() -> Command {
	Command::new(env!("CARGO_BIN_EXE_blade-trainer"))
}

#[test]
fn aggregation_is_bit_exact_across_processes_and_thread_counts() {
	let dir = tempfile::tempdir().unwrap();
	let mut paths = Vec::new();
	for k in 0..7u32 {
		let values: Vec<f32> = (0..100_000u32)
			.map(|i| ((i.wrapping_mul(2654435761) ^ k) % 1000) as f32 * 1e-3 - 0.5)
			.collect();
		let path = dir.path().join(format!("u{k}.blob"));
		std::fs::write(&path, codec::encode(3, 1, Codec::F32, &values).unwrap()).unwrap();
		paths.push(path);
	}
	for rule in ["fedavg", "median", "trimmed-mean", "multi-krum"] {
		let mut hashes = Vec::new();
		for threads in ["1", "3"] {
			let out = dir.path().join(format!("{rule}-{threads}.blob"));
			let output = bin()
				.env("RAYON_NUM_THREADS", threads)
				.args([
					"aggregate",
					"--rule",
					rule,
					"--weights",
					"1,2,3,4,5,6,7",
					"--out",
				])
				.arg(&out)
				.args(&paths)
				.output()
				.unwrap();
			assert!(
				output.status.success(),
				"{}",
				String::from_utf8_lossy(&output.stderr)
			);
			let hash = String::from_utf8(output.stdout).unwrap().trim().to_string();
			assert_eq!(
				hash,
				format!(
					"0x{}",
					codec::hash(&std::fs::read(&out).unwrap())
						.iter()
						.map(|b| format!("{b:02x}"))
						.collect::<String>()
				)
			);
			hashes.push((hash, std::fs::read(&out).unwrap()));
		}
		assert_eq!(hashes[0], hashes[1], "{rule}");
	}
}

#[test]
fn bad_blobs_and_missing_data_fail_with_a_clear_message() {
	let dir = tempfile::tempdir().unwrap();
	let bad = dir.path().join("bad.blob");
	std::fs::write(&bad, b"BLFLnot a blob").unwrap();
	let output = bin()
		.args(["aggregate", "--out"])
		.arg(dir.path().join("o"))
		.arg(&bad)
		.output()
		.unwrap();
	assert!(!output.status.success());
	let stderr = String::from_utf8_lossy(&output.stderr);
	assert!(
		stderr.contains("decoding") && stderr.contains("bad.blob"),
		"{stderr}"
	);

	let output = bin()
		.args(["data", "--data-dir"])
		.arg(dir.path())
		.output()
		.unwrap();
	assert!(!output.status.success());
	let stderr = String::from_utf8_lossy(&output.stderr);
	assert!(
		stderr.contains("loading Fashion-MNIST") && stderr.contains("dataset-fashion-mnist"),
		"{stderr}"
	);

	let help = bin().arg("--help").output().unwrap();
	let text = String::from_utf8_lossy(&help.stdout);
	assert!(
		text.contains("aggregate") && text.contains("data"),
		"{text}"
	);
}
