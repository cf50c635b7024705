//! The paper's lazy-client experiments, run with the trainer's real pieces (libtorch
//! training on real data, PN watermarks, the detector, the runtime's fixed-point verdict,
//! watermark removal and FedAvg) but without a chain, so that hundreds of rounds fit in
//! minutes. `blade-bench lazy` prints and plots them; the on-chain path of the same logic
//! is exercised by the trainer's real-node test.
//!
//! **Federated run** ([`federate`]): `clients` trainers, a `lazy_fraction` of which are lazy:
//! each round a lazy client copies a random honest client's *published* (watermarked)
//! update, adds Gaussian noise of `lazy_noise` times its RMS and its own watermark. With
//! `detect`, every update is tested against every other client's revealed seed with the
//! runtime's verdict at `chain_z_centi` (own watermark removed, sign statistic), as the
//! runner does before reporting; a proven lazy client is excluded for the rest of the run,
//! as on chain.
//! Watermarks are removed (least-squares) and FedAvg (equal samples) gives the next
//! global model. Local DP is off: the experiment isolates the lazy clients' effect.
//!
//! **Detection rates** ([`detection_rates`]): honest clients train round after round; in
//! each round every ordered (victim, copier) pair yields one lazy copy at every SNR
//! (trials), and every honest update is tested against every other seed and
//! `extra_honest_keys` further random keys (false-alarm trials). With `inflate`, the
//! copier puts its own watermark at that many times the copy's RMS (the energy-inflating
//! copier) instead of at the task's SNR.

use rand::{Rng, SeedableRng};
use tch::Device;

use crate::{
	aggregation::{aggregate, Rule},
	behaviour::{self, Behaviour},
	codec,
	data::Dataset,
	error::{invalid, Result},
	model::{Arch, Model, Shape},
	partition::{partition, Scheme},
	signature::{amplitude_for_snr, apply, chain_copy, remove, Detector},
	train::{self, evaluate, to_tensors, Tensors, TrainConfig},
};

/// Settings shared by both experiments.
#[derive(Clone, Debug)]
pub struct Setup {
	/// Trainers.
	pub clients: usize,
	/// Samples per trainer (at most; shards of the training split).
	pub samples: usize,
	/// How the training split is cut into shards.
	pub scheme: Scheme,
	/// Local training per round.
	pub train: TrainConfig,
	/// Model.
	pub arch: Arch,
	/// Watermark SNR in dB.
	pub snr_db: f64,
	/// Lazy noise relative to the copied update's RMS.
	pub lazy_noise: f64,
	/// Detector false-positive rate per test.
	pub fpr: f64,
	/// The runtime's `LazyZScore` (hundredths of a standard deviation).
	pub chain_z_centi: u32,
	/// Energy-inflating copier: its own watermark at this many times the copy's RMS.
	pub inflate: Option<f64>,
	/// Extra random keys each honest update is tested against (false-alarm trials).
	pub extra_honest_keys: usize,
	/// Seed of everything random.
	pub seed: u64,
}

/// One federated round.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Round {
	/// Test accuracy of the global model after the round.
	pub accuracy: f64,
	/// Lazy updates submitted this round.
	pub lazy: usize,
	/// Of those, proven (and excluded from here on).
	pub caught: usize,
	/// Honest clients wrongly flagged this round.
	pub false_alarms: usize,
}

struct Shards {
	data: Vec<Tensors>,
	test: Tensors,
	shape: Shape,
}

fn shards(setup: &Setup, train_set: &Dataset, test: &Dataset) -> Result<Shards> {
	let parts = partition(
		&train_set.labels,
		train_set.classes,
		setup.clients,
		setup.scheme,
		setup.seed,
	)?;
	let data = parts
		.iter()
		.map(|p| {
			let take: Vec<usize> = p.iter().copied().take(setup.samples).collect();
			to_tensors(&train_set.subset(&take)?, Device::Cpu)
		})
		.collect::<Result<Vec<_>>>()?;
	Ok(Shards {
		data,
		test: to_tensors(test, Device::Cpu)?,
		shape: Shape {
			channels: train_set.channels as i64,
			height: train_set.height as i64,
			width: train_set.width as i64,
			classes: train_set.classes as i64,
		},
	})
}

/// Local update (trained - global) of client `k` in `round`.
fn local_update(
	setup: &Setup,
	model: &mut Model,
	global: &[f32],
	data: &Tensors,
	k: usize,
	round: usize,
) -> Result<Vec<f32>> {
	let config = TrainConfig {
		seed: setup.seed ^ ((round as u64) << 20) ^ k as u64,
		..setup.train
	};
	Ok(train::local_update(model, global, data, &config)?.0)
}

/// Whether `values`, watermarked with `own`, is proven a copy of `seed`'s owner by the
/// chain's verdict (what the runner requires before reporting).
fn flagged(setup: &Setup, values: &[f32], own: &[u8; 32], seed: &[u8; 32]) -> Result<bool> {
	let blob = codec::encode(0, 0, blade_fl_primitives::blob::Codec::F32, values)?;
	Ok(chain_copy(&blob, Some(own), &[*seed], setup.chain_z_centi)?.0)
}

