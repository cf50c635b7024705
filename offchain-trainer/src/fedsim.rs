//! Federated runs without a chain for the paper's experiments and beyond: the trainer's own
//! pieces (data split, libtorch training, DP-SGD or output perturbation calibrated to a
//! per-trainer budget exactly as the runner plans it, attackers' behaviours, aggregation
//! rules) in one process, so that many configurations fit in a benchmark run. The
//! watermarks and the chain are left out: [`crate::runner::baseline`] is the chain-free
//! twin of a real task; this is the laboratory.

use std::time::Instant;

use rand::SeedableRng;
use tch::Device;

use crate::{
	aggregation::{aggregate, lowest_and_median, screen, Rule},
	behaviour::{self, Behaviour},
	data::Dataset,
	error::{invalid, Result},
	model::{Arch, Model, Shape},
	partition::{partition, Scheme},
	privacy::{Accountant, Budget},
	runner::{pipeline, PrivacyConfig},
	train::{self, to_tensors, TrainConfig},
};

/// One federated configuration.
#[derive(Clone, Debug)]
pub struct Sim {
	/// Trainers.
	pub clients: usize,
	/// Samples per trainer at most (0: the whole shard).
	pub samples: usize,
	/// Split of the training set.
	pub scheme: Scheme,
	/// Model.
	pub arch: Arch,
	/// Local training per round.
	pub train: TrainConfig,
	/// Rounds `K`.
	pub rounds: usize,
	/// Aggregation rule.
	pub rule: Rule,
	/// Every trainer's privacy settings.
	pub privacy: PrivacyConfig,
	/// The task's privacy floor `(epsilon, delta)` (`None`: none).
	pub floor: Option<(f64, f64)>,
	/// Attackers: the last `count` trainers behave so (a copier copies the first honest
	/// update and is left in the aggregate: no detection).
	pub attack: Option<(Behaviour, usize)>,
	/// Seed of the split, the initial model and all randomness.
	pub seed: u64,
	/// Whether the chain's contribution screen runs, and whether it decides.
	pub screen: Screening,
}

/// Whether a run screens the updates ([`crate::aggregation::screen`]) as a chain does
/// (also `blade-bench paper --screen`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Screening {
	/// No screen: every update is aggregated (the plain federated experiments).
	#[default]
	Off,
	/// The screen measures every update (its alignment, what it would keep) but every
	/// update is aggregated: how a lenient chain would learn, and the evidence it has.
	Observe,
	/// Only the updates the screen keeps are aggregated, as trainers on a chain do; a
	/// round in which it keeps none leaves the model unchanged (a chain would retry the
	/// round with the same updates and fail the task for want of a quorum).
	Apply,
}

/// What a run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
	/// Test accuracy after each round.
	pub accuracy: Vec<f64>,
	/// Mean training loss of the honest trainers in each round (last local epoch).
	pub loss: Vec<f64>,
	/// Loss of the global model on the test set after each round.
	pub test_loss: Vec<f64>,
	/// The privacy each trainer spent `(epsilon, delta)` over the run (the most of any),
	/// `None` without noise.
	pub privacy: Option<(f64, f64)>,
	/// The first round's noise multiplier (or Laplace epsilon) of the plan.
	pub noise: Option<f64>,
	/// With a screen: how many updates it kept (or would keep) in each round.
	pub kept: Vec<usize>,
	/// With a screen: every trainer's alignment in each round (`[round][trainer]`, NaN
	/// where the screen decided before measuring; the attackers are the last trainers).
	pub alignment: Vec<Vec<f64>>,
	/// Wall seconds.
	pub seconds: f64,
}

