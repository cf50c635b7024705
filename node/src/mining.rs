//! CPU mining threads driving the upstream `sc-consensus-pow` mining worker.
//!
//! The worker (from `sc_consensus_pow::start_mining_worker`) builds a block proposal on
//! every new best block and exposes its pre-hash and difficulty; each thread here searches
//! a disjoint nonce range in batches with [`blade_pow::Miner`] and submits the first valid
//! seal. Between batches a thread checks whether the proposal changed (new best block)
//! or the node is shutting down.

use std::{
	hash::{BuildHasher, Hasher},
	sync::{
		atomic::{AtomicBool, Ordering},
		Arc,
	},
	time::Duration,
};

use blade_pow::Miner;
use codec::Encode;
use sc_consensus_pow::{MiningHandle, PowAlgorithm};
use sp_runtime::traits::Block as BlockT;
use substrate_prometheus_endpoint::{register, Counter, PrometheusError, Registry, U64};

/// Nonces tried between two checks for a new proposal (~5-20 ms of work).
const BATCH: u64 = 20_000;

/// Sets the flag when dropped; the node's task manager drops it on shutdown.
pub struct StopOnDrop(pub Arc<AtomicBool>);

impl Drop for StopOnDrop {
	fn drop(&mut self) {
		self.0.store(true, Ordering::SeqCst);
	}
}

/// A per-thread random nonce origin, so threads and machines never search the same range.
fn random_start(thread: usize) -> u64 {
	let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
	hasher.write_usize(thread);
	hasher.finish()
}

/// `blade_pow_hashes_total`: seal hashes computed by this node's miner (its hash rate is
/// the counter's rate, e.g. `rate(blade_pow_hashes_total[1m])`).
pub fn hash_counter(registry: &Registry) -> Result<Counter<U64>, PrometheusError> {
	register(
		Counter::new(
			"blade_pow_hashes_total",
			"Seal hashes computed by this node's miner (rate = hash rate)",
		)?,
		registry,
	)
}

/// Start `threads` mining threads; they stop when `stop` becomes true. Each batch of
/// nonces tried is added to `hashes` when metrics are on.
pub fn start_threads<B, A, L>(
	handle: MiningHandle<B, A, L>,
	threads: usize,
	stop: Arc<AtomicBool>,
	hashes: Option<Counter<U64>>,
) -> std::io::Result<()>
where
	B: BlockT<Hash = sp_core::H256>,
	A: PowAlgorithm<B, Difficulty = blade_pow::Difficulty> + Send + Sync + 'static,
	L: sc_consensus::JustificationSyncLink<B> + 'static,
	MiningHandle<B, A, L>: Send + 'static,
{
	for thread in 0..threads.max(1) {
		let handle = handle.clone();
		let stop = stop.clone();
		let hashes = hashes.clone();
		std::thread::Builder::new()
			.name(format!("pow-miner-{thread}"))
			.spawn(move || mine_loop(handle, thread, stop, hashes))?;
	}
	log::info!(target: "blade-pow", "⛏️  mining on {} thread(s)", threads.max(1));
	Ok(())
}

fn mine_loop<B, A, L>(
	handle: MiningHandle<B, A, L>,
	thread: usize,
	stop: Arc<AtomicBool>,
	hashes: Option<Counter<U64>>,
) where
	B: BlockT<Hash = sp_core::H256>,
	A: PowAlgorithm<B, Difficulty = blade_pow::Difficulty>,
	L: sc_consensus::JustificationSyncLink<B>,
{
	let mut nonce = random_start(thread);
	while !stop.load(Ordering::Relaxed) {
		let version = handle.version();
		let Some(metadata) = handle.metadata() else {
			std::thread::sleep(Duration::from_millis(50));
			continue;
		};
		let Some(mut miner) = Miner::new(&metadata.pre_hash, metadata.difficulty) else {
			log::error!(target: "blade-pow", "zero difficulty from the runtime; not mining");
			std::thread::sleep(Duration::from_secs(1));
			continue;
		};
		while !stop.load(Ordering::Relaxed) && handle.version() == version {
			let found = miner.mine(nonce, BATCH);
			if let Some(hashes) = &hashes {
				let tried = found.as_ref().map_or(BATCH, |seal| {
					seal.nonce.wrapping_sub(nonce).saturating_add(1)
				});
				hashes.inc_by(tried);
			}
			if let Some(seal) = found {
				log::debug!(target: "blade-pow", "thread {thread} found nonce {}", seal.nonce);
				nonce = seal.nonce.wrapping_add(1);
				if !futures::executor::block_on(handle.submit(seal.encode())) {
					log::debug!(target: "blade-pow", "seal not imported (stale proposal)");
				}
				break;
			}
			nonce = nonce.wrapping_add(BATCH);
		}
	}
}
