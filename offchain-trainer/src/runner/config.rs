//! What a run is configured with and what it returns.

use std::path::PathBuf;

use tch::Device;

use crate::{
	behaviour::Behaviour,
	chain::{self, Balance},
	partition::Scheme,
	train::TrainConfig,
};

/// How the trainer protects its data (see [`crate::privacy`] for what each protects).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
	/// DP-SGD: per-sample clipping to `clip` and Gaussian noise every step (record-level).
	DpSgd,
	/// Output perturbation, Gaussian: the update clipped to L2 `clip`, noise once per round
	/// (user-level).
	Gaussian,
	/// Output perturbation, Laplace: the update clipped to L1 `clip` (user-level, pure DP).
	Laplace,
	/// No noise (explicit opt-out; refused by tasks with a privacy floor).
	Off,
}

/// Differential-privacy settings of a trainer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivacyConfig {
	/// Mechanism.
	pub noise: Noise,
	/// This trainer's own total epsilon over a task (`None`: the task's floor). The tighter
	/// of the two is spent.
	pub epsilon: Option<f64>,
	/// This trainer's delta (the smaller of it and the task's is used).
	pub delta: f64,
	/// Clipping norm: per sample (DP-SGD) or of the update (output perturbation).
	pub clip: f64,
	/// A fixed noise multiplier instead of one calibrated to the budget; a task whose
	/// budget it would exceed is refused.
	pub noise_multiplier: Option<f64>,
	/// Adaptive decay: each round's noise is this factor times the previous round's (1:
	/// constant), calibrated so all rounds together spend the budget.
	pub decay: f64,
}

impl PrivacyConfig {
	/// The noise schedule over rounds.
	pub fn schedule(&self) -> crate::privacy::Schedule {
		if self.decay < 1.0 {
			crate::privacy::Schedule::Adaptive { decay: self.decay }
		} else {
			crate::privacy::Schedule::Constant
		}
	}
}

impl Default for PrivacyConfig {
	fn default() -> Self {
		PrivacyConfig {
			noise: Noise::DpSgd,
			epsilon: None,
			delta: 1e-5,
			clip: 1.0,
			noise_multiplier: None,
			decay: 1.0,
		}
	}
}

/// Everything `run` needs besides the chain client.
#[derive(Clone, Debug)]
pub struct RunConfig {
	/// The task to join.
	pub task: chain::TaskId,
	/// Behaviour under test (honest for real use).
	pub behaviour: Behaviour,
	/// Local training.
	pub train: TrainConfig,
	/// Directory of the task's data set.
	pub data_dir: PathBuf,
	/// This trainer's shard and the number of shards.
	pub shard: (usize, usize),
	/// How the training set is split into shards.
	pub scheme: Scheme,
	/// Seed of the split (all trainers of an experiment use the same).
	pub partition_seed: u64,
	/// Use at most this many samples of the shard.
	pub max_samples: Option<usize>,
	/// Test samples used to evaluate each global model.
	pub eval_samples: usize,
	/// Asking price of the bid.
	pub price: Balance,
	/// Declared capability of the bid.
	pub capability: u32,
	/// Local DP.
	pub privacy: PrivacyConfig,
	/// Torch device.
	pub device: Device,
}

/// How a run ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
	/// Whether this account was selected.
	pub selected: bool,
	/// Whether this account was put out of the task (a proven copy, or an aggregate it withheld).
	pub excluded: bool,
	/// Rounds this trainer submitted.
	pub submitted: u32,
	/// Lazy reports this trainer sent and the chain upheld.
	pub reports_upheld: u32,
	/// Test accuracy of the global model after each round.
	pub accuracy: Vec<(u32, f64)>,
	/// Cumulative privacy loss `(epsilon, delta)` of this trainer's releases.
	pub privacy: Option<(f64, f64)>,
	/// Free balance at the start and at the end.
	pub balance: (Balance, Balance),
}
