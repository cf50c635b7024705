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
	aggregation::{aggregate, Rule},
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
	for part in &parts {
		let take: Vec<usize> = match sim.samples {
			0 => part.clone(),
			n => part.iter().copied().take(n).collect(),
		};
		let data = train_set.subset(&take)?;
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
		let weights = vec![1u128; updates.len()];
		let agg = aggregate(&updates, &weights, sim.rule)?;
		global
			.iter_mut()
			.zip(&agg.values)
			.for_each(|(g, d)| *g += d);
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
