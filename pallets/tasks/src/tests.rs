//! Unit, scenario and property tests of `pallet_fl_tasks`. Every test ends with the
//! `try_state` invariants of both FL pallets (see `mock::build_and_execute`).

use crate::{mock::*, *};
use blade_fl_primitives::{
	blob::{BlobHeader, Codec, HEADER_LEN},
	pn::Seed,
};
use frame_support::{
	assert_noop, assert_ok,
	traits::{fungible::Inspect, fungible::InspectHold, ConstU32},
	BoundedVec,
};
use sp_core::H256;
use sp_runtime::{DispatchError, Perbill, Percent, TokenError};

type E = Error<Test>;

fn signed(who: AccountId) -> RuntimeOrigin {
	RuntimeOrigin::signed(who)
}

fn next_block() {
	run_to(System::block_number() + 1);
}

fn held_escrow(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::FlTasks(HoldReason::Escrow), &who)
}

fn held_stake(who: AccountId) -> Balance {
	Balances::balance_on_hold(&RuntimeHoldReason::FlTasks(HoldReason::Stake), &who)
}

fn task(id: TaskId) -> TaskOf<Test> {
	Tasks::<Test>::get(id).expect("task is live")
}

/// The seed opening `who`'s current commitment (tests use `seed(who, k, attempt)`).
fn current_seed(id: TaskId, who: AccountId) -> Seed {
	let commitment = Participants::<Test>::get(id, who)
		.expect("participant")
		.commitment;
	for k in 0..16 {
		for attempt in 0..2 {
			if commit(who, &seed(who, k, attempt)) == commitment {
				return seed(who, k, attempt);
			}
		}
	}
	panic!("no test seed opens the commitment of {who}");
}

/// Submit an honest watermarked update for `who`, committing to `seed(who, round + 1, 0)`.
fn submit(id: TaskId, who: AccountId) {
	let round = task(id).round;
	let values = honest_values(id, who, round, &current_seed(id, who), 0.02);
	let attempt = task(id).attempt;
	assert_ok!(FlTasks::submit_update(
		signed(who),
		id,
		round,
		blob(id, round, &values),
		commit(who, &seed(who, round + 1, attempt)),
	));
}

fn reveal(id: TaskId, who: AccountId) {
	let round = task(id).round;
	// Until the round closes, the participant's commitment is still this round's.
	assert_ok!(FlTasks::reveal_seed(
		signed(who),
		id,
		round,
		current_seed(id, who)
	));
}

fn vote(id: TaskId, who: AccountId, hash: H256, included: TrainerMask) {
	let round = task(id).round;
	assert_ok!(FlTasks::propose_aggregate(
		signed(who),
		id,
		round,
		hash,
		included
	));
}

/// Publish a task for `n` trainers (accounts 10..10+n) and run bidding to selection.
fn selected_task(n: u32, rounds: u32) -> (TaskId, Vec<AccountId>) {
	let id = publish(spec(n, rounds));
	let trainers: Vec<AccountId> = (10..10 + n as u64).collect();
	for (i, who) in trainers.iter().enumerate() {
		// Decreasing samples: selection order equals account order.
		bid(id, *who, 1_000 - i as u64);
	}
	run_to(task(id).phase_end);
	assert_eq!(task(id).phase, Phase::Submit);
	assert_eq!(task(id).trainers.to_vec(), trainers);
	(id, trainers)
}

/// Everyone in `trainers` submits, then reveals; the round reaches its aggregate phase.
fn submit_and_reveal(id: TaskId, trainers: &[AccountId]) {
	for who in trainers {
		submit(id, *who);
	}
	next_block();
	assert_eq!(task(id).phase, Phase::Reveal);
	for who in trainers {
		reveal(id, *who);
	}
	next_block();
	assert_eq!(task(id).phase, Phase::Aggregate);
}

/// Everyone in `trainers` submits, reveals and votes for `hash` including all.
fn honest_round(id: TaskId, trainers: &[AccountId], hash: H256) {
	submit_and_reveal(id, trainers);
	let all = task(id).eligible();
	for who in trainers {
		if task(id).decided.is_none() {
			vote(id, *who, hash, all);
		}
	}
	next_block();
}

// ---------------------------------------------------------------- publish / cancel

#[test]
fn publish_holds_the_reward_and_emits() {
	build_and_execute(|| {
		let id = publish(spec(3, 2));
		assert_eq!(id, 0);
		assert_eq!(held_escrow(PUBLISHER), 10_000);
		assert_eq!(free(PUBLISHER), ENDOWMENT - 10_000);
		let info = task(id);
		assert_eq!(
			(info.phase, info.phase_end, info.escrow),
			(Phase::Bidding, 6, 10_000)
		);
		assert_eq!(
			ActiveTasks::<Test>::get().to_vec(),
			vec![ActiveTask {
				task: 0,
				phase_end: 6
			}]
		);
		System::assert_has_event(
			Event::TaskPublished {
				task: 0,
				publisher: PUBLISHER,
				reward: 10_000,
				listing_fee: 0,
				bidding_end: 6,
			}
			.into(),
		);
		assert_eq!(publish(spec(3, 2)), 1);
	});
}

