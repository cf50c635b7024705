//! A runtime upgrade on a running chain: `sudo(set_code)` enacts the same runtime one
//! `spec_version` later (built with the runtime's `upgrade-test` feature) on a mining node
//! A while a node B follows it; a client connected before the upgrade (as a trainer's is)
//! keeps sending transactions; then A is killed and restarted on its base path and must
//! come back on the new runtime and mine on.
//!
//! Ignored in the default run: the upgraded wasm is a second build of the runtime.
//! `benchmarking/runtime-upgrade` builds it and runs this test with `BLADE_UPGRADE_WASM`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use blade_trainer::chain::{Backoff, Client, RuntimeCall, UNIT};
use common::{dev_account, free_port, start_node_with};
use serde_json::json;

fn backoff() -> Backoff {
	Backoff {
		give_up_after: Duration::from_secs(120),
		..Backoff::default()
	}
}

fn spec_version(client: &Client) -> u64 {
	client
		.rpc()
		.call("state_getRuntimeVersion", json!([]))
		.unwrap()["specVersion"]
		.as_u64()
		.unwrap()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
	let deadline = Instant::now() + limit;
	while !done() {
		assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
		std::thread::sleep(Duration::from_millis(500));
	}
}

fn transfer(to: &str, units: u128) -> RuntimeCall {
	RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
		dest: sp_runtime::MultiAddress::Id(dev_account(to)),
		value: units * UNIT,
	})
}

#[test]
#[ignore = "needs the spec-bumped wasm: run by benchmarking/runtime-upgrade"]
fn a_runtime_upgrade_by_sudo_set_code_keeps_the_chain_and_its_clients_going() {
	let path = std::env::var("BLADE_UPGRADE_WASM")
		.expect("BLADE_UPGRADE_WASM: the runtime built with --features upgrade-test");
	let wasm = std::fs::read(&path).unwrap();
	let dir = tempfile::tempdir().unwrap();
	let (rpc_a, p2p_a) = (free_port(), free_port());
	let mut node_a = start_node_with(dir.path(), "a", rpc_a, p2p_a, "a.log", &[]);
	let url_a = format!("ws://127.0.0.1:{rpc_a}");
	let reader = Client::read_only(&url_a, backoff()).unwrap();
	let peer: String =
		serde_json::from_value(reader.rpc().call("system_localPeerId", json!([])).unwrap())
			.unwrap();
	let (rpc_b, p2p_b) = (free_port(), free_port());
	let boot = format!("/ip4/127.0.0.1/tcp/{p2p_a}/p2p/{peer}");
	let _node_b = start_node_with(
		dir.path(),
		"b",
		rpc_b,
		p2p_b,
		"b.log",
		&["--bootnodes", &boot],
	);
	let reader_b = Client::read_only(&format!("ws://127.0.0.1:{rpc_b}"), backoff()).unwrap();
	wait_until("block 3 on both nodes", Duration::from_secs(300), || {
		reader.best_number().unwrap() >= 3 && reader_b.best_number().unwrap() >= 3
	});
	let before = spec_version(&reader);
	assert_eq!(before, u64::from(blade_fl_runtime::VERSION.spec_version));

	// Bob's client is connected (and has signed) before the upgrade, as a trainer's is.
	let mut bob = Client::connect(&url_a, "//Bob", backoff()).unwrap();
	bob.confirmations = 1;
	let ferdie = dev_account("Ferdie");
	let ferdie_start = reader.account_info(&ferdie, None).unwrap().free;
	assert!(bob
		.execute(transfer("Ferdie", 3))
		.unwrap()
		.failure()
		.is_none());

	let mut alice = Client::connect(&url_a, "//Alice", backoff()).unwrap();
	alice.confirmations = 1;
	let upgrade = RuntimeCall::Sudo(pallet_sudo::Call::sudo_unchecked_weight {
		call: Box::new(RuntimeCall::System(frame_system::Call::set_code {
			code: wasm,
		})),
		weight: Default::default(),
	});
	let enacted = alice.execute(upgrade).unwrap();
	println!(
		"set_code of {} bytes enacted in block {}",
		std::fs::metadata(&path).unwrap().len(),
		enacted.block_number
	);
	wait_until("the new runtime on A", Duration::from_secs(120), || {
		spec_version(&reader) == before + 1
	});
	wait_until("the new runtime on B", Duration::from_secs(300), || {
		spec_version(&reader_b) == before + 1
	});

	// The old client signs for the old spec version once, is refused, and re-reads it.
	assert!(bob
		.execute(transfer("Ferdie", 4))
		.unwrap()
		.failure()
		.is_none());
	let upgraded_at = reader.best_number().unwrap();
	wait_until(
		"mining on after the upgrade",
		Duration::from_secs(300),
		|| {
			reader.best_number().unwrap() >= upgraded_at + 3
				&& reader_b.best_number().unwrap() >= upgraded_at + 3
		},
	);

	// A restarted on its base path runs the new runtime from its database and mines on.
	node_a.kill9();
	drop(node_a);
	let _node_a = start_node_with(dir.path(), "a", rpc_a, p2p_a, "a.log", &[]);
	let reader = Client::read_only(&url_a, backoff()).unwrap();
	let restarted_at = reader.best_number().unwrap();
	assert_eq!(
		spec_version(&reader),
		before + 1,
		"A restarted on the old runtime"
	);
	wait_until(
		"A mining after its restart",
		Duration::from_secs(300),
		|| reader.best_number().unwrap() >= restarted_at + 3,
	);
	assert!(bob
		.execute(transfer("Ferdie", 5))
		.unwrap()
		.failure()
		.is_none());
	let ferdie_end = reader.account_info(&ferdie, None).unwrap().free;
	assert_eq!(
		ferdie_end - ferdie_start,
		12 * UNIT,
		"each transfer applied once"
	);
	println!(
		"spec {before} -> {}: A restarted at block {restarted_at} and mined on to {}; B at {}; Ferdie +12 BLADE",
		before + 1,
		reader.best_number().unwrap(),
		reader_b.best_number().unwrap()
	);
}
