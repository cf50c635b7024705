//! The paper's computing-resource allocation (Sec. III-B): how many rounds `K` and local
//! epochs `tau` a task should have, and how a machine splits its cores between mining and
//! training, within a fixed time budget.
//!
//! **Time.** A round is `tau` local epochs of `t_T` seconds each and one block of `t_B`
//! seconds, so a task fits its budget when `K (tau t_T + t_B) <= t_Sum`. On one machine
//! with `cores` cores of which `m` mine: `t_T = t_T1 / (cores - m)` (the measured one-core
//! epoch time, training scaling linearly) and `t_B = difficulty / (others + m h)` (the
//! network's other hash rate plus this machine's `m` threads of `h` hashes/s each). With
//! `t_B` given directly (a chain whose difficulty retargets to its block time, or a miner
//! elsewhere), the cores all train.
//!
//! **Learning.** The bound of local SGD / FedAvg (Stich 2019; Li et al. 2020, "On the
//! convergence of FedAvg on non-IID data", Thm. 1): after `T = K tau` local epochs the
//! optimality gap is at most
//!
//! ```text
//!     bound(K, tau) = (1 + drift (tau - 1)^2) / (gamma + K tau)
//! ```
//!
//! relative to its value before training: progress grows with the total local work `K
//! tau`, but the clients' models drift apart within a round by a term quadratic in `tau`
//! (weighted by `drift`, larger for non-IID data); `gamma = warmup` is the theorem's
//! step-size offset. More epochs per round waste less time on blocks but drift
//! more: the planner takes the `(K, tau)` of least bound that fits the budget. `drift` and
//! `warmup` are fitted to a measured loss-vs-`K` sweep (`blade-bench paper k-sweep`) once
//! per model and data split; the defaults are Fashion-MNIST's.

use crate::error::{invalid, Result};

/// What the planner knows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Inputs {
	/// Time budget of the task `t_Sum`, seconds.
	pub budget: f64,
	/// One local epoch on one core `t_T1`, seconds (measured).
	pub epoch_seconds: f64,
	/// The chain's block time.
	pub block: Block,
	/// Cores of this machine.
	pub cores: u32,
	/// Drift weight of the bound (see the module docs).
	pub drift: f64,
	/// Step-size offset of the bound.
	pub warmup: f64,
	/// Most local epochs per round considered.
	pub max_epochs: u32,
}

/// Where the block time comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Block {
	/// A known expected block time (seconds), independent of this machine.
	Seconds(f64),
	/// Mined with this machine's threads: difficulty (expected hashes per block), the rest
	/// of the network's hash rate and one thread's hash rate (hashes/s).
	Mined {
		/// Expected hashes per block.
		difficulty: f64,
		/// Hash rate of the other miners.
		others: f64,
		/// Hash rate of one mining thread here.
		per_thread: f64,
	},
}

/// The planner's choice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Choice {
	/// Rounds `K`.
	pub rounds: u32,
	/// Local epochs per round `tau`.
	pub epochs: u32,
	/// Cores mining (the rest train).
	pub mining_cores: u32,
	/// Seconds of one local epoch with the training cores.
	pub epoch_seconds: f64,
	/// Expected block seconds with the mining cores.
	pub block_seconds: f64,
	/// The bound at the choice.
	pub bound: f64,
	/// Seconds the plan takes, `K (tau t_T + t_B)`.
	pub seconds: f64,
}

impl Default for Inputs {
	fn default() -> Self {
		Inputs {
			budget: 200.0,
			epoch_seconds: 2.0,
			block: Block::Seconds(2.0),
			cores: 1,
			drift: DRIFT,
			warmup: WARMUP,
			max_epochs: 50,
		}
	}
}

/// Fashion-MNIST's fitted drift weight (IID shards, the `k-sweep` of
/// `benchmarking/results/paper.md`).
pub const DRIFT: f64 = 0.01;
/// Fashion-MNIST's fitted step-size offset.
pub const WARMUP: f64 = 4.0;

/// The bound of `K` rounds of `tau` epochs (see the module docs).
pub fn bound(rounds: u32, epochs: u32, drift: f64, warmup: f64) -> f64 {
	let (k, tau) = (f64::from(rounds), f64::from(epochs));
	(1.0 + drift * (tau - 1.0).powi(2)) / (warmup + k * tau)
}

/// Rounds that fit the budget with `epochs` epochs of `t_t` seconds and blocks of `t_b`.
pub fn rounds_within(budget: f64, epochs: u32, t_t: f64, t_b: f64) -> u32 {
	let round = f64::from(epochs) * t_t + t_b;
	if round <= 0.0 || !round.is_finite() {
		return 0;
	}
	(budget / round).floor().clamp(0.0, f64::from(u32::MAX)) as u32
}

