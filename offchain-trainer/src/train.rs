//! Local training (SGD for `tau` epochs) and evaluation, with `tch`.

use std::time::Instant;

use rand::{seq::SliceRandom, SeedableRng};
use tch::{nn::OptimizerConfig, Device, Kind, Tensor};

use crate::{
	data::Dataset,
	error::{invalid, Error, Result},
	model::Model,
};

/// Local training settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainConfig {
	/// Local epochs `tau`.
	pub epochs: usize,
	/// Learning rate.
	pub lr: f64,
	/// Mini-batch size.
	pub batch_size: usize,
	/// SGD momentum.
	pub momentum: f64,
	/// L2 weight decay added to every gradient (PyTorch's SGD `weight_decay`; NIID-Bench
	/// uses 1e-5). Non-private training only: DP-SGD refuses a non-zero value.
	pub weight_decay: f64,
	/// Intra-op threads for libtorch (0 keeps libtorch's default).
	pub threads: usize,
	/// Seed of the batch order.
	pub seed: u64,
}

impl Default for TrainConfig {
	fn default() -> Self {
		TrainConfig {
			epochs: 1,
			lr: 0.05,
			batch_size: 64,
			momentum: 0.9,
			weight_decay: 0.0,
			threads: 0,
			seed: 0,
		}
	}
}

/// What a training run did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainStats {
	/// Mean training loss of the last epoch.
	pub loss: f64,
	/// Samples processed per second.
	pub samples_per_sec: f64,
}

/// Loss and accuracy on a data set.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evaluation {
	/// Mean cross-entropy.
	pub loss: f64,
	/// Share of correct predictions.
	pub accuracy: f64,
}

/// A data set as device tensors: images `N x C x H x W`, labels `N` (int64).
pub struct Tensors {
	/// Images.
	pub images: Tensor,
	/// Labels.
	pub labels: Tensor,
}

/// Move `data` to `device` once.
pub fn to_tensors(data: &Dataset, device: Device) -> Result<Tensors> {
	if data.is_empty() {
		return Err(invalid("empty data set"));
	}
	let shape = [
		data.len() as i64,
		data.channels as i64,
		data.height as i64,
		data.width as i64,
	];
	let images = Tensor::from_slice(&data.pixels)
		.view(shape)
		.to_device(device);
	let labels: Vec<i64> = data.labels.iter().map(|l| i64::from(*l)).collect();
	Ok(Tensors {
		images,
		labels: Tensor::from_slice(&labels).to_device(device),
	})
}

/// Train `model` on `data` with SGD.
pub fn train(model: &mut Model, data: &Tensors, config: &TrainConfig) -> Result<TrainStats> {
	let valid = config.batch_size > 0 && config.epochs > 0 && config.lr > 0.0;
	if !valid {
		return Err(invalid(
			"training needs epochs, a batch size and a positive learning rate",
		));
	}
	if !(config.weight_decay >= 0.0 && config.weight_decay.is_finite()) {
		return Err(invalid(format!(
			"weight decay {} must be finite and not negative",
			config.weight_decay
		)));
	}
	if config.threads > 0 {
		tch::set_num_threads(config.threads as i32);
	}
	let n = data.labels.size()[0] as usize;
	let mut opt = tch::nn::Sgd {
		momentum: config.momentum,
		wd: config.weight_decay,
		..Default::default()
	}
	.build(model.var_store(), config.lr)
	.map_err(Error::from)?;
	let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed);
	let mut order: Vec<i64> = (0..n as i64).collect();
	let start = Instant::now();
	let mut loss = 0f64;
	for _ in 0..config.epochs {
		order.shuffle(&mut rng);
		let (mut total, mut batches) = (0f64, 0usize);
		for batch in order.chunks(config.batch_size) {
			let index = Tensor::from_slice(batch).to_device(model.device());
			let xs = data.images.index_select(0, &index);
			let ys = data.labels.index_select(0, &index);
			let l = model.forward(&xs, true).cross_entropy_for_logits(&ys);
			opt.backward_step(&l);
			total += f64::try_from(&l).map_err(Error::from)?;
			batches += 1;
		}
		loss = total / batches.max(1) as f64;
		if !loss.is_finite() {
			return Err(invalid(
				"training diverged (non-finite loss); lower the learning rate",
			));
		}
	}
	let seconds = start.elapsed().as_secs_f64().max(1e-9);
	Ok(TrainStats {
		loss,
		samples_per_sec: (n * config.epochs) as f64 / seconds,
	})
}

