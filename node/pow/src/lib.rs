//! # BLADE-FL proof of work
//!
//! The work function is **Blake2b-256 over `pre_hash || nonce`**, where `pre_hash` is the
//! 32-byte hash of the unsealed header (it already commits to the author through the
//! `PreRuntime(*b"pow_")` digest) and `nonce` is a little-endian `u64`: 40 bytes, so one
//! Blake2b compression per attempt.
//!
//! Blake2b was chosen over SHA3-256 because the runtime already hashes with Blake2
//! (`sp_crypto_hashing::blake2_256`), it is about twice as fast as Keccak in software, and
//! nobody sells an ASIC for this exact 40-byte construction.
//!
//! A seal is valid for difficulty `d` when `work * d` does not overflow 256 bits, i.e. the
//! expected number of attempts is `d`. The difficulty itself lives in the runtime
//! (`pallet-difficulty`) and is read through [`sp_consensus_pow::DifficultyApi`], as Kulupu
//! does, so governance can retune it without touching the node.
//!
//! [`BladePow`] implements [`sc_consensus_pow::PowAlgorithm`] for the upstream
//! `sc-consensus-pow` import queue and mining worker; [`Miner`] is the nonce loop the node's
//! mining threads and the benchmark harness run.

use codec::{Decode, Encode};
use sc_consensus_pow::{Error, PowAlgorithm};
use sp_api::ProvideRuntimeApi;
use sp_consensus_pow::{DifficultyApi, Seal as RawSeal};
use sp_core::{H256, U256};
use sp_runtime::{generic::BlockId, traits::Block as BlockT};
use std::{marker::PhantomData, sync::Arc};

/// The difficulty type shared by node and runtime.
pub type Difficulty = U256;

/// Length of the hashed input: 32-byte pre-hash then 8-byte little-endian nonce.
pub const WORK_INPUT_LEN: usize = 40;

/// The seal stored in the header's `Seal(*b"pow_", ..)` digest, SCALE-encoded.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Encode, Decode)]
pub struct Seal {
	/// Difficulty the block claims to satisfy; must equal the runtime's difficulty at the
	/// parent.
	pub difficulty: Difficulty,
	/// `blake2b_256(pre_hash || nonce)`; stored so light checks need no re-hash.
	pub work: H256,
	/// The nonce the miner found.
	pub nonce: u64,
}

/// Why a seal was rejected; logged by [`BladePow::verify`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SealError {
	/// The seal bytes are not a SCALE-encoded [`Seal`].
	Malformed,
	/// The seal claims a difficulty other than the runtime's.
	WrongDifficulty,
	/// `work` is not the hash of this pre-hash and nonce.
	WorkMismatch,
	/// The work does not meet the difficulty.
	InsufficientWork,
	/// A difficulty of zero can never be met.
	ZeroDifficulty,
}

impl core::fmt::Display for SealError {
	fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
		let text = match self {
			SealError::Malformed => "seal is not a SCALE-encoded blade-pow seal",
			SealError::WrongDifficulty => "seal difficulty differs from the runtime difficulty",
			SealError::WorkMismatch => "seal work is not blake2b-256(pre_hash || nonce)",
			SealError::InsufficientWork => "seal work does not meet the difficulty",
			SealError::ZeroDifficulty => "difficulty is zero",
		};
		f.write_str(text)
	}
}

/// Blake2b-256 of `pre_hash || nonce_le`.
pub fn hash_work(pre_hash: &H256, nonce: u64) -> H256 {
	let mut input = [0u8; WORK_INPUT_LEN];
	input[..32].copy_from_slice(pre_hash.as_bytes());
	input[32..].copy_from_slice(&nonce.to_le_bytes());
	H256(sp_crypto_hashing::blake2_256(&input))
}

/// Largest work value accepted at `difficulty`: `floor(U256::MAX / difficulty)`.
///
/// `work <= target(d)` is exactly `work * d` not overflowing, so comparing against a
/// precomputed target keeps the 256-bit multiplication out of the mining loop.
pub fn target(difficulty: Difficulty) -> Option<H256> {
	if difficulty.is_zero() {
		return None;
	}
	Some(H256(U256::MAX.checked_div(difficulty)?.to_big_endian()))
}

