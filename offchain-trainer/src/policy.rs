//! When a serving trainer bids on a task: the policy of `blade-trainer serve`.
//!
//! A task is worth a bid when this trainer can serve it (it has the task's data set and
//! supports its model, and holds enough samples), when it pays (the reward per seat and
//! round is at least the operator's price of a round of training), when the stake is
//! acceptable and affordable, when the task's privacy cap lets this trainer learn, and
//! when the phases leave time to train and to see each phase confirmed. [`decide`] is a
//! pure function of the task and the trainer's situation, so every refusal has a reason
//! an operator can read (and a test can check).

use std::fmt;

use crate::chain::{Balance, TaskView, UNIT};

/// The operator's bidding policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
	/// Least reward per seat and round (`reward / rounds / trainers_wanted`).
	pub min_reward_per_round: Balance,
	/// Most stake this trainer puts at risk in one task.
	pub max_stake: Balance,
	/// Tasks served at once.
	pub max_tasks: usize,
	/// Least total epsilon per task this trainer can learn at; tasks whose privacy floor
	/// demands more privacy are left to others.
	pub min_epsilon: f64,
	/// Data set ids this trainer holds data for.
	pub datasets: Vec<u32>,
	/// Model ids this trainer can train.
	pub models: Vec<u32>,
	/// Seconds one round of local training takes here (measure with `blade-trainer plan`
	/// or a first task; the service logs each round's time).
	pub round_seconds: f64,
	/// Expected seconds per block (the chain's target block time).
	pub block_seconds: f64,
	/// Depth at which this trainer acts.
	pub confirmations: u32,
	/// Free balance always kept for fees.
	pub reserve: Balance,
}

impl Default for Policy {
	fn default() -> Self {
		Policy {
			min_reward_per_round: UNIT / 10,
			max_stake: 100 * UNIT,
			max_tasks: 4,
			min_epsilon: 0.0,
			datasets: vec![1],
			models: vec![1, 2, 3],
			round_seconds: 10.0,
			block_seconds: 6.0,
			confirmations: 3,
			reserve: UNIT,
		}
	}
}

/// What this trainer brings to one decision.
#[derive(Clone, Copy, Debug)]
pub struct Situation {
	/// Samples it can train on for the task's data set.
	pub samples: u64,
	/// Its free balance.
	pub free: Balance,
	/// Tasks it serves now.
	pub serving: usize,
}

/// Why a task gets no bid.
#[derive(Clone, Debug, PartialEq)]
pub enum Skip {
	/// Bidding is over.
	NotBidding,
	/// Already serving `max_tasks` tasks.
	Busy {
		/// Tasks served now.
		serving: usize,
	},
	/// No data for the task's data set.
	Dataset(u32),
	/// The task's model is not supported.
	Model(u32),
	/// Fewer samples than the task's minimum.
	TooFewSamples {
		/// Samples this trainer has.
		have: u64,
		/// The task's minimum.
		min: u64,
	},
	/// The reward per seat and round is below the policy.
	Underpaid {
		/// Reward per seat and round offered.
		offered: Balance,
		/// The policy's minimum.
		min: Balance,
	},
	/// The stake is above the policy's maximum.
	StakeTooHigh {
		/// Stake the bid would hold.
		stake: Balance,
		/// The policy's maximum.
		max: Balance,
	},
	/// Not enough free balance for the stake and the reserve.
	Funds {
		/// Free balance.
		free: Balance,
		/// Stake plus reserve.
		needed: Balance,
	},
	/// This trainer cannot meet the task's privacy floor with its configuration (see
	/// [`crate::privacy::task::Refusal`]).
	PrivacyFloor(String),
	/// The task's privacy cap is below what this trainer can learn at.
	Privacy {
		/// The task's epsilon cap.
		cap: f64,
		/// The policy's floor.
		floor: f64,
	},
	/// A round phase is shorter than this trainer needs to see it and act.
	PhaseTooShort {
		/// The shortest phase, blocks.
		blocks: u32,
		/// Blocks needed.
		needed: u32,
	},
	/// The submit phase leaves no time to train.
	NoTimeToTrain {
		/// Seconds left for training in the submit phase.
		available: f64,
		/// Seconds a round takes here.
		needed: f64,
	},
}

fn blade(amount: Balance) -> f64 {
	amount as f64 / UNIT as f64
}