/// One local round: load `global` into `model`, train on `data`, and return the update
/// (trained parameters minus `global`) with the run's statistics.
pub fn local_update(
	model: &mut Model,
	global: &[f32],
	data: &Tensors,
	config: &TrainConfig,
) -> Result<(Vec<f32>, TrainStats)> {
	model.load_flat(global)?;
	let stats = train(model, data, config)?;
	Ok((model.delta_from(global)?, stats))
}

/// Loss and accuracy of `model` on `data`.
pub fn evaluate(model: &Model, data: &Tensors, batch_size: usize) -> Result<Evaluation> {
	let n = data.labels.size()[0];
	let (mut loss, mut correct) = (0f64, 0f64);
	tch::no_grad(|| -> Result<()> {
		let mut start = 0i64;
		while start < n {
			let len = (batch_size.max(1) as i64).min(n - start);
			let xs = data.images.narrow(0, start, len);
			let ys = data.labels.narrow(0, start, len);
			let logits = model.forward(&xs, false);
			loss += f64::try_from(logits.cross_entropy_for_logits(&ys)).map_err(Error::from)?
				* len as f64;
			correct += f64::try_from(
				logits
					.argmax(-1, false)
					.eq_tensor(&ys)
					.to_kind(Kind::Float)
					.sum(Kind::Float),
			)
			.map_err(Error::from)?;
			start += len;
		}
		Ok(())
	})?;
	Ok(Evaluation {
		loss: loss / n as f64,
		accuracy: correct / n as f64,
	})
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use crate::{
		data::{load_fashion_mnist, DEBIAN_FASHION_MNIST_DIR},
		model::Arch,
		registry::GRAY_28,
	};

	/// A real Fashion-MNIST subset: one epoch of the MLP on 6 000 images lifts test
	/// accuracy from chance (~10 %) to well above it.
	#[test]
	fn training_on_real_fashion_mnist_beats_chance() {
		let (train_set, test_set) =
			load_fashion_mnist(std::path::Path::new(DEBIAN_FASHION_MNIST_DIR), true).unwrap();
		let subset: Vec<usize> = (0..6_000).collect();
		let train_t = to_tensors(&train_set.subset(&subset).unwrap(), Device::Cpu).unwrap();
		let test_t = to_tensors(
			&test_set.subset(&(0..2_000).collect::<Vec<_>>()).unwrap(),
			Device::Cpu,
		)
		.unwrap();
		let shape = GRAY_28;
		let mut model = Model::new(Arch::Mlp { hidden: 128 }, shape, Device::Cpu, 0).unwrap();
		let before = evaluate(&model, &test_t, 500).unwrap();
		let stats = train(
			&mut model,
			&train_t,
			&TrainConfig {
				epochs: 2,
				..Default::default()
			},
		)
		.unwrap();
		let after = evaluate(&model, &test_t, 500).unwrap();
		assert!(before.accuracy < 0.3, "{before:?}");
		assert!(after.accuracy > 0.70, "{after:?} after {stats:?}");
		assert!(after.loss < before.loss);
	}

	/// Weight decay pulls the parameters towards zero (same data, same seed, smaller norm
	/// after training), and a negative or non-finite decay is refused before training.
	#[test]
	fn weight_decay_shrinks_parameters_and_bad_values_are_refused() {
		let (train_set, _) =
			load_fashion_mnist(std::path::Path::new(DEBIAN_FASHION_MNIST_DIR), true).unwrap();
		let data = to_tensors(
			&train_set.subset(&(0..1_000).collect::<Vec<_>>()).unwrap(),
			Device::Cpu,
		)
		.unwrap();
		let shape = GRAY_28;
		let norm_after = |weight_decay: f64| {
			let mut model = Model::new(Arch::Mlp { hidden: 32 }, shape, Device::Cpu, 0).unwrap();
			let config = TrainConfig {
				weight_decay,
				..Default::default()
			};
			train(&mut model, &data, &config).map(|_| {
				let p = model.flatten().unwrap();
				p.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>()
			})
		};
		let plain = norm_after(0.0).unwrap();
		let decayed = norm_after(0.05).unwrap();
		assert!(decayed < 0.99 * plain, "{decayed} vs {plain}");
		for bad in [-1e-5, f64::NAN, f64::INFINITY] {
			assert!(norm_after(bad).is_err(), "{bad}");
		}
	}

	/// Feature `cuda` (a CUDA build of libtorch and a GPU): the same training on the GPU
	/// learns as well as on the CPU, and parameters move between devices exactly (updates
	/// and aggregates are always flattened to host `f32`).
	#[test]
	#[cfg_attr(
		not(feature = "cuda"),
		ignore = "needs a CUDA GPU and a CUDA build of libtorch: run with --features cuda"
	)]
	fn cuda_training_matches_cpu() {
		assert!(
			tch::Cuda::is_available(),
			"feature `cuda` is for machines with a CUDA GPU and a CUDA build of libtorch"
		);
		let cuda = Device::Cuda(0);
		let (train_set, test_set) =
			load_fashion_mnist(std::path::Path::new(DEBIAN_FASHION_MNIST_DIR), true).unwrap();
		let subset = train_set.subset(&(0..6_000).collect::<Vec<_>>()).unwrap();
		let test = test_set.subset(&(0..2_000).collect::<Vec<_>>()).unwrap();
		let shape = GRAY_28;
		let mut accuracies = Vec::new();
		for device in [Device::Cpu, cuda] {
			let mut model = Model::new(Arch::Cnn, shape, device, 3).unwrap();
			let init = model.flatten().unwrap();
			let cpu_init = Model::new(Arch::Cnn, shape, Device::Cpu, 3)
				.unwrap()
				.flatten()
				.unwrap();
			assert_eq!(init, cpu_init, "initialisation is device-independent");
			let stats = train(
				&mut model,
				&to_tensors(&subset, device).unwrap(),
				&TrainConfig::default(),
			)
			.unwrap();
			let eval = evaluate(&model, &to_tensors(&test, device).unwrap(), 500).unwrap();
			println!(
				"{device:?}: {eval:?}, {:.0} samples/s",
				stats.samples_per_sec
			);
			let flat = model.flatten().unwrap();
			model.load_flat(&flat).unwrap();
			assert_eq!(model.flatten().unwrap(), flat);
			accuracies.push(eval.accuracy);
		}
		assert!(accuracies[1] > 0.7, "{accuracies:?}");
		assert!(
			(accuracies[0] - accuracies[1]).abs() < 0.05,
			"{accuracies:?}"
		);
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod lazy_detection {
	use super::*;
	use crate::{
		codec,
		data::{load_fashion_mnist, DEBIAN_FASHION_MNIST_DIR},
		model::Arch,
		partition::{partition, Scheme},
		registry::GRAY_28,
		signature::{amplitude_for_snr, apply, chain_copy, Detector},
	};
	use blade_fl_primitives::blob::Codec;
	use rand_distr::{Distribution, Normal};

	/// Real Fashion-MNIST updates (8 clients, one local epoch from a common model): a lazy
	/// client copies a victim's published (watermarked) update, adds Gaussian noise as
	/// strong as the update and its own watermark. Detection by the trainer's detector
	/// (false-positive rate 1e-6) and by the runtime's fixed-point verdict at the default
	/// default 6-sigma `LazyZScore`, at the paper's SNRs; honest updates are never flagged.
	#[test]
	fn copies_of_real_updates_are_caught_at_9_6_3_db() {
		let (train_set, _) =
			load_fashion_mnist(std::path::Path::new(DEBIAN_FASHION_MNIST_DIR), true).unwrap();
		let shape = GRAY_28;
		let arch = Arch::Mlp { hidden: 32 };
		let global = Model::new(arch, shape, Device::Cpu, 1)
			.unwrap()
			.flatten()
			.unwrap();
		let parts = partition(&train_set.labels[..16_000], 10, 8, Scheme::Iid, 5).unwrap();
		let updates: Vec<Vec<f32>> = parts
			.iter()
			.enumerate()
			.map(|(k, part)| {
				let mut model = Model::new(arch, shape, Device::Cpu, 1).unwrap();
				let data = to_tensors(&train_set.subset(part).unwrap(), Device::Cpu).unwrap();
				let config = TrainConfig {
					epochs: 1,
					seed: k as u64,
					..Default::default()
				};
				train(&mut model, &data, &config).unwrap();
				model
					.flatten()
					.unwrap()
					.iter()
					.zip(&global)
					.map(|(a, b)| a - b)
					.collect()
			})
			.collect();
		let n = updates[0].len();
		let detector = Detector::for_false_positive_rate(n, 1e-6).unwrap();
		let proven = |blob: &[u8], own: &[u8; 32], seed: &[u8; 32]| {
			chain_copy(blob, Some(own), &[*seed], 600).unwrap().0
		};
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
		let trials = 8 * 7;
		for snr in [9.0, 6.0, 3.0] {
			let (mut caught, mut chain_caught, mut false_alarms, mut tests) = (0, 0, 0, 0);
			let seeds: Vec<[u8; 32]> = (0..8u8).map(|i| [i + (snr as u8) * 16; 32]).collect();
			let published: Vec<Vec<f32>> = updates
				.iter()
				.zip(&seeds)
				.map(|(u, s)| {
					let mut w = u.clone();
					apply(&mut w, s, amplitude_for_snr(u, snr), 1.0);
					w
				})
				.collect();
			for victim in 0..8 {
				for copier in (0..8).filter(|c| *c != victim) {
					let power = crate::privacy::rms(&updates[victim]);
					let noise = Normal::new(0.0f32, power as f32).unwrap();
					let mut copy: Vec<f32> = published[victim]
						.iter()
						.map(|v| v + noise.sample(&mut rng))
						.collect();
					apply(
						&mut copy,
						&seeds[copier],
						amplitude_for_snr(&updates[copier], snr),
						1.0,
					);
					caught += usize::from(!detector.detect(&copy, &[seeds[victim]]).is_empty());
					let blob = codec::encode(0, 0, Codec::F32, &copy).unwrap();
					chain_caught += usize::from(proven(&blob, &seeds[copier], &seeds[victim]));
					// The copier's honest counterpart: its own update never matches the victim.
					false_alarms += usize::from(
						!detector
							.detect(&published[copier], &[seeds[victim]])
							.is_empty(),
					);
					let honest = codec::encode(0, 0, Codec::F32, &published[copier]).unwrap();
					false_alarms += usize::from(proven(&honest, &seeds[copier], &seeds[victim]));
					tests += 1;
				}
			}
			println!(
				"real Fashion-MNIST, {n} params, SNR {snr} dB: detector {caught}/{tests}, on-chain verdict {chain_caught}/{tests}, false alarms {false_alarms}/{}",
				2 * tests
			);
			assert_eq!(tests, trials);
			// The paper: 0.931 / 0.989 / 0.999 at 9 / 6 / 3 dB.
			assert_eq!(
				(caught, chain_caught, false_alarms),
				(tests, tests, 0),
				"SNR {snr} dB"
			);
		}
	}
}