#[test]
fn publish_rejects_bad_specs() {
	build_and_execute(|| {
		let check = |f: fn(&mut SpecOf<Test>), err: E| {
			let mut s = spec(3, 2);
			f(&mut s);
			assert_noop!(FlTasks::publish_task(signed(PUBLISHER), s), err);
		};
		check(|s| s.rounds = 0, E::BadRounds);
		check(|s| s.rounds = 9, E::BadRounds);
		check(|s| s.trainers_min = 0, E::BadTrainerCounts);
		check(|s| s.trainers_min = 4, E::BadTrainerCounts);
		check(|s| s.trainers_wanted = 9, E::BadTrainerCounts);
		check(|s| s.phases.submit = 1, E::BadPhaseLength);
		check(|s| s.phases.bidding = 1_001, E::BadPhaseLength);
		check(|s| s.param_count = 0, E::BadParamCount);
		check(|s| s.param_count = 20_000, E::BadParamCount);
		check(|s| s.reward = 1, E::BadReward);
		check(|s| s.min_samples = 0, E::BadSampleRange);
		check(|s| s.max_samples = 9, E::BadSampleRange);
		check(|s| s.max_norm_milli = 0, E::BadNormBound);
		check(|s| s.min_stake = 99, E::StakeTooLow);
		check(
			|s| {
				s.rule = AggregationRule::TrimmedMean {
					trim: Percent::from_percent(50),
				}
			},
			E::BadRule,
		);
		check(
			|s| s.rule = AggregationRule::MultiKrum { byzantine: 0 },
			E::BadRule,
		);
		check(
			|s| {
				s.privacy = Some(PrivacyFloor {
					max_epsilon_milli: 0,
					delta: Perbill::from_parts(10_000),
				})
			},
			E::BadPrivacy,
		);
		check(
			|s| {
				s.privacy = Some(PrivacyFloor {
					max_epsilon_milli: 3_000,
					delta: Perbill::from_parts(0),
				})
			},
			E::BadPrivacy,
		);
		check(
			|s| {
				s.privacy = Some(PrivacyFloor {
					max_epsilon_milli: 3_000,
					delta: Perbill::from_percent(1),
				})
			},
			E::BadPrivacy,
		);
		check(|s| s.pn_snr_centi_db = 0, E::BadPrivacy);
		// Multi-Krum with f = 1 needs trainers_min > 4.
		let mut ok = spec(8, 1);
		ok.trainers_min = 5;
		ok.rule = AggregationRule::MultiKrum { byzantine: 1 };
		assert_ok!(FlTasks::publish_task(signed(PUBLISHER), ok));
	});
}

#[test]
fn publish_needs_funds_and_a_free_slot() {
	build_and_execute(|| {
		let mut rich = spec(3, 1);
		rich.reward = ENDOWMENT * 2;
		assert_noop!(
			FlTasks::publish_task(signed(PUBLISHER), rich),
			DispatchError::Token(TokenError::FundsUnavailable)
		);
		for _ in 0..3 {
			publish(spec(3, 1));
		}
		// MaxTasksPerPublisher = 3, MaxActiveTasks = 4.
		assert_noop!(
			FlTasks::publish_task(signed(PUBLISHER), spec(3, 1)),
			E::PublisherBusy
		);
		assert_ok!(FlTasks::publish_task(signed(2), spec(3, 1)));
		assert_noop!(
			FlTasks::publish_task(signed(3), spec(3, 1)),
			E::TooManyTasks
		);
	});
}

#[test]
fn cancel_refunds_everything_at_the_next_block() {
	build_and_execute(|| {
		let id = publish(spec(3, 1));
		bid(id, 10, 100);
		bid(id, 11, 100);
		assert_noop!(FlTasks::cancel_task(signed(10), id), E::NotPublisher);
		assert_noop!(FlTasks::cancel_task(signed(PUBLISHER), 9), E::UnknownTask);
		assert_ok!(FlTasks::cancel_task(signed(PUBLISHER), id));
		assert_noop!(
			FlTasks::bid(signed(12), id, 100, 1, 1, H256::zero()),
			E::WrongPhase
		);
		assert_noop!(FlTasks::cancel_task(signed(PUBLISHER), id), E::WrongPhase);
		next_block();
		assert!(Tasks::<Test>::get(id).is_none());
		assert_eq!(
			(free(PUBLISHER), free(10), free(11)),
			(ENDOWMENT, ENDOWMENT, ENDOWMENT)
		);
		assert_eq!(held_stake(10) + held_escrow(PUBLISHER), 0);
		System::assert_has_event(
			Event::TaskSettled {
				task: id,
				failure: Some(Failure::Cancelled),
				paid: 0,
				refunded: 10_000,
			}
			.into(),
		);
	});
}

#[test]
fn cannot_cancel_after_selection() {
	build_and_execute(|| {
		let (id, _) = selected_task(2, 1);
		assert_noop!(FlTasks::cancel_task(signed(PUBLISHER), id), E::WrongPhase);
	});
}

// ---------------------------------------------------------------- bidding

#[test]
fn bid_holds_stake_and_checks_everything() {
	build_and_execute(|| {
		let id = publish(spec(2, 1));
		let c = commit(10, &seed(10, 0, 0));
		assert_noop!(FlTasks::bid(signed(10), 7, 100, 1, 1, c), E::UnknownTask);
		assert_noop!(
			FlTasks::bid(signed(PUBLISHER), id, 100, 1, 1, c),
			E::PublisherCannotBid
		);
		assert_noop!(FlTasks::bid(signed(10), id, 9, 1, 1, c), E::TooFewSamples);
		assert_ok!(FlTasks::bid(signed(10), id, 100, 1, 1, c));
		assert_eq!(held_stake(10), 100);
		System::assert_last_event(
			Event::BidPlaced {
				task: id,
				bidder: 10,
				stake: 100,
				samples: 100,
			}
			.into(),
		);
		assert_noop!(
			FlTasks::bid(signed(10), id, 100, 1, 1, H256::zero()),
			E::AlreadyBid
		);
		assert_noop!(
			FlTasks::bid(signed(11), id, 1_000_000_001, 1, 1, c),
			E::TooManySamples
		);
		// An account without funds for the stake.
		assert_noop!(
			FlTasks::bid(signed(99), id, 100, 1, 1, H256::zero()),
			DispatchError::Token(TokenError::FundsUnavailable)
		);
		for who in 11..=20 {
			bid(id, who, 100);
		}
		// 16 bids fill MaxBids = 16 with accounts 2..=9 as well.
		for who in 2..=6 {
			bid(id, who, 100);
		}
		assert_eq!(task(id).bids, 16);
		assert_noop!(
			FlTasks::bid(signed(7), id, 100, 1, 1, H256::repeat_byte(7)),
			E::TooManyBids
		);
		// Bidding closes at the start of block 6.
		run_to(5);
		assert_ok!(FlTasks::withdraw_bid(signed(2), id));
		run_to(6);
		assert_noop!(FlTasks::withdraw_bid(signed(10), id), E::WrongPhase);
	});
}