impl fmt::Display for Skip {
	fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
		match self {
			Skip::NotBidding => write!(f, "bidding is over"),
			Skip::Busy { serving } => write!(f, "already serving {serving} tasks (max-tasks)"),
			Skip::Dataset(id) => write!(f, "no data for data set {id} (datasets)"),
			Skip::Model(id) => write!(f, "model {id} not supported (models)"),
			Skip::TooFewSamples { have, min } => {
				write!(f, "{have} samples, the task wants at least {min}")
			}
			Skip::Underpaid { offered, min } => write!(
				f,
				"pays {:.4} BLADE per seat and round, below min-reward-per-round {:.4}",
				blade(*offered),
				blade(*min)
			),
			Skip::StakeTooHigh { stake, max } => write!(
				f,
				"stake {:.4} BLADE above max-stake {:.4}",
				blade(*stake),
				blade(*max)
			),
			Skip::Funds { free, needed } => write!(
				f,
				"free balance {:.4} BLADE, stake and reserve need {:.4}",
				blade(*free),
				blade(*needed)
			),
			Skip::PrivacyFloor(why) => write!(f, "{why}"),
			Skip::Privacy { cap, floor } => write!(
				f,
				"privacy cap epsilon {cap} below min-epsilon {floor} (this trainer would not learn)"
			),
			Skip::PhaseTooShort { blocks, needed } => write!(
				f,
				"shortest round phase {blocks} blocks, acting {needed} deep needs at least {needed}"
			),
			Skip::NoTimeToTrain { available, needed } => write!(
				f,
				"submit phase leaves {available:.0} s to train, a round takes {needed:.0} s (round-seconds)"
			),
		}
	}
}

/// Bid, and with how many samples and what stake, or why not.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
	/// Bid.
	Bid {
		/// Samples to declare (this trainer's, capped at the task's maximum).
		samples: u64,
		/// Stake the bid holds.
		stake: Balance,
	},
	/// No bid.
	Skip(Skip),
}

