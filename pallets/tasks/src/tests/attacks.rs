//! One test per attack on the incentive layer (see `docs/security.md`): each plays the
//! attacker, then shows the attack is refused with a clear error or leaves the attacker
//! worse off while honest trainers are paid as if it were absent. `try_state` runs after
//! each (see `mock::build_and_execute`).

use super::*;
use blade_fl_primitives::{blob::Blob, pn::Chips};
use frame_support::traits::Hooks;

/// Values of `who`'s honest update in `round` with its own watermark at 0.02.
fn honest(id: TaskId, who: AccountId) -> Vec<f32> {
	let round = task(id).round;
	honest_values(id, who, round, &current_seed(id, who), 0.02)
}

/// Submit `values` as `who`'s update, committing to its next test seed.
fn submit_values(id: TaskId, who: AccountId, values: &[f32]) {
	let (round, attempt) = (task(id).round, task(id).attempt);
	assert_ok!(FlTasks::submit_update(
		signed(who),
		id,
		round,
		blob(id, round, values),
		commit(who, &seed(who, round + 1, attempt)),
	));
}

/// Add `amplitude` times the chips of `key` to `values`.
fn add_chips(values: &mut [f32], key: &Seed, amplitude: f32) {
	for (v, c) in values.iter_mut().zip(Chips::new(key)) {
		*v += amplitude * f32::from(c);
	}
}

/// The chip key `who` watermarks with this round.
fn own_key(id: TaskId, who: AccountId) -> Seed {
	key(id, who, task(id).round, &current_seed(id, who))
}

/// 11 reports 13's update `copied` as a copy of 10's; the runtime upholds it.
fn prove_copy_of_10(id: TaskId, copied: &[f32]) {
	assert_ok!(FlTasks::report_lazy(
		signed(11),
		id,
		0,
		13,
		Some(10),
		blob(id, 0, copied)
	));
	assert!(matches!(
		lazy_event(),
		Some(Event::LazyProven { accused: 13, .. })
	));
}

fn lazy_event() -> Option<Event<Test>> {
	task_events()
		.into_iter()
		.rev()
		.find(|e| matches!(e, Event::LazyProven { .. } | Event::FalseAccusation { .. }))
}

/// The pool of one round of the mock spec (reward 10_000 over `rounds`, 10 % fee).
fn pool(rounds: u64) -> Balance {
	10_000 / rounds * 9 / 10
}

// ------------------------------------------------------------- 1. lying about data size

#[test]
fn attack_lying_about_data_size_is_capped_and_sub_linear() {
	build_and_execute(|| {
		let mut s = spec(3, 1);
		(s.min_samples, s.max_samples) = (100, 400);
		let id = publish(s);
		// The old attack: declare u64::MAX and take the pool. Refused outright.
		assert_noop!(
			FlTasks::bid(
				signed(12),
				id,
				u64::MAX,
				0,
				u32::MAX,
				commit(12, &seed(12, 0, 0))
			),
			E::TooManySamples
		);
		// The liar declares the cap (4x its real 100 samples); it must stake twice the
		// minimum for it, the honest trainers 1.25x.
		bid(id, 10, 100);
		bid(id, 11, 100);
		bid(id, 12, 400);
		assert_eq!((held_stake(10), held_stake(12)), (125, 200));
		run_to(task(id).phase_end);
		let trainers = task(id).trainers.to_vec();
		honest_round(id, &trainers, H256::repeat_byte(1));
		let earned = |who| Participants::<Test>::get(id, who).expect("p").earned;
		// Weights are sqrt(samples): claiming 4x the data earns at most 2x the share
		// (linear weights gave 4x, and u64::MAX gave everything).
		assert!(earned(10) > 0 && earned(11) > 0);
		assert!(
			earned(12) <= 2 * earned(10) + 1,
			"{} vs {}",
			earned(12),
			earned(10)
		);
		assert!(earned(12) * 3 < pool(1) * 2);
	});
	// A publisher who wants declared size to be worth nothing sets max = min: everyone in
	// the aggregate is paid alike, so the liar gains exactly nothing.
	build_and_execute(|| {
		let mut s = spec(2, 1);
		(s.min_samples, s.max_samples) = (100, 100);
		let id = publish(s);
		bid(id, 10, 100);
		assert_noop!(
			FlTasks::bid(signed(11), id, 101, 10, 1, commit(11, &seed(11, 0, 0))),
			E::TooManySamples
		);
		bid(id, 11, 100);
		run_to(task(id).phase_end);
		honest_round(id, &[10, 11], H256::repeat_byte(1));
		let earned = |who| Participants::<Test>::get(id, who).expect("p").earned;
		assert_eq!(earned(10), earned(11));
	});
}

