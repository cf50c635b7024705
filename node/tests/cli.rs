//! Mining flags of the real binary: bad values are refused with a clear message before the
//! node starts, and `--help` explains them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(args: &[&str]) -> (bool, String) {
	let dir = tempfile::tempdir().unwrap();
	let out = Command::new(env!("CARGO_BIN_EXE_blade-fl-node"))
		.args(args)
		.args([
			"--base-path",
			dir.path().to_str().unwrap(),
			"--no-telemetry",
		])
		.output()
		.unwrap();
	let text = format!(
		"{}{}",
		String::from_utf8_lossy(&out.stdout),
		String::from_utf8_lossy(&out.stderr)
	);
	(out.status.success(), text)
}

#[test]
fn bad_mining_flags_are_refused_clearly() {
	let (ok, text) = run(&["--chain", "local", "--mine"]);
	assert!(!ok && text.contains("--mine needs --author"), "{text}");

	let (ok, text) = run(&["--chain", "local", "--mine", "--author", "not-an-address"]);
	assert!(
		!ok && text.contains("is not a valid SS58 address"),
		"{text}"
	);

	let (ok, text) = run(&["--dev", "--threads", "0"]);
	assert!(
		!ok && text.contains("--threads must be at least 1"),
		"{text}"
	);

	let (ok, text) = run(&[
		"--chain",
		"local",
		"--author",
		"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
	]);
	assert!(
		!ok && text.contains("--author has no effect without --mine"),
		"{text}"
	);
}

#[test]
fn help_explains_mining_flags() {
	let out = Command::new(env!("CARGO_BIN_EXE_blade-fl-node"))
		.arg("--help")
		.output()
		.unwrap();
	let help = String::from_utf8_lossy(&out.stdout);
	assert!(out.status.success());
	for flag in ["--mine", "--threads <N>", "--author <SS58>", "--bootnodes"] {
		assert!(help.contains(flag), "--help lacks {flag}");
	}
}