#[test]
fn withdraw_releases_the_stake() {
	build_and_execute(|| {
		let id = publish(spec(2, 1));
		bid(id, 10, 100);
		assert_noop!(FlTasks::withdraw_bid(signed(11), id), E::NoBid);
		assert_noop!(FlTasks::withdraw_bid(signed(11), 5), E::UnknownTask);
		assert_ok!(FlTasks::withdraw_bid(signed(10), id));
		assert_eq!((held_stake(10), free(10), task(id).bids), (0, ENDOWMENT, 0));
		System::assert_last_event(
			Event::BidReleased {
				task: id,
				bidder: 10,
			}
			.into(),
		);
		// Bidding again leaves nothing behind but the bid itself (no spent-commitment set
		// grows: chips are bound to the round key, so a repeated seed repeats no watermark).
		assert_ok!(FlTasks::bid(
			signed(10),
			id,
			100,
			1,
			1,
			commit(10, &seed(10, 0, 0))
		));
	});
}

#[test]
fn selection_ranks_by_score_and_releases_losers() {
	build_and_execute(|| {
		let id = publish(spec(2, 1));
		// Same price and capability: samples decide. 12 has the most.
		bid(id, 10, 100);
		bid(id, 11, 500);
		bid(id, 12, 900);
		run_to(6);
		let info = task(id);
		assert_eq!(info.trainers.to_vec(), vec![12, 11]);
		assert_eq!(
			(held_stake(12), held_stake(11), held_stake(10)),
			(100, 100, 0)
		);
		assert!(Bids::<Test>::iter_prefix(id).next().is_none());
		System::assert_has_event(
			Event::BidReleased {
				task: id,
				bidder: 10,
			}
			.into(),
		);
		assert_eq!(Participants::<Test>::get(id, 12).map(|p| p.index), Some(0));
	});
}

#[test]
fn reputation_and_price_move_the_score() {
	build_and_execute(|| {
		let id = publish(spec(1, 1));
		// Equal samples and capability; 11 asks less, 10 has a better reputation.
		assert_ok!(FlTasks::bid(
			signed(10),
			id,
			100,
			10,
			1,
			commit(10, &seed(10, 0, 0))
		));
		assert_ok!(FlTasks::bid(
			signed(11),
			id,
			100,
			5,
			1,
			commit(11, &seed(11, 0, 0))
		));
		for _ in 0..5 {
			<Reputation as blade_fl_primitives::traits::Reputation<u64>>::record(
				&10,
				blade_fl_primitives::traits::Behaviour::Good,
			);
		}
		// 10: rep ~0.86*0.4 + 0.3 + 0.1 + 0 ; 11: 0.5*0.4 + 0.3 + 0.1 + 0.5*0.2
		run_to(6);
		assert_eq!(task(id).trainers.to_vec(), vec![10]);
	});
}

#[test]
fn too_few_bids_fail_and_refund() {
	build_and_execute(|| {
		let id = publish(spec(3, 1));
		bid(id, 10, 100);
		run_to(6);
		assert_eq!(task(id).phase, Phase::Failing(Failure::TooFewBids));
		next_block();
		assert!(Tasks::<Test>::get(id).is_none());
		assert_eq!((free(PUBLISHER), free(10)), (ENDOWMENT, ENDOWMENT));
	});
}

// ---------------------------------------------------------------- submit

#[test]
fn submit_records_hash_size_and_location() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(2, 1);
		let values = honest_values(id, 10, 0, &seed(10, 0, 0), 0.02);
		let b = blob(id, 0, &values);
		let hash = H256(blade_fl_primitives::blob::blob_hash(&b));
		assert_ok!(FlTasks::submit_update(
			signed(10),
			id,
			0,
			b.clone(),
			commit(10, &seed(10, 1, 0))
		));
		let record = Updates::<Test>::get(id, 10).expect("recorded");
		assert_eq!(
			(record.hash, record.size, record.block, record.seed),
			(hash, HEADER_LEN as u32 + 4 * PARAMS, 6, None)
		);
		System::assert_last_event(
			Event::UpdateSubmitted {
				task: id,
				round: 0,
				trainer: 10,
				hash,
				size: record.size,
				block: 6,
				extrinsic_index: 0,
			}
			.into(),
		);
		assert_noop!(
			FlTasks::submit_update(signed(10), id, 0, b.clone(), commit(10, &seed(10, 2, 0))),
			E::AlreadySubmitted
		);
		// Phase ends early once everyone submitted.
		assert_eq!(task(id).phase_end, 11);
		submit(id, trainers[1]);
		assert_eq!(task(id).phase_end, 7);
	});
}

#[test]
fn submit_rejects_bad_callers_and_replays() {
	build_and_execute(|| {
		let (id, _) = selected_task(2, 2);
		let values = honest_values(id, 10, 0, &seed(10, 0, 0), 0.0);
		let b = blob(id, 0, &values);
		let fresh = commit(10, &seed(10, 1, 0));
		assert_noop!(
			FlTasks::submit_update(signed(10), 9, 0, b.clone(), fresh),
			E::UnknownTask
		);
		assert_noop!(
			FlTasks::submit_update(signed(10), id, 1, b.clone(), fresh),
			E::WrongRound
		);
		assert_noop!(
			FlTasks::submit_update(signed(12), id, 0, b.clone(), fresh),
			E::NotTrainer
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(10), id, 0, seed(10, 0, 0)),
			E::WrongPhase
		);
	});
}