/// Decide whether to bid on `task`; see the module docs.
pub fn decide(policy: &Policy, task: &TaskView, me: Situation) -> Decision {
	use pallet_fl_tasks::Phase;
	let spec = &task.spec;
	let skip = |why| Decision::Skip(why);
	if task.phase != Phase::Bidding {
		return skip(Skip::NotBidding);
	}
	if me.serving >= policy.max_tasks {
		return skip(Skip::Busy {
			serving: me.serving,
		});
	}
	if !policy.datasets.contains(&spec.dataset_id) {
		return skip(Skip::Dataset(spec.dataset_id));
	}
	if !policy.models.contains(&spec.model_id) {
		return skip(Skip::Model(spec.model_id));
	}
	if me.samples < spec.min_samples {
		return skip(Skip::TooFewSamples {
			have: me.samples,
			min: spec.min_samples,
		});
	}
	let seats = u128::from(spec.rounds.max(1)) * u128::from(spec.trainers_wanted.max(1));
	let offered = spec.reward / seats;
	if offered < policy.min_reward_per_round {
		return skip(Skip::Underpaid {
			offered,
			min: policy.min_reward_per_round,
		});
	}
	let samples = me.samples.min(spec.max_samples);
	let stake = pallet_fl_tasks::Pallet::<blade_fl_runtime::Runtime>::bid_stake(spec, samples);
	if stake > policy.max_stake {
		return skip(Skip::StakeTooHigh {
			stake,
			max: policy.max_stake,
		});
	}
	let needed = stake.saturating_add(policy.reserve);
	if me.free < needed {
		return skip(Skip::Funds {
			free: me.free,
			needed,
		});
	}
	if let Some(floor) = crate::privacy::task::floor_budget(spec.privacy) {
		let cap = floor.epsilon;
		if cap < policy.min_epsilon {
			return skip(Skip::Privacy {
				cap,
				floor: policy.min_epsilon,
			});
		}
	}
	let phases = spec.phases;
	let shortest = phases.submit.min(phases.reveal).min(phases.aggregate);
	let act = policy.confirmations.saturating_add(2);
	if shortest < act {
		return skip(Skip::PhaseTooShort {
			blocks: shortest,
			needed: act,
		});
	}
	// The submission must be confirmed before the phase ends; the global model arrives
	// up to half the submit phase late (the aggregator's window).
	let train_blocks = (phases.submit / 2).saturating_sub(act);
	let available = f64::from(train_blocks) * policy.block_seconds;
	if available < policy.round_seconds {
		return skip(Skip::NoTimeToTrain {
			available,
			needed: policy.round_seconds,
		});
	}
	Decision::Bid { samples, stake }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use blade_fl_primitives::blob::Codec;
	use pallet_fl_tasks::{AggregationRule, Phase, PhaseLengths, TaskSpec};
	use sp_core::H256;

	fn task() -> TaskView {
		TaskView {
			publisher: sp_core::crypto::AccountId32::new([1; 32]),
			spec: TaskSpec {
				model_id: 1,
				param_count: 25_450,
				dataset_id: 1,
				validation_hash: H256::zero(),
				rounds: 4,
				trainers_wanted: 5,
				trainers_min: 3,
				min_samples: 100,
				max_samples: 6_000,
				codec: Codec::F32,
				rule: AggregationRule::CoordinateMedian,
				privacy: Some(pallet_fl_tasks::PrivacyFloor {
					max_epsilon_milli: 8_000,
					delta: sp_runtime::Perbill::from_parts(10_000),
				}),
				pn_snr_centi_db: 600,
				max_norm_milli: 100_000,
				phases: PhaseLengths {
					bidding: 10,
					submit: 40,
					reveal: 10,
					aggregate: 10,
				},
				reward: 100 * UNIT,
				min_stake: 10 * UNIT,
			},
			phase: Phase::Bidding,
			phase_end: 10,
			round: 0,
			attempt: 0,
			escrow: 100 * UNIT,
			bids: 0,
			trainers: vec![],
			submitted: 0,
			revealed: 0,
			lazy: 0,
			decided: None,
		}
	}

	fn me() -> Situation {
		Situation {
			samples: 3_000,
			free: 1_000 * UNIT,
			serving: 0,
		}
	}

	#[test]
	fn a_task_that_pays_and_fits_gets_a_bid_with_the_chains_stake() {
		let d = decide(&Policy::default(), &task(), me());
		// 3 000 of 6 000 samples: 1.5x the minimum stake.
		assert_eq!(
			d,
			Decision::Bid {
				samples: 3_000,
				stake: 15 * UNIT
			}
		);
		// Samples above the cap are declared at the cap (a bid above it is refused).
		let many = Situation {
			samples: 60_000,
			..me()
		};
		assert_eq!(
			decide(&Policy::default(), &task(), many),
			Decision::Bid {
				samples: 6_000,
				stake: 20 * UNIT
			}
		);
	}

	#[test]
	fn every_refusal_names_its_reason() {
		let p = Policy::default();
		let check =
			|policy: &Policy, t: TaskView, s: Situation, want: fn(&Skip) -> bool| match decide(
				policy, &t, s,
			) {
				Decision::Skip(why) => {
					assert!(want(&why), "{why:?}");
					assert!(!why.to_string().is_empty());
				}
				other => panic!("bid: {other:?}"),
			};
		let mut t = task();
		t.phase = Phase::Submit;
		check(&p, t, me(), |w| *w == Skip::NotBidding);
		check(&p, task(), Situation { serving: 4, ..me() }, |w| {
			matches!(w, Skip::Busy { .. })
		});
		let mut t = task();
		t.spec.dataset_id = 3;
		check(&p, t, me(), |w| *w == Skip::Dataset(3));
		let mut t = task();
		t.spec.model_id = 9;
		check(&p, t, me(), |w| *w == Skip::Model(9));
		check(
			&p,
			task(),
			Situation {
				samples: 50,
				..me()
			},
			|w| matches!(w, Skip::TooFewSamples { .. }),
		);
		// 100 BLADE over 4 rounds x 5 seats = 5 BLADE per seat-round.
		let greedy = Policy {
			min_reward_per_round: 6 * UNIT,
			..p.clone()
		};
		check(&greedy, task(), me(), |w| {
			*w == Skip::Underpaid {
				offered: 5 * UNIT,
				min: 6 * UNIT,
			}
		});
		let timid = Policy {
			max_stake: 12 * UNIT,
			..p.clone()
		};
		check(&timid, task(), me(), |w| {
			matches!(w, Skip::StakeTooHigh { .. })
		});
		check(
			&p,
			task(),
			Situation {
				free: 15 * UNIT,
				..me()
			},
			|w| matches!(w, Skip::Funds { .. }),
		);
		let private = Policy {
			min_epsilon: 10.0,
			..p.clone()
		};
		check(&private, task(), me(), |w| {
			matches!(w, Skip::Privacy { .. })
		});
		let mut t = task();
		t.spec.phases.reveal = 4;
		check(&p, t, me(), |w| {
			*w == Skip::PhaseTooShort {
				blocks: 4,
				needed: 5,
			}
		});
		// 40-block submit phase: 20 - 5 = 15 blocks x 6 s = 90 s to train.
		let slow = Policy {
			round_seconds: 120.0,
			..p.clone()
		};
		check(&slow, task(), me(), |w| {
			matches!(w, Skip::NoTimeToTrain { .. })
		});
		let fast = Policy {
			round_seconds: 80.0,
			..p
		};
		assert!(matches!(decide(&fast, &task(), me()), Decision::Bid { .. }));
	}
}