// ------------------------------------------------------ 2. evading report_lazy by energy

/// Round 0 of a 4-trainer task where 13 submits `copy(victim 10's values, 13's key)`.
fn copier_round(copy: impl Fn(Vec<f32>, &Seed) -> Vec<f32>) -> (TaskId, Vec<f32>) {
	let (id, _) = selected_task(4, 1);
	for who in [10, 11, 12] {
		submit(id, who);
	}
	let copied = copy(honest(id, 10), &own_key(id, 13));
	submit_values(id, 13, &copied);
	next_block();
	for who in 10..=13 {
		reveal(id, who);
	}
	(id, copied)
}

#[test]
fn attack_energy_inflating_copier_is_still_proven() {
	build_and_execute(|| {
		// The copier piles its own chips at 20x the update's RMS on the stolen update.
		let (id, copied) = copier_round(|mut v, own| {
			add_chips(&mut v, own, 0.7);
			v
		});
		// Against the plain correlation this hid the victim's watermark (z < 6).
		let fixed: Vec<i64> = Blob::parse(&blob(id, 0, &copied), usize::MAX)
			.unwrap()
			.fixed_values()
			.collect();
		let victim_key = Updates::<Test>::get(id, 10).unwrap().seed.unwrap();
		let plain = blade_fl_primitives::correlation::correlate(fixed.into_iter(), &victim_key);
		assert!(!blade_fl_primitives::correlation::proves_copy(
			plain,
			u64::from(PARAMS),
			600
		));
		// The runtime removes the copier's own revealed watermark first.
		prove_copy_of_10(id, &copied);
		assert_eq!(free(13), ENDOWMENT - 50);
		assert_eq!(task(id).lazy, 1 << 3);
	});
}

#[test]
fn attack_spiked_parameter_copier_is_still_proven() {
	build_and_execute(|| {
		// One parameter carries almost all the energy (within the norm bound of 100).
		let (id, copied) = copier_round(|mut v, _| {
			v[7] = 99.0;
			v
		});
		prove_copy_of_10(id, &copied);
	});
}

#[test]
fn attack_norm_bound_refuses_inflated_updates() {
	build_and_execute(|| {
		let mut s = spec(2, 1);
		// Honest updates here have norm ~2.3; the task allows 3.
		s.max_norm_milli = 3_000;
		let id = publish(s);
		bid(id, 10, 1_000);
		bid(id, 11, 999);
		run_to(task(id).phase_end);
		let mut inflated = honest(id, 11);
		let own = own_key(id, 11);
		add_chips(&mut inflated, &own, 0.2);
		let next = commit(11, &seed(11, 1, 0));
		assert_noop!(
			FlTasks::submit_update(signed(11), id, 0, blob(id, 0, &inflated), next),
			E::UpdateNormTooLarge
		);
		submit(id, 11);
	});
}