#[test]
fn submit_rejects_malformed_blobs() {
	build_and_execute(|| {
		let (id, _) = selected_task(2, 1);
		let values = honest_values(id, 10, 0, &seed(10, 0, 0), 0.0);
		let good = crate::mock::blob(id, 0, &values).into_inner();
		let c = commit(10, &seed(10, 1, 0));
		let try_blob = |bytes: Vec<u8>, err: E| {
			let b: BoundedVec<u8, ConstU32<{ 128 * 1024 }>> = bytes.try_into().expect("bounded");
			assert_noop!(FlTasks::submit_update(signed(10), id, 0, b, c), err);
		};
		try_blob(good[..20].to_vec(), E::BlobTruncated);
		try_blob(good[..good.len() - 4].to_vec(), E::BlobLengthMismatch);
		let mut bad_magic = good.clone();
		bad_magic[0] = b'X';
		try_blob(bad_magic, E::BlobBadMagic);
		let mut bad_version = good.clone();
		bad_version[4] = 9;
		try_blob(bad_version, E::BlobBadVersion);
		let mut bad_codec = good.clone();
		bad_codec[5] = 7;
		try_blob(bad_codec, E::BlobBadCodec);
		let mut reserved = good.clone();
		reserved[6] = 1;
		try_blob(reserved, E::BlobReservedNotZero);
		let mut nan = good.clone();
		nan[HEADER_LEN + 40..HEADER_LEN + 44].copy_from_slice(&f32::NAN.to_le_bytes());
		try_blob(nan, E::BlobNonFinite);
		let mut inf = good.clone();
		inf[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
		try_blob(inf, E::BlobNonFinite);
		try_blob(
			blade_fl_primitives::blob::encode_f32(id + 1, 0, &values),
			E::BlobHeaderMismatch,
		);
		try_blob(
			blade_fl_primitives::blob::encode_f32(id, 1, &values),
			E::BlobHeaderMismatch,
		);
		try_blob(
			blade_fl_primitives::blob::encode_f32(id, 0, &values[1..]),
			E::BlobHeaderMismatch,
		);
		// Right size, wrong codec: f16 with the same byte count claims twice the values.
		let mut f16 = BlobHeader {
			task: id,
			round: 0,
			param_count: PARAMS,
			codec: Codec::F16,
			scale_bits: 0,
		}
		.encode()
		.to_vec();
		f16.extend(std::iter::repeat_n(0u8, 2 * PARAMS as usize));
		try_blob(f16, E::BlobHeaderMismatch);
		// Over the governance maximum (but inside the hard bound).
		MaxBlobSize::set(1_000);
		try_blob(good.clone(), E::BlobTooLarge);
		MaxBlobSize::set(64 * 1024);
		assert!(Updates::<Test>::get(id, 10).is_none());
	});
}

// ---------------------------------------------------------------- reveal

#[test]
fn reveal_checks_the_commitment() {
	build_and_execute(|| {
		let (id, _) = selected_task(3, 1);
		submit(id, 10);
		submit(id, 11);
		run_to(11);
		assert_eq!(task(id).phase, Phase::Reveal);
		// 12 did not submit: penalised 10 % of its stake, burnt.
		assert_eq!(held_stake(12), 90);
		System::assert_has_event(
			Event::Penalised {
				task: id,
				round: 0,
				trainer: 12,
				offence: Offence::NoUpdate,
				slashed: 10,
			}
			.into(),
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(12), id, 0, seed(12, 0, 0)),
			E::NoUpdate
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(13), id, 0, seed(13, 0, 0)),
			E::NotTrainer
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(10), id, 1, seed(10, 0, 0)),
			E::WrongRound
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(10), id, 0, seed(11, 0, 0)),
			E::SeedMismatch
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(10), id, 0, seed(10, 1, 0)),
			E::SeedMismatch
		);
		assert_ok!(FlTasks::reveal_seed(signed(10), id, 0, seed(10, 0, 0)));
		System::assert_last_event(
			Event::SeedRevealed {
				task: id,
				round: 0,
				trainer: 10,
				seed: seed(10, 0, 0),
				key: key(id, 10, 0, &seed(10, 0, 0)),
			}
			.into(),
		);
		assert_noop!(
			FlTasks::reveal_seed(signed(10), id, 0, seed(10, 0, 0)),
			E::AlreadyRevealed
		);
		// A copied commitment cannot be opened under another account (bound to the owner).
		assert_noop!(
			FlTasks::reveal_seed(signed(11), id, 0, seed(10, 0, 0)),
			E::SeedMismatch
		);
		// 11 never reveals: penalised at the reveal deadline; 1 eligible < min 2 -> failure.
		run_to(16);
		assert_eq!(task(id).phase, Phase::Failing(Failure::TooFewUpdates));
		assert_eq!(held_stake(11), 90);
		next_block();
		assert!(Tasks::<Test>::get(id).is_none());
		// Stakes back minus the burnt penalties; the escrow refunded in full.
		assert_eq!(
			(free(10), free(11), free(12)),
			(ENDOWMENT, ENDOWMENT - 10, ENDOWMENT - 10)
		);
		assert_eq!(free(PUBLISHER), ENDOWMENT);
	});
}

// ---------------------------------------------------------------- lazy proofs

/// Round 0 of a 4-trainer task where 13 copies 10's update; seeds revealed.
fn lazy_setup() -> (TaskId, BoundedVec<u8, ConstU32<{ 128 * 1024 }>>) {
	let (id, _) = selected_task(4, 2);
	submit(id, 10);
	submit(id, 11);
	submit(id, 12);
	let victim_values = honest_values(id, 10, 0, &seed(10, 0, 0), 0.02);
	let copied = blob(id, 0, &victim_values);
	assert_ok!(FlTasks::submit_update(
		signed(13),
		id,
		0,
		copied.clone(),
		commit(13, &seed(13, 1, 0))
	));
	next_block();
	for who in 10..=13 {
		reveal(id, who);
	}
	(id, copied)
}