/// The copier's own watermark amplitude on `copy`: the task's SNR, or inflated.
fn copier_amplitude(setup: &Setup, copy: &[f32], snr_db: f64) -> f64 {
	match setup.inflate {
		Some(factor) => factor * crate::privacy::rms(copy),
		None => amplitude_for_snr(copy, snr_db),
	}
}

/// A federated run of `rounds` rounds with `lazy` of the clients lazy; see the module docs.
pub fn federate(
	setup: &Setup,
	train_set: &Dataset,
	test: &Dataset,
	rounds: usize,
	lazy: usize,
	detect: bool,
	mut progress: impl FnMut(usize, &Round),
) -> Result<Vec<Round>> {
	if lazy >= setup.clients {
		return Err(invalid("at least one client must be honest"));
	}
	let shards = shards(setup, train_set, test)?;
	let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(setup.seed);
	let mut model = Model::new(setup.arch, shards.shape, Device::Cpu, setup.seed as i64)?;
	let mut global = model.flatten()?;
	// The last `lazy` clients are lazy.
	let is_lazy = |k: usize| k >= setup.clients - lazy;
	let mut excluded = vec![false; setup.clients];
	let mut out = Vec::with_capacity(rounds);
	for round in 0..rounds {
		let seeds: Vec<[u8; 32]> = (0..setup.clients).map(|_| rng.gen()).collect();
		let active: Vec<usize> = (0..setup.clients).filter(|k| !excluded[*k]).collect();
		let mut published: Vec<(usize, Vec<f32>)> = Vec::new();
		for &k in active.iter().filter(|k| !is_lazy(**k)) {
			let mut update = local_update(setup, &mut model, &global, &shards.data[k], k, round)?;
			let a = amplitude_for_snr(&update, setup.snr_db);
			apply(&mut update, &seeds[k], a, 1.0);
			published.push((k, update));
		}
		let honest_count = published.len();
		let mut lazy_now = 0;
		for &k in active.iter().filter(|k| is_lazy(**k)) {
			let victim = rng.gen_range(0..honest_count);
			let copied = &published[victim].1;
			let mut copy = behaviour::apply(
				Behaviour::Lazy {
					noise: setup.lazy_noise,
				},
				copied,
				Some(copied),
				&mut rng,
			)?;
			let a = copier_amplitude(setup, &copy, setup.snr_db);
			apply(&mut copy, &seeds[k], a, 1.0);
			published.push((k, copy));
			lazy_now += 1;
		}
		let (mut caught, mut false_alarms) = (0, 0);
		let mut included = Vec::new();
		for (k, values) in &published {
			let mut proven = false;
			if detect {
				for (j, _) in published.iter().filter(|(j, _)| j != k) {
					if flagged(setup, values, &seeds[*k], &seeds[*j])? {
						proven = true;
						break;
					}
				}
			}
			if proven {
				excluded[*k] = true;
				if is_lazy(*k) {
					caught += 1;
				} else {
					false_alarms += 1;
				}
			} else {
				included.push(*k);
			}
		}
		let clean: Vec<Vec<f32>> = published
			.iter()
			.filter(|(k, _)| included.contains(k))
			.map(|(k, v)| {
				let mut v = v.clone();
				remove(&mut v, &seeds[*k]);
				v
			})
			.collect();
		let agg = aggregate(&clean, &vec![1; clean.len()], Rule::FedAvg)?;
		global
			.iter_mut()
			.zip(&agg.values)
			.for_each(|(g, d)| *g += d);
		model.load_flat(&global)?;
		let accuracy = evaluate(&model, &shards.test, 1000)?.accuracy;
		let r = Round {
			accuracy,
			lazy: lazy_now,
			caught,
			false_alarms,
		};
		progress(round, &r);
		out.push(r);
	}
	Ok(out)
}

/// Detection counts at one SNR.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
	/// SNR in dB.
	pub snr_db: f64,
	/// Lazy copies tested.
	pub trials: usize,
	/// Copies proven by the chain's verdict.
	pub caught: usize,
	/// Copies flagged by the plain correlation detector (at `fpr`), for comparison.
	pub caught_detector: usize,
	/// Honest (update, other seed) tests.
	pub honest_tests: usize,
	/// Honest tests flagged.
	pub false_alarms: usize,
}