#[test]
fn attack_averaging_copier_is_proven_against_all_victims() {
	build_and_execute(|| {
		let (id, t) = selected_task(8, 1);
		for who in &t[..7] {
			submit(id, *who);
		}
		// 17 averages the other seven updates: each watermark at 1/7 of its strength over
		// the shared part of the updates (its own values without a watermark here).
		let mut averaged = honest_values(id, 17, 0, &seed(17, 0, 0), 0.0);
		for who in &t[..7] {
			add_chips(&mut averaged, &own_key(id, *who), 0.015 / 7.0);
		}
		add_chips(&mut averaged, &own_key(id, 17), 0.02);
		submit_values(id, 17, &averaged);
		next_block();
		for who in &t {
			reveal(id, *who);
		}
		let b = blob(id, 0, &averaged);
		// The set of victims is final only in the aggregate phase.
		assert_noop!(
			FlTasks::report_lazy(signed(20), id, 0, 17, None, b.clone()),
			E::AllVictimsTooEarly
		);
		next_block();
		assert_eq!(task(id).phase, Phase::Aggregate);
		// No single victim's watermark is strong enough ...
		assert_ok!(FlTasks::report_lazy(
			signed(20),
			id,
			0,
			17,
			Some(10),
			b.clone()
		));
		assert!(matches!(lazy_event(), Some(Event::FalseAccusation { .. })));
		// ... all of them together prove the copy.
		assert_ok!(FlTasks::report_lazy(signed(20), id, 0, 17, None, b));
		let Some(Event::LazyProven {
			victim, z_centi, ..
		}) = lazy_event()
		else {
			panic!("not proven");
		};
		assert_eq!(victim, None);
		assert!(z_centi >= 600, "{z_centi}");
		// Half its stake slashed; the false single-victim report's penalty (50, paid to it
		// by the reporter) does not make up for it.
		assert_eq!(free(17), ENDOWMENT - 50 + 50);
		assert_eq!(held_stake(17), 0);
		assert!(Participants::<Test>::get(id, 17).unwrap().earned == 0);
	});
}

#[test]
fn honest_updates_survive_all_victims_reports() {
	build_and_execute(|| {
		let (id, t) = selected_task(8, 1);
		submit_and_reveal(id, &t);
		for accused in [10, 13, 17] {
			let b = blob(
				id,
				0,
				&honest_values(id, accused, 0, &seed(accused, 0, 0), 0.02),
			);
			assert_ok!(FlTasks::report_lazy(signed(20), id, 0, accused, None, b));
			assert!(matches!(lazy_event(), Some(Event::FalseAccusation { .. })));
		}
		assert_eq!(task(id).lazy, 0);
		assert_eq!(free(20), ENDOWMENT - 150);
	});
}

#[test]
fn attack_submitting_without_a_watermark_is_proven() {
	build_and_execute(|| {
		let (id, _) = selected_task(3, 1);
		submit(id, 10);
		submit(id, 11);
		// 12 leaves out its watermark, so an accomplice could copy it without trace.
		let bare = honest_values(id, 12, 0, &seed(12, 0, 0), 0.0);
		submit_values(id, 12, &bare);
		next_block();
		let b = blob(id, 0, &bare);
		assert_noop!(
			FlTasks::report_weak_watermark(signed(20), id, 0, 12, b.clone()),
			E::AccusedSeedUnknown
		);
		for who in [10, 11, 12] {
			reveal(id, who);
		}
		// An honest watermark (0.02 over values of RMS ~0.03: ~3 dB, stronger than the
		// task's 6 dB) is not weak: the reporter pays.
		let good = blob(id, 0, &honest_values(id, 11, 0, &seed(11, 0, 0), 0.02));
		assert_ok!(FlTasks::report_weak_watermark(signed(20), id, 0, 11, good));
		assert_eq!(free(20), ENDOWMENT - 50);
		assert_ok!(FlTasks::report_weak_watermark(signed(20), id, 0, 12, b));
		assert!(task_events()
			.iter()
			.any(|e| matches!(e, Event::WeakWatermarkProven { accused: 12, .. })));
		assert_eq!(free(12), ENDOWMENT - 50);
		assert_eq!(task(id).lazy, 1 << 2);
		// Excluded: it cannot vote, and the round pays only the honest two.
		next_block();
		vote(id, 10, H256::repeat_byte(1), 0b011);
		vote(id, 11, H256::repeat_byte(1), 0b011);
		next_block();
		let earned: Balance = [10, 11]
			.iter()
			.map(|w| Participants::<Test>::get(id, w).unwrap().earned)
			.sum();
		assert!(pool(1) - earned <= 1);
		assert_eq!(Participants::<Test>::get(id, 12).unwrap().earned, 0);
	});
}

// ------------------------------------------------------------ 3. unbounded commitments

