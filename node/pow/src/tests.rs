use super::*;
use proptest::prelude::*;

fn pre_hash(byte: u8) -> H256 {
	H256::repeat_byte(byte)
}

/// Mine honestly at a small difficulty; the search is bounded so the test cannot hang.
fn mine(pre: &H256, difficulty: u64) -> Seal {
	let mut miner = Miner::new(pre, U256::from(difficulty)).expect("non-zero difficulty");
	miner
		.mine(0, 10_000_000)
		.expect("a seal within 10M attempts at this difficulty")
}

#[test]
fn valid_seal_verifies() {
	let pre = pre_hash(7);
	let seal = mine(&pre, 1_000);
	assert_eq!(
		check_seal(&pre, &seal.encode(), U256::from(1_000)),
		Ok(seal)
	);
	assert_eq!(seal.work, hash_work(&pre, seal.nonce));
}

#[test]
fn tampered_nonce_fails() {
	let pre = pre_hash(1);
	let mut seal = mine(&pre, 5_000);
	seal.nonce = seal.nonce.wrapping_add(1);
	assert_eq!(
		check_seal(&pre, &seal.encode(), U256::from(5_000)),
		Err(SealError::WorkMismatch)
	);
	// Re-hashing the tampered nonce honestly almost never meets the difficulty.
	seal.work = hash_work(&pre, seal.nonce);
	let verdict = check_seal(&pre, &seal.encode(), U256::from(5_000));
	assert!(verdict.is_err() || meets_difficulty(&seal.work, U256::from(5_000)));
}

#[test]
fn tampered_pre_hash_fails() {
	let pre = pre_hash(2);
	let seal = mine(&pre, 5_000);
	assert_eq!(
		check_seal(&pre_hash(3), &seal.encode(), U256::from(5_000)),
		Err(SealError::WorkMismatch)
	);
}

#[test]
fn claimed_difficulty_must_match_runtime() {
	let pre = pre_hash(4);
	let seal = mine(&pre, 5_000);
	// Runtime expects more work than the seal claims.
	assert_eq!(
		check_seal(&pre, &seal.encode(), U256::from(5_001)),
		Err(SealError::WrongDifficulty)
	);
	// Lying upward in the seal: claims 2^64 difficulty but the work only meets ~5000.
	let mut inflated = seal;
	inflated.difficulty = U256::from(u64::MAX);
	let huge = U256::from(u64::MAX);
	let verdict = check_seal(&pre, &inflated.encode(), huge);
	assert!(
		verdict == Err(SealError::InsufficientWork) || meets_difficulty(&seal.work, huge),
		"{verdict:?}"
	);
}

#[test]
fn under_difficulty_work_fails() {
	let pre = pre_hash(5);
	// Find a nonce whose work is valid at difficulty 1 but clearly not at 2^40.
	let mut nonce = 0u64;
	let hard = U256::from(1u64 << 40);
	while meets_difficulty(&hash_work(&pre, nonce), hard) {
		nonce += 1;
	}
	let seal = Seal {
		difficulty: hard,
		work: hash_work(&pre, nonce),
		nonce,
	};
	assert_eq!(
		check_seal(&pre, &seal.encode(), hard),
		Err(SealError::InsufficientWork)
	);
}

#[test]
fn malformed_and_zero_difficulty_rejected() {
	let pre = pre_hash(6);
	assert_eq!(
		check_seal(&pre, &[1, 2, 3], U256::one()),
		Err(SealError::Malformed)
	);
	let seal = Seal {
		difficulty: U256::zero(),
		work: hash_work(&pre, 0),
		nonce: 0,
	};
	assert_eq!(
		check_seal(&pre, &seal.encode(), U256::zero()),
		Err(SealError::ZeroDifficulty)
	);
	assert!(Miner::new(&pre, U256::zero()).is_none());
	assert!(!meets_difficulty(&H256::zero(), U256::zero()));
}

#[test]
fn difficulty_one_accepts_everything() {
	let pre = pre_hash(8);
	let seal = Seal {
		difficulty: U256::one(),
		work: hash_work(&pre, 42),
		nonce: 42,
	};
	assert!(check_seal(&pre, &seal.encode(), U256::one()).is_ok());
	assert!(meets_difficulty(&H256::repeat_byte(0xff), U256::one()));
}

proptest! {
	/// The precomputed target used by the miner agrees with the overflow rule used by verify.
	#[test]
	fn target_matches_overflow_rule(work in any::<[u8; 32]>(), d in 1u128..) {
		let difficulty = U256::from(d);
		let by_target = work <= target(difficulty).unwrap().0;
		prop_assert_eq!(by_target, meets_difficulty(&H256(work), difficulty));
	}

	/// Whatever the miner returns verifies.
	#[test]
	fn miner_output_verifies(seed in any::<[u8; 32]>(), d in 1u64..2_000) {
		let pre = H256(seed);
		let mut miner = Miner::new(&pre, U256::from(d)).unwrap();
		if let Some(seal) = miner.mine(0, 200_000) {
			prop_assert_eq!(check_seal(&pre, &seal.encode(), U256::from(d)), Ok(seal));
		}
	}
}