#[test]
fn lazy_copier_is_proven_and_slashed() {
	build_and_execute(|| {
		let (id, copied) = lazy_setup();
		let reporter = 20;
		assert_noop!(
			FlTasks::report_lazy(signed(reporter), id, 0, 13, Some(13), copied.clone()),
			E::SelfReport
		);
		assert_noop!(
			FlTasks::report_lazy(signed(13), id, 0, 13, Some(10), copied.clone()),
			E::SelfReport
		);
		assert_noop!(
			FlTasks::report_lazy(signed(reporter), id, 1, 13, Some(10), copied.clone()),
			E::WrongRound
		);
		assert_noop!(
			FlTasks::report_lazy(signed(reporter), id, 0, 13, Some(5), copied.clone()),
			E::NotTrainer
		);
		let mut tampered = copied.clone();
		tampered[HEADER_LEN] ^= 1;
		assert_noop!(
			FlTasks::report_lazy(signed(reporter), id, 0, 13, Some(10), tampered),
			E::BlobHashMismatch
		);
		assert_ok!(FlTasks::report_lazy(
			signed(reporter),
			id,
			0,
			13,
			Some(10),
			copied.clone()
		));
		// Stake 100: 50 slashed, 10 to the reporter, 40 burnt, 50 released.
		assert_eq!(held_stake(13), 0);
		assert_eq!(free(13), ENDOWMENT - 50);
		assert_eq!(free(reporter), ENDOWMENT + 10);
		let Some(Event::LazyProven {
			z_centi,
			slashed,
			reporter_reward,
			..
		}) = task_events()
			.into_iter()
			.rev()
			.find(|e| matches!(e, Event::LazyProven { .. }))
		else {
			panic!("no LazyProven event");
		};
		assert!(z_centi > 2_000, "{z_centi}");
		assert_eq!((slashed, reporter_reward), (50, 10));
		assert_eq!(task(id).lazy, 1 << 3);
		assert!(Reputation::score(&13) < Perbill::from_percent(30));
		assert_noop!(
			FlTasks::report_lazy(signed(reporter), id, 0, 13, Some(10), copied.clone()),
			E::Excluded
		);
		// The lazy trainer cannot vote and is never paid.
		next_block();
		assert_eq!(task(id).phase, Phase::Aggregate);
		assert_noop!(
			FlTasks::propose_aggregate(signed(13), id, 0, H256::zero(), 1),
			E::NotEligible
		);
		assert_noop!(
			FlTasks::propose_aggregate(signed(10), id, 0, H256::zero(), 0b1111),
			E::BadIncludedSet
		);
	});
}

#[test]
fn false_accusation_costs_the_reporter() {
	build_and_execute(|| {
		let (id, _) = lazy_setup();
		// 11's honest blob against 10's seed: no watermark of 10 in it.
		let honest = blob(id, 0, &honest_values(id, 11, 0, &seed(11, 0, 0), 0.02));
		assert_ok!(FlTasks::report_lazy(
			signed(20),
			id,
			0,
			11,
			Some(10),
			honest.clone()
		));
		assert_eq!(free(20), ENDOWMENT - 50);
		assert_eq!(free(11), ENDOWMENT - 100 + 50);
		assert_eq!(held_stake(11), 100);
		assert_eq!(task(id).lazy, 0);
		let Some(Event::FalseAccusation {
			z_centi, penalty, ..
		}) = task_events().pop()
		else {
			panic!("no FalseAccusation event");
		};
		assert!(z_centi < 400, "{z_centi}");
		assert_eq!(penalty, 50);
		// A reporter who cannot pay the penalty is refused outright.
		assert_noop!(
			FlTasks::report_lazy(signed(99), id, 0, 11, Some(10), honest),
			E::CannotPayPenalty
		);
	});
}

#[test]
fn report_needs_a_revealed_victim_seed_and_the_right_phase() {
	build_and_execute(|| {
		let (id, _) = selected_task(2, 1);
		let b10 = blob(id, 0, &honest_values(id, 10, 0, &seed(10, 0, 0), 0.02));
		assert_noop!(
			FlTasks::report_lazy(signed(20), id, 0, 10, Some(11), b10.clone()),
			E::WrongPhase
		);
		submit(id, 10);
		submit(id, 11);
		next_block();
		assert_noop!(
			FlTasks::report_lazy(signed(20), id, 0, 10, Some(11), b10.clone()),
			E::VictimSeedUnknown
		);
	});
}

// ---------------------------------------------------------------- aggregate

#[test]
fn quorum_finalises_and_pays_by_samples_times_reputation() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(3, 1);
		submit_and_reveal(id, &trainers);
		let good = H256::repeat_byte(1);
		let bad = H256::repeat_byte(2);
		assert_noop!(
			FlTasks::propose_aggregate(signed(13), id, 0, good, 0b111),
			E::NotTrainer
		);
		vote(id, 10, good, 0b111);
		assert_noop!(
			FlTasks::propose_aggregate(signed(10), id, 0, good, 0b111),
			E::AlreadyVoted
		);
		vote(id, 12, bad, 0b111);
		assert!(task(id).decided.is_none());
		vote(id, 11, good, 0b111);
		// 2 of 3 > 50 %: agreed.
		assert_eq!(task(id).decided, Some(0));
		System::assert_has_event(
			Event::AggregateAgreed {
				task: id,
				round: 0,
				hash: good,
				votes: 2,
			}
			.into(),
		);
		assert_noop!(
			FlTasks::propose_aggregate(signed(12), id, 0, good, 0b111),
			E::AlreadyDecided
		);
		let rep_before: Vec<Perbill> = trainers.iter().map(Reputation::score).collect();
		next_block();
		assert_eq!(task(id).phase, Phase::Publishing);
		// Budget 10_000, fee 1_000, pool 9_000 split by sqrt(samples) (1000, 999, 998) x
		// reputation.
		let weights: Vec<u128> = [1_000u64, 999, 998]
			.iter()
			.zip(&rep_before)
			.map(|(s, r)| blade_fl_primitives::verdict::contribution_weight(*s, r.deconstruct()))
			.collect();
		let total: u128 = weights.iter().sum();
		for (who, w) in trainers.iter().zip(&weights) {
			let expected = FlTasks::share_of(9_000, *w, total) as u64;
			assert_eq!(
				Participants::<Test>::get(id, who).map(|p| p.earned),
				Some(expected)
			);
		}
		// The dissenter lost reputation, the others gained.
		assert!(Reputation::score(&12) < rep_before[2]);
		assert!(Reputation::score(&10) > rep_before[0]);
		let model = GlobalModels::<Test>::get(id, 0).expect("model");
		assert_eq!((model.hash, model.aggregator, model.fee), (good, 10, 1_000));
	});
}

