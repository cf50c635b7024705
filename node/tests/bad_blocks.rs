//! Blocks with tampered seals or headers are rejected on import by the real node, while
//! the untampered export of the same chain imports cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
	path::Path,
	process::{Command, Output},
	time::Duration,
};

use blade_fl_runtime::opaque::Block;
use codec::{Decode, Encode};
use common::*;
use sp_keyring::Sr25519Keyring;
use sp_runtime::{generic::SignedBlock, DigestItem};

fn node_cmd(args: &[&str]) -> Output {
	Command::new(env!("CARGO_BIN_EXE_blade-fl-node"))
		.args(args)
		.output()
		.unwrap()
}

fn write_blocks(path: &Path, blocks: &[SignedBlock<Block>]) {
	let mut bytes = (blocks.len() as u64).encode();
	for block in blocks {
		block.encode_to(&mut bytes);
	}
	std::fs::write(path, bytes).unwrap();
}

fn import(dir: &Path, name: &str, blocks: &[SignedBlock<Block>]) -> Output {
	let file = dir.join(format!("{name}.bin"));
	write_blocks(&file, blocks);
	node_cmd(&[
		"import-blocks",
		"--chain",
		"dev",
		"--base-path",
		dir.join(name).to_str().unwrap(),
		"--binary",
		file.to_str().unwrap(),
	])
}

#[test]
fn tampered_blocks_are_rejected_on_import() {
	let dir = tempfile::tempdir().unwrap();
	let mut node = Node::start("miner", dir.path(), &["--dev"]);
	node.wait_for_block(6, Duration::from_secs(180));
	assert!(node.stop().success());

	let export = dir.path().join("chain.bin");
	let out = node_cmd(&[
		"export-blocks",
		"--chain",
		"dev",
		"--base-path",
		dir.path().join("miner").to_str().unwrap(),
		"--from",
		"1",
		"--to",
		"6",
		"--binary",
		export.to_str().unwrap(),
	]);
	assert!(
		out.status.success(),
		"export: {}",
		String::from_utf8_lossy(&out.stderr)
	);
	let raw = std::fs::read(&export).unwrap();
	let mut input = &raw[..];
	let count = u64::decode(&mut input).unwrap();
	assert_eq!(count, 6);
	let blocks: Vec<SignedBlock<Block>> = (0..count)
		.map(|_| SignedBlock::decode(&mut input).unwrap())
		.collect();

	// The honest chain imports.
	let out = import(dir.path(), "honest", &blocks);
	assert!(
		out.status.success(),
		"honest import: {}",
		String::from_utf8_lossy(&out.stderr)
	);

	// Block 3 with a bumped nonce: the work no longer matches.
	let mut bad_nonce = blocks.clone();
	let Some(DigestItem::Seal(_, seal)) = bad_nonce[2].block.header.digest.logs.last_mut() else {
		panic!("block 3 unsealed")
	};
	let mut decoded = blade_pow::Seal::decode(&mut &seal[..]).unwrap();
	decoded.nonce = decoded.nonce.wrapping_add(1);
	*seal = decoded.encode();
	let out = import(dir.path(), "bad-nonce", &bad_nonce);
	let stderr = String::from_utf8_lossy(&out.stderr);
	assert!(!out.status.success(), "tampered nonce must fail: {stderr}");
	assert!(
		stderr.contains("Stopping after #2 blocks"),
		"stops at block 3: {stderr}"
	);
	assert!(
		stderr.to_lowercase().contains("seal"),
		"says the seal is bad: {stderr}"
	);

	// Block 3 re-attributed to Bob, keeping Alice's seal: the pre-hash changes.
	let mut stolen = blocks.clone();
	for item in stolen[2].block.header.digest.logs.iter_mut() {
		if let DigestItem::PreRuntime(engine, data) = item {
			if engine == b"pow_" {
				*data = Sr25519Keyring::Bob.to_account_id().encode();
			}
		}
	}
	let out = import(dir.path(), "stolen", &stolen);
	assert!(!out.status.success(), "re-attributed block must fail");

	// Garbage instead of a seal.
	let mut garbage = blocks.clone();
	if let Some(DigestItem::Seal(_, seal)) = garbage[2].block.header.digest.logs.last_mut() {
		*seal = vec![0xff; 7];
	}
	let out = import(dir.path(), "garbage", &garbage);
	assert!(!out.status.success(), "garbage seal must fail");
}
