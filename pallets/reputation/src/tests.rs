//! Unit and property tests of `pallet_fl_reputation`; each ends with `try_state`.

use crate::{mock::*, Behaviour, Event, Evidence, Records};
use proptest::prelude::*;
use sp_runtime::Perbill;

type Rep = crate::Pallet<Test>;

#[test]
fn unknown_account_has_the_prior() {
	build_and_execute(|| {
		assert_eq!(Rep::score(&7), Perbill::from_percent(50));
		assert!(Records::<Test>::get(7).is_none());
	});
}

#[test]
fn good_raises_bad_lowers_and_emits() {
	build_and_execute(|| {
		let up = <Rep as crate::Reputation<u64>>::record(&1, Behaviour::Good);
		assert!(up > Perbill::from_percent(50));
		System::assert_last_event(
			Event::Recorded {
				who: 1,
				behaviour: Behaviour::Good,
				score: up,
			}
			.into(),
		);
		let down = <Rep as crate::Reputation<u64>>::record(&2, Behaviour::Lazy);
		assert!(down < Perbill::from_percent(50));
		// Lazy weighs more than a miss, which weighs more than a dissent.
		let missed = <Rep as crate::Reputation<u64>>::record(&3, Behaviour::Missed);
		let dissent = <Rep as crate::Reputation<u64>>::record(&4, Behaviour::Dissent);
		assert!(down < missed && missed < dissent);
	});
}

#[test]
fn exact_beta_mean_with_decay() {
	build_and_execute(|| {
		// good: 1000, then decayed to 900 and + 1000 = 1900; bad 0 -> score 2900/3900.
		<Rep as crate::Reputation<u64>>::record(&1, Behaviour::Good);
		let score = <Rep as crate::Reputation<u64>>::record(&1, Behaviour::Good);
		assert_eq!(
			Records::<Test>::get(1),
			Some(Evidence {
				good: 1_900,
				bad: 0
			})
		);
		assert_eq!(score, Perbill::from_rational(2_900u64, 3_900u64));
	});
}

#[test]
fn decay_lets_a_reformed_trainer_recover() {
	build_and_execute(|| {
		<Rep as crate::Reputation<u64>>::record(&1, Behaviour::Lazy);
		let low = Rep::score(&1);
		for _ in 0..60 {
			<Rep as crate::Reputation<u64>>::record(&1, Behaviour::Good);
		}
		assert!(
			Rep::score(&1) > Perbill::from_percent(80),
			"{:?} from {low:?}",
			Rep::score(&1)
		);
	});
}

#[test]
fn zero_weight_leaves_no_record() {
	build_and_execute(|| {
		DissentWeight::set(0);
		<Rep as crate::Reputation<u64>>::record(&1, Behaviour::Dissent);
		assert!(Records::<Test>::get(1).is_none());
		DissentWeight::set(1_000);
	});
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
	prop_oneof![
		Just(Behaviour::Good),
		Just(Behaviour::Dissent),
		Just(Behaviour::Outlier),
		Just(Behaviour::Missed),
		Just(Behaviour::Lazy),
	]
}

proptest! {
	#[test]
	fn score_stays_in_unit_interval_and_evidence_bounded(
		history in proptest::collection::vec(behaviour(), 0..200),
	) {
		build_and_execute(|| {
			for b in &history {
				let score = <Rep as crate::Reputation<u64>>::record(&1, *b);
				assert!(score <= Perbill::one());
			}
			let e = Records::<Test>::get(1).unwrap_or_default();
			// With 90 % decay the evidence never exceeds max weight / (1 - 0.9) = 50 events.
			assert!(e.good + e.bad <= 50_000, "{e:?}");
		});
	}

	#[test]
	fn good_never_lowers_bad_never_raises(
		history in proptest::collection::vec(behaviour(), 0..50),
		next in behaviour(),
	) {
		build_and_execute(|| {
			for b in &history {
				<Rep as crate::Reputation<u64>>::record(&1, *b);
			}
			let before = Rep::score(&1);
			let after = <Rep as crate::Reputation<u64>>::record(&1, next);
			match next {
				// Decay pulls toward one half, so compare against that too.
				Behaviour::Good => assert!(after >= before.min(Perbill::from_percent(50))),
				_ => assert!(after <= before.max(Perbill::from_percent(50))),
			}
		});
	}
}