#[test]
fn aggregate_publication_pays_the_fee_and_settles() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(2, 1);
		let aggregate = blob(id, 0, &honest_values(id, 1, 0, &seed(1, 0, 0), 0.0));
		let hash = H256(blade_fl_primitives::blob::blob_hash(&aggregate));
		assert_noop!(
			FlTasks::publish_aggregate(signed(10), id, 0, aggregate.clone()),
			E::NoGlobalModel
		);
		honest_round(id, &trainers, hash);
		assert_eq!(task(id).phase, Phase::Publishing);
		assert_noop!(
			FlTasks::publish_aggregate(signed(11), id, 0, aggregate.clone()),
			E::NotAggregator
		);
		let wrong = blob(id, 0, &honest_values(id, 2, 0, &seed(2, 0, 0), 0.0));
		assert_noop!(
			FlTasks::publish_aggregate(signed(10), id, 0, wrong),
			E::AggregateHashMismatch
		);
		assert_ok!(FlTasks::publish_aggregate(
			signed(10),
			id,
			0,
			aggregate.clone()
		));
		assert_noop!(
			FlTasks::publish_aggregate(signed(10), id, 0, aggregate.clone()),
			E::AlreadyPublished
		);
		let earned: Vec<Balance> = trainers
			.iter()
			.map(|w| Participants::<Test>::get(id, w).expect("p").earned)
			.collect();
		next_block();
		assert!(Tasks::<Test>::get(id).is_none());
		assert_eq!(free(10), ENDOWMENT + 1_000 + earned[0]);
		assert_eq!(free(11), ENDOWMENT + earned[1]);
		let paid = earned[0] + earned[1];
		assert_eq!(free(PUBLISHER), ENDOWMENT - 1_000 - paid);
		System::assert_has_event(
			Event::TaskSettled {
				task: id,
				failure: None,
				paid,
				refunded: 9_000 - paid,
			}
			.into(),
		);
	});
}

#[test]
fn no_quorum_retries_once_then_fails_without_stuck_funds() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(2, 1);
		submit_and_reveal(id, &trainers);
		// Split vote: never a quorum.
		vote(id, 10, H256::repeat_byte(1), 0b11);
		vote(id, 11, H256::repeat_byte(2), 0b11);
		run_to(task(id).phase_end);
		assert_eq!(
			(task(id).phase, task(id).round, task(id).attempt),
			(Phase::Submit, 0, 1)
		);
		System::assert_has_event(Event::RoundRetried { task: id, round: 0 }.into());
		// The retry uses the commitments made with the first submissions.
		submit_and_reveal(id, &trainers);
		run_to(task(id).phase_end);
		assert_eq!(task(id).phase, Phase::Failing(Failure::NoQuorum));
		next_block();
		assert!(Tasks::<Test>::get(id).is_none());
		assert_eq!(
			(free(PUBLISHER), free(10), free(11)),
			(ENDOWMENT, ENDOWMENT, ENDOWMENT)
		);
	});
}

// ---------------------------------------------------------------- full life cycle

#[test]
fn five_trainers_three_rounds_lazy_noshow_dissent() {
	build_and_execute(|| {
		let (id, t) = selected_task(5, 3);
		let hash = |r: u8| H256::repeat_byte(0x40 + r);
		// Round 0: all honest.
		honest_round(id, &t, hash(0));
		assert_eq!(task(id).round, 1);
		// Round 1: 14 is a no-show; 13 copies 10; 12 dissents.
		for who in [10, 11, 12] {
			submit(id, who);
		}
		let copied = blob(
			id,
			1,
			&honest_values(id, 10, 1, &current_seed(id, 10), 0.02),
		);
		assert_ok!(FlTasks::submit_update(
			signed(13),
			id,
			1,
			copied.clone(),
			commit(13, &seed(13, 2, 0))
		));
		run_to(task(id).phase_end);
		assert_eq!(held_stake(14), 90);
		for who in [10, 11, 12, 13] {
			reveal(id, who);
		}
		assert_ok!(FlTasks::report_lazy(
			signed(11),
			id,
			1,
			13,
			Some(10),
			copied
		));
		next_block();
		let included = 0b0111; // 10, 11, 12
		vote(id, 12, H256::repeat_byte(0xee), included);
		vote(id, 10, hash(1), included);
		vote(id, 11, hash(1), included);
		next_block();
		assert_eq!(task(id).round, 2);
		// Round 2: 14 is back; 13 is out for good.
		assert_noop!(
			FlTasks::submit_update(
				signed(13),
				id,
				2,
				blob(id, 2, &honest_values(id, 13, 2, &seed(13, 2, 0), 0.02)),
				commit(13, &seed(13, 3, 0))
			),
			E::Excluded
		);
		honest_round(id, &[10, 11, 12, 14], hash(2));
		assert_eq!(task(id).phase, Phase::Publishing);
		let earned: Vec<Balance> = t
			.iter()
			.map(|w| Participants::<Test>::get(id, w).expect("p").earned)
			.collect();
		assert_eq!(earned[3], 0, "the lazy trainer forfeits everything");
		run_to(task(id).phase_end);
		assert!(Tasks::<Test>::get(id).is_none());
		// Nobody published: the three fees return to the publisher, and 10, the aggregator
		// of all three rounds, forfeits its rewards and pays `MissSlash` once (10 of its
		// stake): the first withheld round put it out of the task.
		let paid: Balance = earned.iter().sum::<Balance>() - earned[0];
		assert_eq!(free(PUBLISHER), ENDOWMENT - paid);
		assert_eq!(free(10), ENDOWMENT - 10);
		assert_eq!(free(11), ENDOWMENT + earned[1] + 10);
		assert_eq!(free(12), ENDOWMENT + earned[2]);
		assert_eq!(free(13), ENDOWMENT - 50);
		assert_eq!(free(14), ENDOWMENT + earned[4] - 10);
		assert!(earned[0] > earned[4] && earned[4] > 0);
		// Issuance fell by exactly the burnt amounts: 40 (lazy) + 10 (no-show) + 10
		// (withheld publication).
		assert_eq!(Balances::total_issuance(), 20 * ENDOWMENT - 60);
	});
}

// ---------------------------------------------------------------- properties

