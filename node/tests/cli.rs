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

fn export(args: &[&str]) -> serde_json::Value {
	let out = Command::new(env!("CARGO_BIN_EXE_blade-fl-node"))
		.arg("export-chain-spec")
		.args(args)
		.output()
		.unwrap();
	assert!(
		out.status.success(),
		"{}",
		String::from_utf8_lossy(&out.stderr)
	);
	serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn production_spec_has_no_sudo_and_converts_to_raw_once_filled_in() {
	let mut plain = export(&["--chain", "production"]);
	let patch = &mut plain["genesis"]["runtimeGenesis"]["patch"];
	assert!(patch["sudo"]["key"].is_null(), "no sudo key: {patch}");
	assert_eq!(patch["council"]["members"], serde_json::json!([]));
	// What docs/operations.md tells operators to fill in.
	let members = [
		"5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",
		"5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty",
		"5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y",
	];
	patch["council"]["members"] = serde_json::json!(members);
	patch["balances"]["balances"] = serde_json::json!([[members[0], 1_000_000_000_000_000u64]]);
	let dir = tempfile::tempdir().unwrap();
	let path = dir.path().join("plain.json");
	std::fs::write(&path, serde_json::to_vec(&plain).unwrap()).unwrap();

	let raw = export(&["--chain", path.to_str().unwrap(), "--raw"]);
	let top = raw["genesis"]["raw"]["top"].as_object().unwrap();
	// Sudo.Key (twox128("Sudo") ++ twox128("Key")) is absent: nobody holds sudo.
	let sudo_key = format!(
		"0x{}{}",
		hex::encode(sp_crypto_hashing::twox_128(b"Sudo")),
		hex::encode(sp_crypto_hashing::twox_128(b"Key"))
	);
	assert!(!top.contains_key(&sudo_key), "sudo key set in the raw spec");
	let members_key = format!(
		"0x{}{}",
		hex::encode(sp_crypto_hashing::twox_128(b"Council")),
		hex::encode(sp_crypto_hashing::twox_128(b"Members"))
	);
	assert!(top.contains_key(&members_key), "council members missing");
	// The local preset: no sudo either; the dev chain keeps Alice as sudo.
	let local = export(&["--chain", "local"]);
	assert!(local["genesis"]["runtimeGenesis"]["patch"]["sudo"]["key"].is_null());
}