/// Run `sim` on `train_set`, evaluating on `test`; `progress(round, accuracy)` after each
/// round.
pub fn run(
	sim: &Sim,
	train_set: &Dataset,
	test: &Dataset,
	mut progress: impl FnMut(usize, f64),
) -> Result<Outcome> {
	let started = Instant::now();
	let attackers = sim.attack.map_or(0, |(_, n)| n);
	if sim.clients == 0 || attackers >= sim.clients || sim.rounds == 0 {
		return Err(invalid(
			"a run needs rounds, clients and at least one honest one",
		));
	}
	let parts = partition(
		&train_set.labels,
		train_set.classes,
		sim.clients,
		sim.scheme,
		sim.seed,
	)?;
	let shape = Shape {
		channels: train_set.channels as i64,
		height: train_set.height as i64,
		width: train_set.width as i64,
		classes: train_set.classes as i64,
	};
	let floor = sim
		.floor
		.map(|(epsilon, delta)| Budget::new(epsilon, delta))
		.transpose()?;
	let mut shards = Vec::with_capacity(sim.clients);
	// FedAvg weights: each client's sample count, as the chain's aggregation weighs by
	// declared data size (and as McMahan et al. and NIID-Bench do).
	let mut sizes: Vec<u128> = Vec::with_capacity(sim.clients);
	for part in &parts {
		let take: Vec<usize> = match sim.samples {
			0 => part.clone(),
			n => part.iter().copied().take(n).collect(),
		};
		let data = train_set.subset(&take)?;
		sizes.push(data.len() as u128);
		let plan = pipeline::plan_for(
			&sim.privacy,
			&sim.train,
			floor,
			sim.rounds as u32,
			data.len(),
		)?;
		shards.push((to_tensors(&data, Device::Cpu)?, plan, Accountant::new()));
	}
	let test = to_tensors(test, Device::Cpu)?;
	let mut model = Model::new(sim.arch, shape, Device::Cpu, sim.seed as i64)?;
	let mut global = model.flatten()?;
	let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(sim.seed);
	let mut out = Outcome::default();
	// The previous round's global step (the screen's replay test).
	let mut previous: Option<Vec<f32>> = None;
	for round in 0..sim.rounds {
		let mut updates: Vec<Vec<f32>> = Vec::with_capacity(sim.clients);
		let mut losses = Vec::new();
		for (k, (data, plan, accountant)) in shards.iter_mut().enumerate() {
			let behaviour = match sim.attack {
				Some((b, n)) if k >= sim.clients - n => b,
				_ => Behaviour::Honest,
			};
			let victim = behaviour
				.copies()
				.then(|| updates.first().cloned())
				.flatten();
			let trained = if behaviour.copies() {
				vec![0.0; global.len()]
			} else {
				let config = TrainConfig {
					seed: sim.seed ^ ((round as u64) << 20) ^ k as u64,
					..sim.train
				};
				let (update, stats, release) = pipeline::local_training(
					&mut model,
					&global,
					data,
					&config,
					(plan.as_ref(), sim.privacy.clip),
					round as u32,
					&mut rng,
				)?;
				if let Some(release) = release {
					pipeline::spend(accountant, plan.as_ref(), release)?;
				}
				losses.push(stats.loss);
				update
			};
			let mut update = behaviour::apply(behaviour, &trained, victim.as_deref(), &mut rng)?;
			if victim.is_none() {
				if let Some(m) = pipeline::mechanism(plan.as_ref(), sim.privacy.clip, round as u32)?
				{
					let release = crate::privacy::privatise(&mut update, m, &mut rng)?;
					pipeline::spend(accountant, plan.as_ref(), release)?;
				}
			}
			updates.push(update);
		}
		let (kept, weights): (Vec<Vec<f32>>, Vec<u128>) = if sim.screen != Screening::Off {
			let screened = screen(&updates, previous.as_deref())?;
			let (lowest, median) =
				lowest_and_median(&screened.alignment[..sim.clients - attackers]);
			tracing::info!(
				round,
				kept = screened.kept.len(),
				of = updates.len(),
				lowest_honest_z = lowest,
				median_honest_z = median,
				"screen"
			);
			out.kept.push(screened.kept.len());
			out.alignment.push(screened.alignment);
			match sim.screen {
				Screening::Apply => screened
					.kept
					.iter()
					.map(|k| (std::mem::take(&mut updates[*k]), sizes[*k]))
					.unzip(),
				_ => (updates, sizes.clone()),
			}
		} else {
			(updates, sizes.clone())
		};
		let step = if kept.is_empty() {
			vec![0f32; global.len()]
		} else {
			aggregate(&kept, &weights, sim.rule)?.values
		};
		global.iter_mut().zip(&step).for_each(|(g, d)| *g += d);
		previous = Some(step);
		model.load_flat(&global)?;
		let eval = train::evaluate(&model, &test, 1000)?;
		let accuracy = eval.accuracy;
		out.test_loss.push(eval.loss);
		progress(round, accuracy);
		out.accuracy.push(accuracy);
		out.loss
			.push(losses.iter().sum::<f64>() / losses.len().max(1) as f64);
	}
	out.privacy = shards
		.iter()
		.filter_map(|(_, plan, acc)| plan.as_ref().map(|p| (p.spent(acc), p.budget.delta)))
		.fold(None, |best: Option<(f64, f64)>, x| match best {
			Some(b) if b.0 >= x.0 => Some(b),
			_ => Some(x),
		});
	out.noise = shards.iter().find_map(|(_, plan, _)| {
		plan.as_ref()
			.and_then(|p| p.plan.per_round.first().copied())
	});
	out.seconds = started.elapsed().as_secs_f64();
	Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use crate::{
		aggregation::SCREEN_Z,
		data::{load_fashion_mnist, DEBIAN_FASHION_MNIST_DIR},
		runner::Noise,
	};

	/// With the screen on, a run aggregates what a chain would: two trainers sending
	/// random updates are left out in every round, the honest ones kept and measured, and
	/// the model still learns; with it off nothing is screened.
	#[test]
	fn the_screen_leaves_random_updates_out_of_a_simulated_run() {
		let (train_set, test) =
			load_fashion_mnist(std::path::Path::new(DEBIAN_FASHION_MNIST_DIR), false).unwrap();
		let sim = Sim {
			clients: 6,
			samples: 400,
			scheme: Scheme::Iid,
			arch: Arch::Mlp { hidden: 32 },
			train: TrainConfig {
				threads: 1,
				..TrainConfig::default()
			},
			rounds: 2,
			rule: Rule::FedAvg,
			privacy: PrivacyConfig {
				noise: Noise::Off,
				..PrivacyConfig::default()
			},
			floor: None,
			attack: Some((Behaviour::Random, 2)),
			seed: 7,
			screen: Screening::Apply,
		};
		let screened = run(&sim, &train_set, &test, |_, _| {}).unwrap();
		assert_eq!(screened.kept, vec![4, 4]);
		assert!(
			screened
				.alignment
				.iter()
				.all(|round| round[..4].iter().all(|z| *z >= SCREEN_Z)),
			"{:?}",
			screened.alignment
		);
		// Four honest trainers of 400 images learn (chance is 0.1) and keep learning.
		let acc = &screened.accuracy;
		assert!(acc[1] > 0.4 && acc[1] > acc[0], "{acc:?}");
		let plain = run(
			&Sim {
				screen: Screening::Off,
				..sim
			},
			&train_set,
			&test,
			|_, _| {},
		)
		.unwrap();
		assert!(plain.kept.is_empty() && plain.alignment.is_empty());
		// Observed, not applied: the same verdicts are measured and every update counts
		// (the random updates drag the model; no bound on how much, so no figure here).
		let observed = run(
			&Sim {
				screen: Screening::Observe,
				..sim
			},
			&train_set,
			&test,
			|_, _| {},
		)
		.unwrap();
		assert_eq!(observed.kept[0], 4);
		assert_eq!(observed.alignment[0].len(), 6);
		let bits = |z: &[f64]| z.iter().map(|z| z.to_bits()).collect::<Vec<_>>();
		assert_eq!(bits(&observed.alignment[0]), bits(&screened.alignment[0]));
	}
}
