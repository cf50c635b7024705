//! Pseudo-noise (PN) chips: the watermark a trainer adds to its update.
//!
//! Chip `i` of seed `s` is bit `i mod 256` of `Blake2b-256(DOMAIN || s || (i / 256) as u64 LE)`,
//! mapped `1 -> +1`, `0 -> -1`. With a 256-bit secret seed the sequence cannot be guessed
//! before the seed is revealed (an m-sequence of degree 15 has only 32 767 phases), and
//! anyone can regenerate it afterwards. The trainer publishes
//! [`seed_commitment`] first and reveals the seed only after every update of the round is
//! on chain.

/// Domain separator of the chip generator.
pub const CHIP_DOMAIN: &[u8; 16] = b"blade-fl/pn/v1\0\0";
/// Domain separator of seed commitments.
pub const COMMIT_DOMAIN: &[u8; 16] = b"blade-fl/commit1";
/// Domain separator of round keys.
pub const ROUND_KEY_DOMAIN: &[u8; 16] = b"blade-fl/rkey/v2";

/// A 256-bit PN seed.
pub type Seed = [u8; 32];

/// Commitment to `seed` published before the round's updates.
///
/// `owner` is the SCALE encoding of the committing account: the commitment is
/// `Blake2b-256(COMMIT_DOMAIN || owner || seed)`, so a lazy trainer who copies someone's
/// commitment can never open it under its own account.
pub fn seed_commitment(owner: &[u8], seed: &Seed) -> [u8; 32] {
	let mut input = alloc::vec::Vec::with_capacity(16 + owner.len() + 32);
	input.extend_from_slice(COMMIT_DOMAIN);
	input.extend_from_slice(owner);
	input.extend_from_slice(seed);
	sp_crypto_hashing::blake2_256(&input)
}

/// The key whose chips a trainer adds in one round: `Blake2b-256(ROUND_KEY_DOMAIN || owner
/// || task LE || round LE || previous || seed)`.
///
/// Binding the chips to the owner, the task and the round means a seed used twice (by
/// mistake, or across tasks) never repeats a watermark that an earlier reveal made public,
/// so the chain need not remember every commitment it ever accepted. `previous` is the
/// agreed hash of the round's starting model (the previous round's aggregate; for round 0
/// the task's validation hash): a trainer commits to its round-r seed a round early, but
/// cannot know its round-r chips before the round-(r-1) aggregate is agreed, so it cannot
/// plant them in that aggregate to frame honest trainers as its copiers. The runtime
/// stores this key when the seed is revealed; every verifier regenerates the chips from it.
pub fn round_key(owner: &[u8], task: u64, round: u32, previous: &[u8; 32], seed: &Seed) -> Seed {
	let mut input = alloc::vec::Vec::with_capacity(16 + owner.len() + 12 + 64);
	input.extend_from_slice(ROUND_KEY_DOMAIN);
	input.extend_from_slice(owner);
	input.extend_from_slice(&task.to_le_bytes());
	input.extend_from_slice(&round.to_le_bytes());
	input.extend_from_slice(previous);
	input.extend_from_slice(seed);
	sp_crypto_hashing::blake2_256(&input)
}

/// Iterator over the chips of a seed, as `i8` values `+1` / `-1`.
pub struct Chips {
	input: [u8; 56],
	block: [u8; 32],
	index: u64,
}

impl Chips {
	/// Chips of `seed`, from chip 0.
	pub fn new(seed: &Seed) -> Self {
		let mut input = [0u8; 56];
		input[..16].copy_from_slice(CHIP_DOMAIN);
		input[16..48].copy_from_slice(seed);
		Chips {
			input,
			block: [0u8; 32],
			index: 0,
		}
	}
}

impl Iterator for Chips {
	type Item = i8;

	fn next(&mut self) -> Option<i8> {
		let bit = (self.index % 256) as usize;
		if bit == 0 {
			self.input[48..].copy_from_slice(&(self.index / 256).to_le_bytes());
			self.block = sp_crypto_hashing::blake2_256(&self.input);
		}
		let byte = self.block.get(bit / 8).copied().unwrap_or_default();
		self.index = self.index.wrapping_add(1);
		Some(if (byte >> (bit % 8)) & 1 == 1 { 1 } else { -1 })
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn deterministic_and_seed_dependent() {
		let a: Vec<i8> = Chips::new(&[1; 32]).take(1000).collect();
		let b: Vec<i8> = Chips::new(&[1; 32]).take(1000).collect();
		let c: Vec<i8> = Chips::new(&[2; 32]).take(1000).collect();
		assert_eq!(a, b);
		assert_ne!(a, c);
		assert!(a.iter().all(|chip| *chip == 1 || *chip == -1));
	}

	#[test]
	fn balanced_and_uncorrelated() {
		let n = 100_000;
		let a: Vec<i64> = Chips::new(&[3; 32]).take(n).map(i64::from).collect();
		let b: Vec<i64> = Chips::new(&[4; 32]).take(n).map(i64::from).collect();
		let sum: i64 = a.iter().sum();
		let cross: i64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
		// Both are ~N(0, n): 5 sigma = 5 * sqrt(1e5) ~ 1581.
		assert!(sum.abs() < 1_600, "chip sum {sum}");
		assert!(cross.abs() < 1_600, "cross-correlation {cross}");
	}

	#[test]
	fn round_keys_differ_by_owner_task_round_and_starting_model() {
		let base = round_key(b"alice", 1, 2, &[0; 32], &[7; 32]);
		assert_eq!(base, round_key(b"alice", 1, 2, &[0; 32], &[7; 32]));
		for other in [
			round_key(b"bob", 1, 2, &[0; 32], &[7; 32]),
			round_key(b"alice", 2, 2, &[0; 32], &[7; 32]),
			round_key(b"alice", 1, 3, &[0; 32], &[7; 32]),
			round_key(b"alice", 1, 2, &[1; 32], &[7; 32]),
			round_key(b"alice", 1, 2, &[0; 32], &[8; 32]),
		] {
			assert_ne!(base, other);
		}
	}

	#[test]
	fn commitment_binds_the_seed_and_the_owner() {
		assert_ne!(
			seed_commitment(b"alice", &[0; 32]),
			seed_commitment(b"alice", &[1; 32])
		);
		assert_eq!(
			seed_commitment(b"alice", &[5; 32]),
			seed_commitment(b"alice", &[5; 32])
		);
		assert_ne!(
			seed_commitment(b"alice", &[5; 32]),
			seed_commitment(b"bob", &[5; 32])
		);
	}
}