/// Does `work` satisfy `difficulty`?
pub fn meets_difficulty(work: &H256, difficulty: Difficulty) -> bool {
	if difficulty.is_zero() {
		return false;
	}
	let (_, overflowed) = U256::from_big_endian(work.as_bytes()).overflowing_mul(difficulty);
	!overflowed
}

/// Full check of an encoded seal against a pre-hash and the expected difficulty.
pub fn check_seal(
	pre_hash: &H256,
	raw_seal: &[u8],
	expected: Difficulty,
) -> Result<Seal, SealError> {
	let seal = Seal::decode(&mut &raw_seal[..]).map_err(|_| SealError::Malformed)?;
	if expected.is_zero() {
		return Err(SealError::ZeroDifficulty);
	}
	if seal.difficulty != expected {
		return Err(SealError::WrongDifficulty);
	}
	if hash_work(pre_hash, seal.nonce) != seal.work {
		return Err(SealError::WorkMismatch);
	}
	if !meets_difficulty(&seal.work, seal.difficulty) {
		return Err(SealError::InsufficientWork);
	}
	Ok(seal)
}

/// The nonce loop: holds the 40-byte input and only rewrites the nonce each attempt.
pub struct Miner {
	input: [u8; WORK_INPUT_LEN],
	difficulty: Difficulty,
	target: [u8; 32],
}

impl Miner {
	/// Prepare to mine `pre_hash` at `difficulty`; `None` for a zero difficulty.
	pub fn new(pre_hash: &H256, difficulty: Difficulty) -> Option<Self> {
		let target = target(difficulty)?;
		let mut input = [0u8; WORK_INPUT_LEN];
		input[..32].copy_from_slice(pre_hash.as_bytes());
		Some(Self {
			input,
			difficulty,
			target: target.0,
		})
	}

	/// Try `count` nonces from `start` (wrapping). Returns the first seal found.
	#[inline]
	pub fn mine(&mut self, start: u64, count: u64) -> Option<Seal> {
		let mut nonce = start;
		for _ in 0..count {
			self.input[32..].copy_from_slice(&nonce.to_le_bytes());
			let work = sp_crypto_hashing::blake2_256(&self.input);
			// Big-endian bytes compare in numeric order.
			if work <= self.target {
				return Some(Seal {
					difficulty: self.difficulty,
					work: H256(work),
					nonce,
				});
			}
			nonce = nonce.wrapping_add(1);
		}
		None
	}
}

/// [`PowAlgorithm`] for BLADE-FL: difficulty from the runtime, Blake2b work.
pub struct BladePow<B, C> {
	client: Arc<C>,
	_block: PhantomData<B>,
}

impl<B, C> BladePow<B, C> {
	/// Algorithm reading the difficulty from `client`'s runtime.
	pub fn new(client: Arc<C>) -> Self {
		Self {
			client,
			_block: PhantomData,
		}
	}
}

impl<B, C> Clone for BladePow<B, C> {
	fn clone(&self) -> Self {
		Self {
			client: self.client.clone(),
			_block: PhantomData,
		}
	}
}

impl<B, C> PowAlgorithm<B> for BladePow<B, C>
where
	B: BlockT<Hash = H256>,
	C: ProvideRuntimeApi<B>,
	C::Api: DifficultyApi<B, Difficulty>,
{
	type Difficulty = Difficulty;

	fn difficulty(&self, parent: B::Hash) -> Result<Difficulty, Error<B>> {
		let difficulty = self
			.client
			.runtime_api()
			.difficulty(parent)
			.map_err(|e| Error::Environment(format!("difficulty runtime API failed: {e}")))?;
		if difficulty.is_zero() {
			return Err(Error::Environment(
				"runtime returned a zero difficulty".into(),
			));
		}
		Ok(difficulty)
	}

	fn verify(
		&self,
		_parent: &BlockId<B>,
		pre_hash: &H256,
		_pre_digest: Option<&[u8]>,
		seal: &RawSeal,
		difficulty: Difficulty,
	) -> Result<bool, Error<B>> {
		match check_seal(pre_hash, seal, difficulty) {
			Ok(_) => Ok(true),
			Err(reason) => {
				log::warn!(target: "blade-pow", "rejecting seal for pre-hash {pre_hash:?}: {reason}");
				Ok(false)
			}
		}
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