/// Number of storage keys under the pallet's prefix.
fn pallet_keys() -> usize {
	let prefix = sp_io::hashing::twox_128(b"FlTasks");
	let mut count = 0;
	let mut key = prefix.to_vec();
	while let Some(next) = sp_io::storage::next_key(&key) {
		if !next.starts_with(&prefix) {
			break;
		}
		count += 1;
		key = next;
	}
	count
}

#[test]
fn attack_commitment_flood_leaves_no_storage_behind() {
	build_and_execute(|| {
		let id = publish(spec(2, 1));
		bid(id, 10, 100);
		let before = pallet_keys();
		// 500 bid/withdraw cycles with fresh commitments used to leave 500 keys, all
		// cleared in one block at settlement.
		for i in 0..500u32 {
			assert_ok!(FlTasks::bid(
				signed(11),
				id,
				100,
				1,
				1,
				commit(11, &seed(11, i, 0))
			));
			assert_ok!(FlTasks::withdraw_bid(signed(11), id));
		}
		assert_eq!(pallet_keys(), before);
		// Settlement work is bounded by the bids and rounds, whatever the history.
		let weight = FlTasks::advance(id, task(id).phase_end);
		assert!(weight.all_lte(<() as WeightInfo>::settle(16, 8)));
	});
}

// ------------------------------------------------------------ 4. locking the market

#[test]
fn attack_market_lock_for_pennies_is_priced() {
	build_and_execute(|| {
		MinRewardPerTrainerRound::set(100);
		ListingFeePerBlock::set(10);
		// A task paying 1 unit fills no slot.
		let mut cheap = spec(3, 2);
		cheap.reward = 599;
		assert_noop!(FlTasks::publish_task(signed(2), cheap), E::BadReward);
		// A slot held long costs its whole possible life in fees, burnt: 1 000 blocks of
		// bidding + 2 rounds x 15 blocks + 10 of publishing = 1 040 blocks.
		let mut long = spec(3, 2);
		long.reward = 600;
		long.phases.bidding = 1_000;
		let issuance = Balances::total_issuance();
		assert_ok!(FlTasks::publish_task(signed(2), long));
		assert_eq!(free(2), ENDOWMENT - 600 - 10_400);
		assert_eq!(Balances::total_issuance(), issuance - 10_400);
		// Long round phases are priced the same way (a minimal bidding phase does not
		// make a long task cheap): 2 + 2 x (1 000 + 5 + 5) + 10 blocks.
		let mut slow = spec(3, 2);
		slow.reward = 600;
		slow.phases.bidding = 2;
		slow.phases.submit = 1_000;
		assert_eq!(FlTasks::listing_fee(&slow), 10 * (2 + 2 * 1_010 + 10));
		// One account holds at most MaxTasksPerPublisher = 3 slots.
		assert_ok!(FlTasks::publish_task(signed(2), long));
		assert_ok!(FlTasks::publish_task(signed(2), long));
		assert_noop!(FlTasks::publish_task(signed(2), long), E::PublisherBusy);
		// The slot left is still open to everybody else.
		assert_ok!(FlTasks::publish_task(signed(PUBLISHER), spec(2, 1)));
		MinRewardPerTrainerRound::set(1);
		ListingFeePerBlock::set(0);
	});
}

#[test]
fn attack_early_listings_cannot_delay_others_deadlines() {
	build_and_execute(|| {
		// Three tasks listed in this order, due latest first.
		for (who, bidding) in [(2, 30), (3, 20), (4, 10)] {
			let mut s = spec(2, 1);
			s.phases.bidding = bidding;
			assert_ok!(FlTasks::publish_task(signed(who), s));
		}
		// The hook fell behind: all three are due at once, room for two (most overdue
		// first, not first listed).
		System::set_block_number(50);
		FlTasks::on_initialize(50);
		let failing = |id| matches!(task(id).phase, Phase::Failing(_));
		assert!(failing(2) && failing(1) && !failing(0));
	});
}

// --------------------------------------------------------------- 5. crafted blobs