/// The `(K, tau, mining cores)` of least bound within the budget.
pub fn plan(inputs: &Inputs) -> Result<Choice> {
	let valid = inputs.budget > 0.0
		&& inputs.epoch_seconds > 0.0
		&& inputs.cores > 0
		&& inputs.drift >= 0.0
		&& inputs.warmup >= 0.0
		&& inputs.max_epochs > 0;
	if !valid {
		return Err(invalid(format!(
			"the planner needs a positive budget, epoch time, core count and epoch limit (got {inputs:?})"
		)));
	}
	let splits: Vec<u32> = match inputs.block {
		Block::Seconds(_) => vec![0],
		Block::Mined { .. } => (0..inputs.cores).collect(),
	};
	let mut best: Option<Choice> = None;
	for mining in splits {
		let training = inputs.cores - mining;
		let t_t = inputs.epoch_seconds / f64::from(training);
		let t_b = match inputs.block {
			Block::Seconds(s) => s,
			Block::Mined {
				difficulty,
				others,
				per_thread,
			} => difficulty / (others + f64::from(mining) * per_thread),
		};
		if !(t_b > 0.0 && t_b.is_finite()) {
			continue;
		}
		for epochs in 1..=inputs.max_epochs {
			let rounds = rounds_within(inputs.budget, epochs, t_t, t_b);
			if rounds == 0 {
				break;
			}
			let b = bound(rounds, epochs, inputs.drift, inputs.warmup);
			if best.is_none_or(|c| b < c.bound) {
				best = Some(Choice {
					rounds,
					epochs,
					mining_cores: mining,
					epoch_seconds: t_t,
					block_seconds: t_b,
					bound: b,
					seconds: f64::from(rounds) * (f64::from(epochs) * t_t + t_b),
				});
			}
		}
	}
	best.ok_or_else(|| {
		invalid("no round fits the budget: raise it, or train or mine faster".to_string())
	})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn the_bound_rewards_work_and_punishes_drift() {
		// More rounds at the same tau: lower.
		assert!(bound(20, 2, 0.01, 4.0) < bound(10, 2, 0.01, 4.0));
		// Without drift, the same total work is the same bound.
		assert_eq!(bound(10, 4, 0.0, 4.0), bound(4, 10, 0.0, 4.0));
		// With drift, splitting the same work into fewer, longer rounds costs.
		assert!(bound(4, 10, 0.05, 1.0) > bound(10, 4, 0.05, 1.0));
		// At tau = 1 and no warmup it is 1 / K.
		assert!((bound(10, 1, 0.3, 0.0) - 0.1).abs() < 1e-12);
		assert_eq!(rounds_within(200.0, 6, 2.0, 2.0), 14);
		assert_eq!(rounds_within(10.0, 6, 2.0, 2.0), 0);
	}

	/// The paper's setting (t_Sum 200, t_B 2): the planner's choice is the brute-force
	/// minimum, fits the budget, and moves as theta = t_T / t_B does.
	#[test]
	fn the_choice_is_the_best_that_fits() {
		let mut previous_rounds = u32::MAX;
		for theta in [0.25, 0.5, 1.0, 2.0] {
			let inputs = Inputs {
				epoch_seconds: 2.0 * theta,
				..Inputs::default()
			};
			let c = plan(&inputs).unwrap();
			assert!(c.seconds <= 200.0 + 1e-9);
			for tau in 1..=50 {
				let k = rounds_within(200.0, tau, 2.0 * theta, 2.0);
				if k > 0 {
					assert!(bound(k, tau, DRIFT, WARMUP) >= c.bound);
				}
			}
			// Slower training (larger theta): fewer rounds fit.
			assert!(c.rounds <= previous_rounds, "theta {theta}: {c:?}");
			previous_rounds = c.rounds;
		}
		// Known input: theta 1 (t_T = t_B = 2 s), drift 0.01, warmup 4.
		let c = plan(&Inputs {
			epoch_seconds: 2.0,
			..Inputs::default()
		})
		.unwrap();
		assert_eq!((c.rounds, c.epochs), (20, 4), "{c:?}");
	}

	#[test]
	fn cores_are_split_between_mining_and_training() {
		// Mining is slow here (one thread: 20 s per block): the planner mines with more than
		// none and trains with the rest.
		let inputs = Inputs {
			budget: 600.0,
			epoch_seconds: 8.0,
			cores: 4,
			block: Block::Mined {
				difficulty: 2e6,
				others: 0.0,
				per_thread: 1e5,
			},
			..Inputs::default()
		};
		let c = plan(&inputs).unwrap();
		assert!(c.mining_cores >= 1 && c.mining_cores < 4, "{c:?}");
		assert!((c.block_seconds - 20.0 / f64::from(c.mining_cores)).abs() < 1e-9);
		assert!(c.seconds <= 600.0);
		// No hash rate anywhere and no cores to mine: no plan.
		let stuck = Inputs { cores: 1, ..inputs };
		assert!(plan(&stuck).is_err());
		assert!(plan(&Inputs {
			budget: 0.0,
			..Inputs::default()
		})
		.is_err());
	}
}
