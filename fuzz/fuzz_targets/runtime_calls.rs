//! The real runtime under random call sequences: the bytes drive FL, balance, governance
//! and council calls and raw decoded calls from random origins, with blocks advancing
//! through `Executive` (hooks, block rewards, the timestamp inherent). After every block:
//! every pallet's `try_state` (the `try-runtime` feature is on in this build), the ledger
//! and conservation of issuance. The harness is shared with the runtime's test suite
//! (`runtime/tests/call_sequences.rs`), which replays this target's corpus.
#![no_main]

#[path = "../../runtime/tests/common/sequences.rs"]
mod sequences;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
	static GENESIS: OnceLock<sp_runtime::Storage> = OnceLock::new();
	let genesis = GENESIS.get_or_init(sequences::genesis);
	if let Err(broken) = sequences::run(genesis, data) {
		panic!("invariant broken: {broken}");
	}
});