#[test]
fn attack_crafted_blobs_that_overflow_trainers_are_refused() {
	build_and_execute(|| {
		let mut s = spec(2, 1);
		s.codec = Codec::Int8;
		let id = publish(s);
		bid(id, 10, 100);
		bid(id, 11, 99);
		run_to(task(id).phase_end);
		let int8 = |scale_bits: u32| {
			let header = BlobHeader {
				task: id,
				round: 0,
				param_count: PARAMS,
				codec: Codec::Int8,
				scale_bits,
			};
			let mut bytes = header.encode().to_vec();
			bytes.extend((0..PARAMS).map(|i| (i % 200) as u8));
			bytes
		};
		let next = commit(10, &seed(10, 1, 0));
		// int8 with scale 1e37: bytes decode to ~1e39, infinity in f32. Refused by the
		// parser's scale bound (spec 106).
		assert_noop!(
			FlTasks::submit_update(
				signed(10),
				id,
				0,
				int8(1.0e37f32.to_bits()).try_into().unwrap(),
				next
			),
			E::BlobBadScale
		);
		// At the largest scale the parser accepts every value is finite but near
		// f32::MAX: refused by the norm bound.
		let largest = blade_fl_primitives::blob::MAX_INT8_SCALE_BITS;
		assert_noop!(
			FlTasks::submit_update(signed(10), id, 0, int8(largest).try_into().unwrap(), next),
			E::UpdateNormTooLarge
		);
	});
	build_and_execute(|| {
		let (id, _) = selected_task(2, 1);
		// f32 values near f32::MAX: their sum is infinite in f32.
		let huge = vec![f32::MAX / 2.0; PARAMS as usize];
		let next = commit(10, &seed(10, 1, 0));
		assert_noop!(
			FlTasks::submit_update(signed(10), id, 0, blob(id, 0, &huge), next),
			E::UpdateNormTooLarge
		);
	});
}

// ------------------------------------------------------------ 6. withheld aggregate

#[test]
fn attack_withheld_aggregate_pays_the_withholder_nothing() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(3, 3);
		let agg = |round: u32| blob(id, round, &honest_values(id, 1, round, &seed(1, 0, 0), 0.0));
		let hash = |round: u32| H256(blade_fl_primitives::blob::blob_hash(&agg(round)));
		honest_round(id, &trainers, hash(0));
		let model = GlobalModels::<Test>::get(id, 0).unwrap();
		assert_eq!(model.aggregator, 10);
		let earned = Participants::<Test>::get(id, 10).unwrap().earned;
		assert!(earned > 0);
		// 10 withholds. During its window nobody else may publish ...
		assert_noop!(
			FlTasks::publish_aggregate(signed(11), id, 0, agg(0)),
			E::NotAggregator
		);
		run_to(model.exclusive_until);
		// ... then anyone holding the agreed blob may, and takes the fee.
		let before = free(11);
		assert_ok!(FlTasks::publish_aggregate(signed(11), id, 0, agg(0)));
		assert_eq!(free(11), before + model.fee);
		assert!(task_events().iter().any(|e| matches!(
			e,
			Event::PublicationMissed {
				round: 0,
				aggregator: 10,
				..
			}
		)));
		// The withholder forfeited round 0's reward and is out of the rest of the task: an
		// early withheld round cannot be followed by paid ones.
		assert_eq!(Participants::<Test>::get(id, 10).unwrap().earned, 0);
		assert_ne!(task(id).lazy & 1, 0);
		assert_noop!(
			FlTasks::submit_update(
				signed(10),
				id,
				1,
				blob(id, 1, &honest(id, 10)),
				commit(10, &seed(10, 2, 0))
			),
			E::Excluded
		);
		// Rounds 1 and 2 go on without it; nobody publishes the last model.
		honest_round(id, &trainers[1..], hash(1));
		let second = GlobalModels::<Test>::get(id, 1).unwrap();
		assert_eq!(second.included, 0b110);
		assert_ok!(FlTasks::publish_aggregate(
			signed(second.aggregator),
			id,
			1,
			agg(1)
		));
		honest_round(id, &trainers[1..], H256::repeat_byte(7));
		let rep_before = Reputation::score(&11);
		run_to(task(id).phase_end);
		assert!(Tasks::<Test>::get(id).is_none());
		assert!(
			Reputation::score(&11) < rep_before,
			"the last withholder records a miss"
		);
		// The withholder paid `MissSlash` (10 % of its stake of 100) and earned nothing:
		// it ends with less than it started, the honest trainers with more.
		let slashed: Balance = task_events()
			.iter()
			.filter_map(|e| match e {
				Event::Penalised {
					trainer: 10,
					offence: Offence::NoPublication,
					slashed,
					..
				} => Some(*slashed),
				_ => None,
			})
			.sum();
		assert_eq!(slashed, 10);
		assert_eq!(free(10), ENDOWMENT - slashed);
		assert!(free(12) > ENDOWMENT);
	});
}

