//! The client users actually run: `@polkadot/api` (npm) connects to the real dev node,
//! reads metadata and properties, derives block authors and submits a transfer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{path::PathBuf, process::Command};

use common::*;

#[test]
fn polkadot_js_reads_metadata_derives_authors_and_transfers() {
	let js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/js");
	assert!(
		js.join("node_modules/@polkadot/api").is_dir(),
		"@polkadot/api is not installed: run scripts/setup (it runs `npm ci` in scripts/js)"
	);
	let dir = tempfile::tempdir().unwrap();
	let node = Node::start("alice", dir.path(), &["--dev"]);

	let out = Command::new("node")
		.arg(js.join("smoke.mjs"))
		.arg(format!("ws://127.0.0.1:{}", node.rpc_port))
		.output()
		.expect("run node (Node.js); scripts/setup installs it");
	let stdout = String::from_utf8_lossy(&out.stdout);
	let stderr = String::from_utf8_lossy(&out.stderr);
	assert!(
		out.status.success(),
		"polkadot-js client failed\nstdout: {stdout}\nstderr: {stderr}\nnode log:\n{}",
		tail(&node.log(), 30)
	);
	let report: serde_json::Value =
		serde_json::from_str(stdout.trim().lines().last().unwrap()).unwrap();
	assert_eq!(report["ok"], true);
	assert_eq!(report["symbol"], "BLADE");
	assert_eq!(report["authors"].as_array().unwrap().len(), 3);
	// A federated-learning task published and read back through polkadot-js.
	assert_eq!(report["flTask"], 0);
	assert_eq!(report["activeTasks"], serde_json::json!([0]));
}