#[derive(Clone, Debug)]
enum Action {
	Publish {
		trainers: u32,
		rounds: u32,
	},
	Cancel,
	Bid {
		who: u64,
		samples: u64,
	},
	Withdraw {
		who: u64,
	},
	Submit {
		who: u64,
		copy_of: Option<u64>,
	},
	Reveal {
		who: u64,
	},
	Report {
		reporter: u64,
		accused: u64,
		victim: Option<u64>,
	},
	ReportWeak {
		reporter: u64,
		accused: u64,
	},
	Vote {
		who: u64,
		hash: u8,
		drop_last: bool,
	},
	Publish_ {
		who: u64,
	},
	Wait {
		blocks: u64,
	},
}

fn action() -> impl proptest::strategy::Strategy<Value = Action> {
	use proptest::prelude::*;
	let who = 10u64..15;
	prop_oneof![
		3 => (2u32..5, 1u32..3).prop_map(|(trainers, rounds)| Action::Publish { trainers, rounds }),
		1 => Just(Action::Cancel),
		// (Publish is a no-op while a task is live.)
		6 => (who.clone(), 5u64..2_000).prop_map(|(who, samples)| Action::Bid { who, samples }),
		1 => who.clone().prop_map(|who| Action::Withdraw { who }),
		8 => (who.clone(), proptest::option::weighted(0.2, 10u64..15))
			.prop_map(|(who, copy_of)| Action::Submit { who, copy_of }),
		8 => who.clone().prop_map(|who| Action::Reveal { who }),
		3 => (1u64..15, who.clone(), proptest::option::weighted(0.8, who.clone()))
			.prop_map(|(reporter, accused, victim)| Action::Report { reporter, accused, victim }),
		1 => (1u64..15, who.clone())
			.prop_map(|(reporter, accused)| Action::ReportWeak { reporter, accused }),
		8 => (who.clone(), proptest::bool::weighted(0.2), any::<bool>())
			.prop_map(|(who, other, drop_last)| Action::Vote { who, hash: u8::from(other), drop_last }),
		2 => who.clone().prop_map(|who| Action::Publish_ { who }),
		4 => (1u64..4).prop_map(|blocks| Action::Wait { blocks }),
	]
}

/// The aggregate blob the property test's trainers agree on for `hash`.
fn agg_blob(id: TaskId, round: u32, hash: u8) -> BoundedVec<u8, ConstU32<{ 128 * 1024 }>> {
	blob(
		id,
		round,
		&honest_values(id, 100 + u64::from(hash), round, &seed(1, 0, 0), 0.0),
	)
}

fn apply(action: &Action, commitments: &mut u32) {
	let id = NextTaskId::<Test>::get().saturating_sub(1);
	let live = Tasks::<Test>::get(id);
	let round = live.as_ref().map(|t| t.round).unwrap_or(0);
	// Trainer-phase actions pick among the selected trainers when there are some.
	let pick = |who: u64| -> u64 {
		match live.as_ref() {
			Some(t) if !t.trainers.is_empty() => t.trainers[(who as usize) % t.trainers.len()],
			_ => who,
		}
	};
	let fresh = |who: u64, c: &mut u32| {
		*c += 1;
		commit(who, &seed(who, 100 + *c, 0))
	};
	let _ = match action.clone() {
		// One task at a time, so the other actions have something to work on.
		Action::Publish { .. } if live.is_some() => return,
		Action::Publish { trainers, rounds } => {
			FlTasks::publish_task(signed(PUBLISHER), spec(trainers, rounds))
		}
		Action::Cancel => FlTasks::cancel_task(signed(PUBLISHER), id),
		Action::Bid { who, samples } => {
			let c = commit(who, &seed(who, 0, (*commitments % 2) as u8));
			*commitments += 1;
			FlTasks::bid(signed(who), id, samples, 10, 1, c)
		}
		Action::Withdraw { who } => FlTasks::withdraw_bid(signed(who), id),
		Action::Submit { who, copy_of } => {
			let (who, copy_of) = (pick(who), copy_of.map(pick));
			if !Participants::<Test>::contains_key(id, who) {
				return;
			}
			let source = copy_of.unwrap_or(who);
			let s = find_seed(source, last_commitment(id, source)).unwrap_or([0; 32]);
			let b = blob(id, round, &honest_values(id, source, round, &s, 0.02));
			let next = fresh(who, commitments);
			FlTasks::submit_update(signed(who), id, round, b, next)
		}
		Action::Reveal { who } => {
			let who = pick(who);
			let Some(p) = Participants::<Test>::get(id, who) else {
				return;
			};
			let Some(s) = find_seed(who, Some(p.commitment)) else {
				return;
			};
			FlTasks::reveal_seed(signed(who), id, round, s)
		}
		Action::Report {
			reporter,
			accused,
			victim,
		} => {
			let (accused, victim) = (pick(accused), victim.map(pick));
			let Some(b) = accused_blob(id, round, accused) else {
				return;
			};
			FlTasks::report_lazy(signed(reporter), id, round, accused, victim, b)
				.map(|_| ())
				.map_err(|e| e.error)
		}
		Action::ReportWeak { reporter, accused } => {
			let accused = pick(accused);
			let Some(b) = accused_blob(id, round, accused) else {
				return;
			};
			FlTasks::report_weak_watermark(signed(reporter), id, round, accused, b)
		}
		Action::Vote {
			who,
			hash,
			drop_last,
		} => {
			let who = pick(who);
			let Some(t) = live.clone() else { return };
			let mut included = t.eligible();
			if drop_last && included.count_ones() > 1 {
				included &= !(1u64 << (63 - included.leading_zeros()));
			}
			let h = H256(blade_fl_primitives::blob::blob_hash(&agg_blob(
				id, round, hash,
			)));
			FlTasks::propose_aggregate(signed(who), id, round, h, included)
		}
		Action::Publish_ { who } => {
			let who = pick(who);
			let Some(t) = live.clone() else { return };
			let r = t.round;
			let result = (0u8..2)
				.map(|h| FlTasks::publish_aggregate(signed(who), id, r, agg_blob(id, r, h)))
				.find(|r| r.is_ok());
			result.unwrap_or(Ok(()))
		}
		Action::Wait { blocks } => {
			run_to(System::block_number() + blocks);
			Ok(())
		}
	};
}