/// Lazy-copy detection rates over `rounds` rounds of honest FedAvg; see the module docs.
pub fn detection_rates(
	setup: &Setup,
	train_set: &Dataset,
	test: &Dataset,
	rounds: usize,
	snrs: &[f64],
	mut progress: impl FnMut(usize),
) -> Result<Vec<Rates>> {
	let shards = shards(setup, train_set, test)?;
	let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(setup.seed ^ 0xD37EC7);
	let mut model = Model::new(setup.arch, shards.shape, Device::Cpu, setup.seed as i64)?;
	let mut global = model.flatten()?;
	let detector = Detector::for_false_positive_rate(global.len(), setup.fpr)?;
	let mut rates: Vec<Rates> = snrs
		.iter()
		.map(|s| Rates {
			snr_db: *s,
			..Default::default()
		})
		.collect();
	let n = setup.clients;
	for round in 0..rounds {
		let updates = (0..n)
			.map(|k| local_update(setup, &mut model, &global, &shards.data[k], k, round))
			.collect::<Result<Vec<_>>>()?;
		for rate in rates.iter_mut() {
			let seeds: Vec<[u8; 32]> = (0..n).map(|_| rng.gen()).collect();
			let published: Vec<Vec<f32>> = updates
				.iter()
				.zip(&seeds)
				.map(|(u, s)| {
					let mut w = u.clone();
					apply(&mut w, s, amplitude_for_snr(u, rate.snr_db), 1.0);
					w
				})
				.collect();
			for victim in 0..n {
				for copier in (0..n).filter(|c| *c != victim) {
					let copied = &published[victim];
					let mut copy = behaviour::apply(
						Behaviour::Lazy {
							noise: setup.lazy_noise,
						},
						copied,
						Some(copied),
						&mut rng,
					)?;
					let a = copier_amplitude(setup, &copy, rate.snr_db);
					apply(&mut copy, &seeds[copier], a, 1.0);
					rate.trials += 1;
					rate.caught_detector +=
						usize::from(!detector.detect(&copy, &[seeds[victim]]).is_empty());
					rate.caught +=
						usize::from(flagged(setup, &copy, &seeds[copier], &seeds[victim])?);
					rate.honest_tests += 1;
					rate.false_alarms += usize::from(flagged(
						setup,
						&published[copier],
						&seeds[copier],
						&seeds[victim],
					)?);
				}
			}
			// An honest update is independent of every key but its own: more false-alarm
			// trials from fresh random keys.
			for (k, update) in published.iter().enumerate() {
				for _ in 0..setup.extra_honest_keys {
					let key: [u8; 32] = rng.gen();
					rate.honest_tests += 1;
					rate.false_alarms += usize::from(flagged(setup, update, &seeds[k], &key)?);
				}
			}
		}
		let agg = aggregate(&updates, &vec![1; n], Rule::FedAvg)?;
		global
			.iter_mut()
			.zip(&agg.values)
			.for_each(|(g, d)| *g += d);
		progress(round);
	}
	Ok(rates)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use crate::data::{load_fashion_mnist, DEBIAN_FASHION_MNIST_DIR};

	fn setup() -> Setup {
		Setup {
			clients: 5,
			samples: 1000,
			scheme: Scheme::Iid,
			train: TrainConfig {
				threads: 1,
				..TrainConfig::default()
			},
			arch: Arch::Mlp { hidden: 32 },
			snr_db: 6.0,
			lazy_noise: 1.0,
			fpr: 1e-6,
			chain_z_centi: 600,
			inflate: None,
			extra_honest_keys: 0,
			seed: 4,
		}
	}

	/// Two lazy clients out of five are caught in the first round and excluded; nobody
	/// honest is flagged; the model still learns from the honest three.
	#[test]
	fn lazy_clients_are_caught_and_excluded() {
		let (train_set, test) =
			load_fashion_mnist(std::path::Path::new(DEBIAN_FASHION_MNIST_DIR), false).unwrap();
		let test = test.subset(&(0..2000).collect::<Vec<_>>()).unwrap();
		let rounds = federate(&setup(), &train_set, &test, 3, 2, true, |_, _| {}).unwrap();
		assert_eq!(
			(rounds[0].lazy, rounds[0].caught, rounds[0].false_alarms),
			(2, 2, 0)
		);
		assert!(rounds[1..]
			.iter()
			.all(|r| r.lazy == 0 && r.false_alarms == 0));
		assert!(rounds[2].accuracy > 0.6, "{rounds:?}");
		let rates = detection_rates(&setup(), &train_set, &test, 1, &[3.0], |_| {}).unwrap();
		assert_eq!(rates[0].trials, 20);
		assert_eq!(
			(rates[0].caught, rates[0].false_alarms),
			(20, 0),
			"{rates:?}"
		);
		// The energy-inflating copier (own chips at 20x the copy's RMS) at 9 dB: the plain
		// correlation mostly misses it, the chain's verdict does not.
		let inflating = Setup {
			inflate: Some(20.0),
			lazy_noise: 0.0,
			extra_honest_keys: 10,
			..setup()
		};
		let rates = detection_rates(&inflating, &train_set, &test, 1, &[9.0], |_| {}).unwrap();
		assert_eq!(
			(rates[0].caught, rates[0].false_alarms),
			(20, 0),
			"{rates:?}"
		);
		assert!(rates[0].caught_detector <= 5, "{rates:?}");
		assert_eq!(rates[0].honest_tests, 20 + 50);
	}
}