/// Publishing after its own window is withholding: the late aggregator gets no fee and the
/// same penalty as if someone else had published.
#[test]
fn attack_late_self_publication_is_penalised_like_withholding() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(3, 2);
		let agg = blob(id, 0, &honest_values(id, 1, 0, &seed(1, 0, 0), 0.0));
		honest_round(
			id,
			&trainers,
			H256(blade_fl_primitives::blob::blob_hash(&agg)),
		);
		let model = GlobalModels::<Test>::get(id, 0).unwrap();
		assert_eq!(model.aggregator, 10);
		run_to(model.exclusive_until + 1);
		let (before, escrow) = (free(10), task(id).escrow);
		assert_ok!(FlTasks::publish_aggregate(signed(10), id, 0, agg));
		assert_eq!(task(id).escrow, escrow, "no fee for a late publication");
		assert!(free(10) <= before);
		assert!(task_events().iter().any(|e| matches!(
			e,
			Event::Penalised {
				trainer: 10,
				offence: Offence::NoPublication,
				..
			}
		)));
		assert_eq!(Participants::<Test>::get(id, 10).unwrap().earned, 0);
		assert_ne!(task(id).lazy & 1, 0, "out of the rest of the task");
	});
}

/// A backup publishing an earlier round's model during `Publishing` must not end the phase
/// (and so the last aggregator's window) early, nor get that aggregator penalised.
#[test]
fn attack_late_backup_publication_cannot_cut_the_last_window() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(2, 2);
		let agg = |round: u32| blob(id, round, &honest_values(id, 1, round, &seed(1, 0, 0), 0.0));
		let hash = |round: u32| H256(blade_fl_primitives::blob::blob_hash(&agg(round)));
		honest_round(id, &trainers, hash(0));
		let first = GlobalModels::<Test>::get(id, 0).unwrap();
		honest_round(id, &trainers, hash(1));
		assert_eq!(task(id).phase, Phase::Publishing);
		run_to(first.exclusive_until.max(System::block_number()));
		// 10 withheld round 0; 11 publishes it ...
		assert_ok!(FlTasks::publish_aggregate(signed(11), id, 0, agg(0)));
		next_block();
		// ... and the last round's aggregator still has its window.
		assert_eq!(task(id).phase, Phase::Publishing);
		assert_ok!(FlTasks::publish_aggregate(signed(10), id, 1, agg(1)));
		next_block();
		assert!(Tasks::<Test>::get(id).is_none());
		let penalties = task_events()
			.iter()
			.filter(|e| {
				matches!(
					e,
					Event::Penalised {
						trainer: 10,
						offence: Offence::NoPublication,
						..
					}
				)
			})
			.count();
		assert_eq!(penalties, 1, "only the withheld round 0 is penalised");
	});
}

// ----------------------------------------------------- 10. framing by a planted model

