//! The same task without the chain: every trainer of a task, with the configuration it runs
//! on chain, trained in one process round after round through the runner's own pipeline
//! ([`super::pipeline`]: the same shards, the same training seeds, behaviours, local DP,
//! norm clipping, PN watermarks, screen and aggregation rule) and the same round-0 model. What
//! the chain adds (commitments, confirmations, votes, lazy proofs) is replaced by what it
//! decides when it works: copiers are left out of every aggregate (the chain proves and
//! excludes them), everyone else's update is revealed and screened. The difference between
//! this run's accuracy and the chain's is what running on a chain costs in learning.
//!
//! Not reproduced, and why the two may differ slightly: PN seeds are random (the least
//! squares removal leaves a different tiny residue), reputations are taken equal (the
//! chain's move a little after round 1), local-DP noise draws differ, on chain a copier
//! proven only after the vote is in that round's aggregate, and every trainer given is taken
//! as selected and on time (on chain a late or unselected one is not in the aggregate).
//! Behaviours whose blobs the chain refuses (a crafted blob) have no chain-free meaning:
//! give honest, lazy (copier) or sign-flip trainers.

use blade_fl_primitives::{pn::round_key, verdict::contribution_weight};
use rand::{Rng, SeedableRng};

use super::{init_seed, local_indices, norm_bound, pipeline, rule_of, RunConfig};
use crate::{
	chain::TaskSpec,
	codec,
	error::{invalid, Result},
	model::Model,
	privacy::{task::TaskPlan, Accountant},
	registry, signature,
	train::{self, TrainConfig},
};

/// Reputation every trainer is weighted with (the chain's starting value).
const REPUTATION_PARTS: u32 = 500_000_000;

/// Accuracy of the global model after each round of `spec` (task `task`) trained by
/// `trainers` (one configuration each, as each would run `blade-trainer run`) without a
/// chain. `progress(round, trainer)` is called before each local training.
pub fn without_chain(
	task: u64,
	spec: &TaskSpec,
	trainers: &[RunConfig],
	mut progress: impl FnMut(u32, usize),
) -> Result<Vec<f64>> {
	let first = trainers.first().ok_or_else(|| invalid("no trainers"))?;
	let arch = registry::model(spec.model_id)?;
	let shape = registry::shape(spec.dataset_id)?;
	let (train_set, test_set) = registry::load(spec.dataset_id, &first.data_dir)?;
	let eval: Vec<usize> = (0..test_set.len().min(first.eval_samples)).collect();
	let test = train::to_tensors(&test_set.subset(&eval)?, first.device)?;
	let mut model = Model::new(arch, shape, first.device, init_seed(task))?;
	let mut global = model.flatten()?;
	struct Member {
		data: train::Tensors,
		samples: u64,
		privacy: Option<TaskPlan>,
		accountant: Accountant,
	}
	let mut members = Vec::with_capacity(trainers.len());
	for cfg in trainers {
		let local = train_set.subset(&local_indices(&train_set, cfg)?)?;
		let privacy = pipeline::privacy_plan(&cfg.privacy, &cfg.train, spec, local.len())?;
		members.push(Member {
			samples: local.len().min(spec.max_samples as usize) as u64,
			data: train::to_tensors(&local, cfg.device)?,
			privacy,
			accountant: Accountant::new(),
		});
	}
	let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(task);
	let shape_of_round = (f64::from(spec.pn_snr_centi_db) / 100.0, norm_bound(spec));
	let mut previous_step: Option<Vec<f32>> = None;
	let mut accuracy = Vec::new();
	for round in 0..spec.rounds {
		// Own updates first, in trainer order; then the copiers copy the first of them.
		let mut published: Vec<Option<(Vec<f32>, [u8; 32])>> = vec![None; trainers.len()];
		let order: Vec<usize> = (0..trainers.len())
			.filter(|i| !trainers[*i].behaviour.copies())
			.chain((0..trainers.len()).filter(|i| trainers[*i].behaviour.copies()))
			.collect();
		for i in order {
			let cfg = &trainers[i];
			let seed: [u8; 32] = rng.gen();
			let key = round_key(&(i as u64).to_le_bytes(), task, round, &[0; 32], &seed);
			let victim = if cfg.behaviour.copies() {
				let Some(first) = published.iter().flatten().next() else {
					continue;
				};
				Some(first.0.clone())
			} else {
				None
			};
			let member = &mut members[i];
			let trained = match victim {
				Some(_) => vec![0.0; global.len()],
				None => {
					progress(round, i);
					let config = TrainConfig {
						seed: u64::from(round) ^ (cfg.shard.0 as u64) << 32,
						..cfg.train
					};
					let (update, _, release) = pipeline::local_training(
						&mut model,
						&global,
						&member.data,
						&config,
						(member.privacy.as_ref(), cfg.privacy.clip),
						round,
						&mut rng,
					)?;
					if let Some(release) = release {
						pipeline::spend(&mut member.accountant, member.privacy.as_ref(), release)?;
					}
					update
				}
			};
			let mechanism = match victim {
				None => pipeline::mechanism(member.privacy.as_ref(), cfg.privacy.clip, round)?,
				Some(_) => None,
			};
			let plan = member.privacy.as_ref();
			let update = pipeline::publishable(
				cfg.behaviour,
				&trained,
				victim.as_deref(),
				mechanism.and_then(|m| plan.map(|p| (m, p))),
				&mut member.accountant,
				shape_of_round,
				&key,
				&mut rng,
				|_| Ok(()),
			)?;
			published[i] = Some((update, key));
		}
		// The chain's view of the round: copiers proven and excluded, the rest revealed.
		let mut clean = Vec::new();
		let mut weights = Vec::new();
		let mut owners = Vec::new();
		for (i, entry) in published.into_iter().enumerate() {
			let Some((values, key)) = entry else {
				continue;
			};
			if trainers[i].behaviour.copies() {
				continue;
			}
			// Through the task's blob codec, as the chain carries it (f16/int8 quantise).
			let blob = codec::encode(task, round, spec.codec, &values)?;
			let mut values = codec::decode(&blob, blob.len())?.1;
			signature::remove(&mut values, &key);
			weights.push(contribution_weight(members[i].samples, REPUTATION_PARTS));
			clean.push(values);
			owners.push(i);
		}
		if clean.is_empty() {
			return Err(invalid(format!("round {round}: no update to aggregate")));
		}
		let Some((next, _)) = pipeline::next_global(
			&global,
			clean,
			&weights,
			previous_step.as_deref(),
			rule_of(spec.rule),
			&|k| format!("trainer {}", owners[k]),
		)?
		else {
			return Err(invalid(format!("round {round}: the screen kept no update")));
		};
		previous_step = Some(next.iter().zip(&global).map(|(n, g)| n - g).collect());
		global = next;
		model.load_flat(&global)?;
		let eval = train::evaluate(&model, &test, 256)?;
		tracing::info!(
			round,
			accuracy = eval.accuracy,
			"global model without the chain"
		);
		accuracy.push(eval.accuracy);
	}
	Ok(accuracy)
}
