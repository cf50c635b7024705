//! What a run is configured with and what it returns.

use std::path::PathBuf;

use tch::Device;

use crate::{
	behaviour::Behaviour,
	chain::{self, Balance},
	partition::Scheme,
	train::TrainConfig,
};

/// Which local-DP mechanism protects each update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Noise {
	/// Gaussian, `(epsilon, delta)` per release, L2 clipping.
	Gaussian,
	/// Laplace, pure `epsilon` per release, L1 clipping.
	Laplace,
	/// No noise (explicit opt-out).
	Off,
}

/// Local differential privacy settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivacyConfig {
	/// Mechanism.
	pub noise: Noise,
	/// This client's starting per-round epsilon (`None`: the task's cap).
	pub epsilon: Option<f64>,
	/// Gaussian delta per release.
	pub delta: f64,
	/// Clipping norm of the update.
	pub clip: f64,
	/// Adaptive decay: epsilon grows by this factor (less noise) after `patience` rounds
	/// without accuracy gain, up to the task's cap.
	pub growth: f64,
	/// Rounds without gain that trigger the decay.
	pub patience: u32,
}

impl Default for PrivacyConfig {
	fn default() -> Self {
		PrivacyConfig {
			noise: Noise::Gaussian,
			epsilon: None,
			delta: 1e-5,
			clip: 1.0,
			growth: 1.5,
			patience: 1,
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