/// 12 commits to its round-1 seed in round 0 and tries to plant its round-1 chips in the
/// round-0 aggregate, so that honest round-1 updates (trained from that model) carry them
/// and it can accuse their owners of copying it. The round key includes the agreed hash of
/// the round-0 aggregate, unknown when 12 made its round-0 update: even an honest update
/// that carries the planted pattern in full is not a copy of 12, and the accusation costs
/// 12 the false-report penalty.
#[test]
fn attack_framing_through_a_planted_global_model_fails() {
	build_and_execute(|| {
		let (id, trainers) = selected_task(3, 2);
		let next_seed = seed(12, 1, 0);
		// The attacker's best guess of its round-1 key while round 0 is open (the starting
		// model's hash is not agreed yet: it guesses today's, the task's validation hash).
		let guess = key(id, 12, 0, &next_seed);
		for who in [10, 11] {
			submit(id, who);
		}
		let mut planted = honest(id, 12);
		add_chips(&mut planted, &guess, 0.02);
		submit_values(id, 12, &planted);
		next_block();
		for who in &trainers {
			reveal(id, *who);
		}
		next_block();
		let agreed = H256::repeat_byte(0x51);
		for who in &trainers {
			if task(id).decided.is_none() {
				vote(id, *who, agreed, task(id).eligible());
			}
		}
		next_block();
		assert_eq!(task(id).round, 1);
		let actual = key(id, 12, 1, &next_seed);
		assert_ne!(
			actual, guess,
			"the round-1 key depends on the agreed round-0 hash"
		);
		// Worst case for the victim: its round-1 update carries the planted pattern at the
		// full watermark amplitude.
		for who in [10, 12] {
			submit(id, who);
		}
		let mut framed = honest(id, 11);
		add_chips(&mut framed, &guess, 0.02);
		submit_values(id, 11, &framed);
		next_block();
		for who in &trainers {
			reveal(id, *who);
		}
		let before = free(12);
		assert_ok!(FlTasks::report_lazy(
			signed(12),
			id,
			1,
			11,
			Some(12),
			blob(id, 1, &framed)
		));
		assert!(matches!(
			lazy_event(),
			Some(Event::FalseAccusation { accused: 11, .. })
		));
		assert!(
			free(12) < before,
			"the framer pays the false-report penalty"
		);
		assert_eq!(task(id).lazy, 0);
		// Had the chips been knowable (the actual key planted), the proof would stand: the
		// binding is what defeats the attack.
		let mut knowable = honest(id, 11);
		add_chips(&mut knowable, &actual, 0.02);
		let fixed = |v: &[f32]| -> Vec<i64> {
			Blob::parse(&blob(id, 1, v), usize::MAX)
				.unwrap()
				.fixed_values()
				.collect()
		};
		let own = Updates::<Test>::get(id, 11).unwrap().seed.unwrap();
		let amplitude =
			blade_fl_primitives::verdict::own_watermark(fixed(&knowable).into_iter(), &own)
				.amplitude;
		assert!(
			blade_fl_primitives::verdict::copy_proven(
				fixed(&knowable).into_iter(),
				Some((&own, amplitude)),
				&[actual],
				<Test as crate::Config>::LazyZScore::get(),
			)
			.0
		);
	});
}

// --------------------------------------------------------------- 9. smaller ones

#[test]
fn attack_lazy_first_proposer_loses_the_aggregator_role() {
	build_and_execute(|| {
		let (id, copied) = copier_round(|plain, _| plain);
		next_block();
		// The copier votes first (it would be the aggregator and earn the fee) ...
		let hash = H256::repeat_byte(3);
		vote(id, 13, hash, 0b0111);
		// ... and is proven lazy before the quorum.
		assert_ok!(FlTasks::report_lazy(
			signed(11),
			id,
			0,
			13,
			Some(10),
			blob(id, 0, &copied)
		));
		vote(id, 11, hash, 0b0111);
		vote(id, 12, hash, 0b0111);
		next_block();
		let model = GlobalModels::<Test>::get(id, 0).expect("finalised");
		assert_eq!(model.aggregator, 11);
		assert_eq!(
			Participants::<Test>::get(id, 13).unwrap().earned,
			0,
			"the copier earns nothing"
		);
	});
}

#[test]
fn attack_quorum_stall_after_a_lazy_proof_is_resolved() {
	build_and_execute(|| {
		let (id, copied) = copier_round(|plain, _| plain);
		next_block();
		let hash = H256::repeat_byte(3);
		// Two of four eligible votes: no quorum, and 12 stays silent.
		vote(id, 10, hash, 0b0111);
		vote(id, 11, hash, 0b0111);
		assert!(task(id).decided.is_none());
		// The proof shrinks the eligible set to three: two votes are now a quorum, decided
		// at once instead of waiting for a vote that may never come.
		assert_ok!(FlTasks::report_lazy(
			signed(12),
			id,
			0,
			13,
			Some(10),
			blob(id, 0, &copied)
		));
		assert_eq!(task(id).decided, Some(0));
		assert_eq!(task(id).phase_end, System::block_number() + 1);
	});
}