/// The accused's blob this round, rebuilt: it is one of the `honest_values` variants.
fn accused_blob(
	id: TaskId,
	round: u32,
	accused: u64,
) -> Option<BoundedVec<u8, ConstU32<{ 128 * 1024 }>>> {
	let u = Updates::<Test>::get(id, accused)?;
	(10u64..15).find_map(|source| {
		let s = find_seed(source, last_commitment(id, source))?;
		let b = blob(id, round, &honest_values(id, source, round, &s, 0.02));
		(H256(blade_fl_primitives::blob::blob_hash(&b)) == u.hash).then_some(b)
	})
}

/// The commitment the current update was made under: before the round closes the
/// participant's commitment is still this round's.
fn last_commitment(id: TaskId, who: u64) -> Option<H256> {
	Participants::<Test>::get(id, who).map(|p| p.commitment)
}

/// Which test seed opens `commitment` (bids use `seed(who, 0, a)`, submissions
/// `seed(who, 100 + c, 0)`).
fn find_seed(who: u64, commitment: Option<H256>) -> Option<Seed> {
	let commitment = commitment?;
	(0..2)
		.map(|a| seed(who, 0, a))
		.chain((101..400).map(|c| seed(who, c, 0)))
		.find(|s| commit(who, s) == commitment)
}

fn burnt_so_far() -> Balance {
	task_events()
		.into_iter()
		.map(|e| match e {
			Event::Penalised { slashed, .. } => slashed,
			Event::LazyProven {
				slashed,
				reporter_reward,
				..
			}
			| Event::WeakWatermarkProven {
				slashed,
				reporter_reward,
				..
			} => slashed - reporter_reward,
			Event::TaskPublished { listing_fee, .. } => listing_fee,
			_ => 0,
		})
		.sum()
}

proptest::proptest! {
	#![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

	/// Any sequence of calls and blocks: try_state holds after every step; at the end every
	/// hold is released, payouts and fees never exceed the reward, and the money of all
	/// accounts equals the genesis money minus exactly the burnt slashes.
	#[test]
	fn money_is_conserved_under_any_call_sequence(
		actions in proptest::collection::vec(action(), 1..300),
	) {
		build_and_execute(|| {
			let mut commitments = 0u32;
			publish(spec(3, 2));
			for action in &actions {
				apply(action, &mut commitments);
				FlTasks::do_try_state().expect("invariants after every step");
			}
			run_to(System::block_number() + 200);
			assert_eq!(ActiveTasks::<Test>::get().len(), 0, "every task settles");
			let mut paid_per_task = std::collections::BTreeMap::<TaskId, Balance>::new();
			for e in task_events() {
				match e {
					Event::TaskSettled { task, paid, .. } =>
						*paid_per_task.entry(task).or_default() += paid,
					Event::AggregatePublished { task, fee, .. } =>
						*paid_per_task.entry(task).or_default() += fee,
					_ => {},
				}
			}
			for (task, paid) in paid_per_task {
				assert!(paid <= 10_000, "task {task} paid {paid} from a 10_000 escrow");
			}
			let total: Balance = (1..=20u64).map(|who| Balances::total_balance(&who)).sum();
			for who in 1..=20u64 {
				assert_eq!(Balances::total_balance_on_hold(&who), 0);
			}
			let burnt = burnt_so_far();
			assert_eq!(total, 20 * ENDOWMENT - burnt);
			assert_eq!(Balances::total_issuance(), 20 * ENDOWMENT - burnt);
		});
	}
}

#[test]
fn proving_the_last_unrevealed_trainer_lazy_ends_the_reveal_early() {
	build_and_execute(|| {
		let (id, _) = selected_task(3, 1);
		submit(id, 10);
		submit(id, 11);
		let copied = blob(id, 0, &honest_values(id, 10, 0, &seed(10, 0, 0), 0.02));
		assert_ok!(FlTasks::submit_update(
			signed(12),
			id,
			0,
			copied.clone(),
			commit(12, &seed(12, 1, 0))
		));
		next_block();
		reveal(id, 10);
		reveal(id, 11);
		let end = task(id).phase_end;
		assert!(end > System::block_number() + 1);
		assert_ok!(FlTasks::report_lazy(
			signed(20),
			id,
			0,
			12,
			Some(10),
			copied
		));
		assert_eq!(task(id).phase_end, System::block_number() + 1);
		next_block();
		assert_eq!(task(id).phase, Phase::Aggregate);
		// Proven lazy, 12 is not penalised again for the missing reveal.
		assert!(!task_events()
			.iter()
			.any(|e| matches!(e, Event::Penalised { trainer: 12, .. })));
	});
}

#[test]
fn remaining_error_paths() {
	build_and_execute(|| {
		// The task counter cannot wrap.
		NextTaskId::<Test>::put(u64::MAX);
		assert_noop!(
			FlTasks::publish_task(signed(PUBLISHER), spec(2, 1)),
			E::Overflow
		);
		NextTaskId::<Test>::put(0);

		let (id, trainers) = selected_task(2, 1);
		// An f32 blob must not carry an int8 scale.
		let values = honest_values(id, 10, 0, &seed(10, 0, 0), 0.02);
		let mut scaled = blob(id, 0, &values).into_inner();
		scaled[24..28].copy_from_slice(&1.0f32.to_bits().to_le_bytes());
		let scaled: BoundedVec<u8, ConstU32<{ 128 * 1024 }>> = scaled.try_into().unwrap();
		assert_noop!(
			FlTasks::submit_update(signed(10), id, 0, scaled, commit(10, &seed(10, 1, 0))),
			E::BlobBadScale
		);
		// Once the aggregate is agreed, accusations for the round are closed.
		submit_and_reveal(id, &trainers);
		vote(id, 10, H256::repeat_byte(1), 0b11);
		vote(id, 11, H256::repeat_byte(1), 0b11);
		let b = blob(id, 0, &honest_values(id, 11, 0, &seed(11, 0, 0), 0.02));
		assert_noop!(
			FlTasks::report_lazy(signed(20), id, 0, 11, Some(10), b),
			E::AlreadyDecided
		);
	});
}

mod attacks;
mod market;
