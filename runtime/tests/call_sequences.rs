//! Random call sequences against the real runtime (the `runtime_calls` fuzz target's
//! harness, `common/sequences.rs`): every input kept in the fuzz corpus and every crash the
//! fuzzer found (`fuzz/corpus/runtime_calls`, `fuzz/regressions/runtime_calls`), then
//! seeded pseudo-random inputs. After every block: each pallet's `try_state`, the ledger
//! (accounts sum to the total issuance) and conservation of issuance (it moves only by the
//! block reward and burns).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/sequences.rs"]
mod sequences;

use std::path::Path;

/// Seeded inputs per run of the suite (the fuzzer runs millions: `benchmarking/fuzz`).
const SEEDED: u64 = 160;

fn inputs_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
	let Ok(entries) = std::fs::read_dir(dir) else {
		return Vec::new();
	};
	let mut files: Vec<_> = entries
		.map(|e| e.unwrap().path())
		.filter(|p| p.is_file())
		.collect();
	files.sort();
	files
		.into_iter()
		.map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
		.collect()
}

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
	let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
	(0..len)
		.map(|_| {
			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			(state >> 32) as u8
		})
		.collect()
}

#[test]
fn kept_fuzz_inputs_hold_every_invariant() {
	let genesis = sequences::genesis();
	let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
	let mut ran = 0;
	for dir in ["corpus/runtime_calls", "regressions/runtime_calls"] {
		for (name, data) in inputs_in(&root.join(dir)) {
			if let Err(broken) = sequences::run(&genesis, &data) {
				panic!("{name}: {broken}");
			}
			ran += 1;
		}
	}
	println!("{ran} kept inputs replayed");
}

#[test]
fn seeded_call_sequences_hold_every_invariant() {
	let genesis = sequences::genesis();
	let mut blocks = 0;
	let mut events = std::collections::BTreeMap::<String, u32>::new();
	let mut refused = std::collections::BTreeMap::<String, u32>::new();
	for seed in 0..SEEDED {
		let data = pseudo_random(seed, 1024 + (seed as usize * 997) % 15_360);
		match sequences::run(&genesis, &data) {
			Ok(reached) => {
				blocks += reached.blocks;
				for (name, n) in reached.events {
					*events.entry(name).or_default() += n;
				}
				for (name, n) in reached.refused {
					*refused.entry(name).or_default() += n;
				}
			}
			Err(broken) => panic!("seed {seed}: {broken}"),
		}
	}
	println!("{SEEDED} seeded sequences, {blocks} blocks; events reached:");
	for (name, n) in &events {
		println!("  {name}: {n}");
	}
	println!("refusals:");
	for (name, n) in &refused {
		println!("  {name}: {n}");
	}
	// The sequences reach the whole life cycle, not only refusals.
	for needed in [
		"FlTasks(Event::TaskPublished",
		"FlTasks(Event::BidPlaced",
		"FlTasks(Event::TrainersSelected",
		"FlTasks(Event::UpdateSubmitted",
		"FlTasks(Event::SeedRevealed",
		"FlTasks(Event::AggregateAgreed",
		"FlTasks(Event::RoundFinalized",
		"FlTasks(Event::AggregatePublished",
		"FlTasks(Event::LazyProven",
		"FlTasks(Event::Penalised",
		"FlTasks(Event::TaskSettled",
		"BlockReward(Event::Rewarded",
		"Balances(Event::Transfer",
		"Parameters(Event::Updated",
	] {
		assert!(events.contains_key(needed), "no {needed}) in any sequence");
	}
}
