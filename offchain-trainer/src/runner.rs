//! A trainer's life cycle on one task, driven by the chain's state.
//!
//! Every step is decided from the task as it stands at the *confirmed head* (the block
//! `confirmations` below the best one) and every transaction is waited on until it is
//! equally deep, so a reorg shallower than the confirmation depth never makes the trainer
//! act on something that did not happen. What the trainer must remember (PN seeds, the
//! blobs it sent, its reports and votes) is saved in the state directory *before* the
//! transaction that depends on it is sent, so a killed trainer started again with the same
//! state directory picks the task up where it stopped.
//!
//! Per round:
//! 1. **Submit**: start from the global model (round 0: the model initialised from the
//!    task id; later rounds: the agreed aggregate, computed locally or downloaded from the
//!    aggregator's publication), train `tau` local epochs, take the update (local - global),
//!    apply the behaviour under test, clip and add local-DP noise, scale into the task's
//!    norm bound, add the PN watermark (chips of this round's key, derived from the
//!    committed seed, the account, the task and the round) at the task's SNR, and submit it
//!    with the commitment to the next round's seed.
//! 2. **Reveal**: open this round's commitment.
//! 3. **Verify** (reveal and aggregate phases): download every other update from its block
//!    and run the runtime's own verdicts on it (bit-exact, at the governed `LazyZScore` and
//!    `WatermarkTolerance`): its own watermark too weak (`report_weak_watermark`), a copy
//!    of one revealed trainer, or (aggregate phase) of all of them together
//!    (`report_lazy`). Only what the runtime will uphold is reported: a rejected report
//!    costs a penalty.
//! 4. **Aggregate**: strip every eligible update's watermark (least-squares amplitude),
//!    aggregate with the task's rule and weights `sqrt(samples) x reputation`, add to the
//!    global model, and vote for the blob's hash with the included set. An update whose
//!    values are unusable (non-finite once decoded, or beyond the norm bound) is left out,
//!    never a reason to stop.
//! 5. **Publish**: the round's aggregator (first proposer of the winning pair) publishes the
//!    aggregate blob and earns the fee. If it withholds it, every trainer that computed the
//!    agreed blob publishes it once the aggregator's exclusive window has passed (staggered
//!    by trainer index), so the next round can start.
//!
//! Memory: downloaded updates are cached for the current round only.

use std::{
	collections::{HashMap, HashSet},
	path::PathBuf,
	time::{Duration, Instant},
};

use blade_fl_primitives::{
	blob::Codec,
	pn::{round_key, Seed},
	verdict::contribution_weight,
};
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use sp_core::H256;
use tch::Device;

use crate::{
	aggregation::{self, Rule},
	behaviour::{self, Behaviour},
	chain::{self, AccountId, Balance, Client, FlCall, TaskView},
	codec,
	data::Dataset,
	error::{invalid, Error, Result},
	model::Model,
	partition::{partition, Scheme},
	privacy::{self, Accountant, AdaptiveNoise, Mechanism},
	registry, signature,
	state::{self, Store, TaskState},
	train::{self, Tensors, TrainConfig},
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
	/// Draw progress bars (on a terminal).
	pub progress: bool,
}

/// How a run ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
	/// Whether this account was selected.
	pub selected: bool,
	/// Whether this account was proven lazy.
	pub proven_lazy: bool,
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

/// What one step decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
	/// Wait for the next block.
	Wait,
	/// Look again at once (something was sent and confirmed).
	Again,
	/// Done.
	Done,
}

/// Join `cfg.task` as trainer and follow it to settlement.
pub fn run(client: &mut Client, store: &Store, cfg: &RunConfig) -> Result<Outcome> {
	Runner::new(client, store, cfg)?.run()
}

struct Runner<'a> {
	client: &'a mut Client,
	store: &'a Store,
	cfg: &'a RunConfig,
	state: TaskState,
	spec: chain::TaskSpec,
	model: Model,
	train: Tensors,
	test: Tensors,
	samples: u64,
	rng: rand_chacha::ChaCha12Rng,
	accountant: Accountant,
	adaptive: Option<AdaptiveNoise>,
	/// This round's downloaded update blobs and their values (`None`: unusable), by hash.
	updates: HashMap<H256, (Vec<u8>, Option<Vec<f32>>)>,
	/// (update hash, key) pairs already tested this round (a key of `[0; 32]`: the test
	/// against all victims together).
	checked: HashSet<(H256, Seed)>,
	/// (round, attempt) the caches above belong to.
	cache_round: (u32, u8),
	/// Block number of the confirmed head being acted on.
	head_number: u32,
	/// The global model at the start of a round, by round.
	globals: HashMap<u32, Vec<f32>>,
	/// The round-0 model every trainer starts from.
	init: Vec<f32>,
	outcome: Outcome,
	bar: ProgressBar,
	last_phase: Option<(chain::RoundIndex, pallet_fl_tasks::Phase)>,
}

/// Seed of the round-0 model of `task`: the same for every trainer.
pub fn init_seed(task: chain::TaskId) -> i64 {
	(task as i64).wrapping_mul(0x5DEECE66D).wrapping_add(11)
}

/// The task's L2 bound on an update (the chain refuses larger ones).
fn norm_bound(spec: &chain::TaskSpec) -> f64 {
	f64::from(spec.max_norm_milli) / 1000.0
}

/// Name of a saved update blob.
fn update_name(round: u32, attempt: u8) -> String {
	format!("update-{round}-{attempt}")
}

/// Name of a saved aggregate blob.
fn aggregate_name(round: u32) -> String {
	format!("aggregate-{round}")
}

fn rule_of(rule: pallet_fl_tasks::AggregationRule) -> Rule {
	match rule {
		pallet_fl_tasks::AggregationRule::FedAvg => Rule::FedAvg,
		pallet_fl_tasks::AggregationRule::CoordinateMedian => Rule::Median,
		pallet_fl_tasks::AggregationRule::TrimmedMean { trim } => Rule::TrimmedMean {
			trim: f64::from(trim.deconstruct()) / 100.0,
		},
		pallet_fl_tasks::AggregationRule::MultiKrum { byzantine } => Rule::MultiKrum {
			byzantine: byzantine as usize,
		},
	}
}

fn seed_from_hex(text: &str) -> Result<Seed> {
	let bytes = hex::decode(text).map_err(|e| invalid(format!("seed in state: {e}")))?;
	bytes
		.try_into()
		.map_err(|_| invalid("seed in state is not 32 bytes"))
}

impl<'a> Runner<'a> {
	fn new(client: &'a mut Client, store: &'a Store, cfg: &'a RunConfig) -> Result<Self> {
		let view = client
			.task(cfg.task, None)?
			.ok_or_else(|| invalid(format!("task {} does not exist or has settled", cfg.task)))?;
		let spec = view.spec;
		let arch = registry::model(spec.model_id)?;
		let shape = registry::shape(spec.dataset_id)?;
		if u64::from(spec.param_count) != arch.param_count(shape) {
			return Err(invalid(format!(
				"task {} declares {} parameters; model {} on data set {} has {}",
				cfg.task,
				spec.param_count,
				spec.model_id,
				spec.dataset_id,
				arch.param_count(shape)
			)));
		}
		let (train_set, test_set) = registry::load(spec.dataset_id, &cfg.data_dir)?;
		let (shard, shards) = cfg.shard;
		if shard >= shards {
			return Err(invalid(format!("shard {shard} of {shards}")));
		}
		let parts = partition(
			&train_set.labels,
			train_set.classes,
			shards,
			cfg.scheme,
			cfg.partition_seed,
		)?;
		let mut mine = parts[shard].clone();
		if let Some(max) = cfg.max_samples {
			mine.truncate(max);
		}
		let local: Dataset = train_set.subset(&mine)?;
		let eval: Vec<usize> = (0..test_set.len().min(cfg.eval_samples)).collect();
		let test = test_set.subset(&eval)?;
		tracing::info!(
			task = cfg.task,
			model = spec.model_id,
			dataset = spec.dataset_id,
			params = spec.param_count,
			samples = local.len(),
			"loaded local data"
		);
		let model = Model::new(arch, shape, cfg.device, init_seed(cfg.task))?;
		let init = model.flatten()?;
		let max_epsilon = f64::from(spec.max_epsilon_milli) / 1000.0;
		let adaptive = match cfg.privacy.noise {
			Noise::Off => None,
			_ => Some(AdaptiveNoise::new(
				cfg.privacy.epsilon.unwrap_or(max_epsilon),
				max_epsilon,
				cfg.privacy.growth,
				cfg.privacy.patience,
			)?),
		};
		let bar = if cfg.progress {
			let bar = ProgressBar::new_spinner();
			bar.set_style(
				ProgressStyle::with_template("{spinner} task {prefix} {wide_msg} [{elapsed}]")
					.map_err(|e| invalid(e.to_string()))?,
			);
			bar.set_prefix(cfg.task.to_string());
			bar.enable_steady_tick(Duration::from_millis(200));
			bar
		} else {
			ProgressBar::hidden()
		};
		let balance = client.account_info(&client.account().clone(), None)?.free;
		Ok(Runner {
			state: store.load(cfg.task)?,
			spec,
			samples: local.len() as u64,
			train: train::to_tensors(&local, cfg.device)?,
			test: train::to_tensors(&test, cfg.device)?,
			model,
			rng: rand_chacha::ChaCha12Rng::from_seed(state::fresh_seed()),
			accountant: Accountant::new(),
			adaptive,
			updates: HashMap::new(),
			checked: HashSet::new(),
			cache_round: (0, 0),
			head_number: 0,
			globals: HashMap::new(),
			init,
			outcome: Outcome {
				balance: (balance, balance),
				..Default::default()
			},
			bar,
			last_phase: None,
			client,
			store,
			cfg,
		})
	}

	fn me(&self) -> &AccountId {
		self.client.account()
	}

	fn save(&self) -> Result<()> {
		self.store.save(&self.state)
	}

	fn run(mut self) -> Result<Outcome> {
		loop {
			let (number, head) = self.client.confirmed_head()?;
			let step = match self.client.task(self.cfg.task, Some(head))? {
				None => Step::Done,
				Some(view) => {
					self.head_number = number;
					self.show(number, &view);
					match self.step(&view, head) {
						Ok(step) => step,
						// A refusal from the chain (usually: the phase moved on while this
						// trainer acted on the confirmed head) is logged; the next look at
						// the chain decides again.
						Err(Error::Dispatch { call, error }) => {
							tracing::warn!(%call, %error, "refused by the chain");
							Step::Wait
						}
						Err(e) => return Err(e),
					}
				}
			};
			match step {
				Step::Done => break,
				Step::Again => continue,
				Step::Wait => self.wait_for_block(number)?,
			}
		}
		self.bar.finish_and_clear();
		let last = self.spec.rounds;
		if !self.globals.contains_key(&last) {
			// Settled before the final model was seen at the confirmed head: evaluate this
			// trainer's own copy of the agreed aggregate, if it has one.
			if let Some(blob) = self
				.store
				.load_blob(self.cfg.task, &aggregate_name(last - 1))?
			{
				let values = codec::decode(&blob, blob.len())?.1;
				self.evaluate(last, &values)?;
			}
		}
		let me = self.me().clone();
		self.outcome.balance.1 = self.client.account_info(&me, None)?.free;
		self.outcome.accuracy = self.state.accuracy.iter().map(|(r, a)| (*r, *a)).collect();
		if self.accountant.releases() > 0 {
			let delta = self.cfg.privacy.delta;
			let epsilon = match self.cfg.privacy.noise {
				Noise::Laplace => self.accountant.pure_epsilon(),
				_ => self.accountant.epsilon(delta),
			};
			self.outcome.privacy = Some((epsilon, delta));
		}
		Ok(self.outcome)
	}

	fn show(&mut self, number: u32, view: &TaskView) {
		let key = (view.round, view.phase);
		if self.last_phase != Some(key) {
			tracing::info!(task = self.cfg.task, round = view.round, attempt = view.attempt, phase = ?view.phase, phase_end = view.phase_end, "phase");
			self.last_phase = Some(key);
		}
		self.bar.set_message(format!(
			"round {}/{} {:?}: block {number}, phase ends at {}",
			view.round + 1,
			view.spec.rounds,
			view.phase,
			view.phase_end
		));
	}

	fn wait_for_block(&self, seen: u32) -> Result<()> {
		let deadline = Instant::now() + self.client.timeout;
		loop {
			let best = self.client.best_number()?;
			if best.saturating_sub(self.client.confirmations) > seen {
				return Ok(());
			}
			if Instant::now() > deadline {
				return Err(Error::Timeout(format!("a block after {seen}")));
			}
			std::thread::sleep(self.client.poll);
		}
	}

	fn step(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		use pallet_fl_tasks::Phase;
		let index = view.trainers.iter().position(|a| a == self.me());
		if view.phase != Phase::Bidding {
			self.outcome.selected = index.is_some();
		}
		let Some(i) = index else {
			return match view.phase {
				Phase::Bidding => self.bid(view, head),
				_ => {
					tracing::info!(task = self.cfg.task, "not selected for this task");
					Ok(Step::Done)
				}
			};
		};
		if (view.round, view.attempt) != self.cache_round {
			self.updates.clear();
			self.checked.clear();
			self.cache_round = (view.round, view.attempt);
		}
		let bit = 1u64 << i;
		if view.lazy & bit != 0 {
			tracing::warn!(
				task = self.cfg.task,
				"proven lazy and excluded from the task"
			);
			self.outcome.proven_lazy = true;
			return Ok(Step::Done);
		}
		if self.publish(view, head)? {
			return Ok(Step::Again);
		}
		match view.phase {
			Phase::Submit if view.submitted & bit == 0 => self.submit(view, head),
			Phase::Reveal => {
				if view.submitted & bit != 0 && view.revealed & bit == 0 {
					return self.reveal(view, head);
				}
				self.verify(view, head)
			}
			Phase::Aggregate if view.decided.is_none() => {
				if self.verify(view, head)? == Step::Again {
					return Ok(Step::Again);
				}
				if view.eligible() & bit != 0
					&& !self.state.voted.contains(&(view.round, view.attempt))
				{
					return self.propose(view, head);
				}
				Ok(Step::Wait)
			}
			Phase::Publishing => {
				// Evaluate the final model as soon as it is known.
				self.global(view.spec.rounds, head)?;
				Ok(Step::Wait)
			}
			_ => Ok(Step::Wait),
		}
	}

	fn bid(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		let me = self.me().clone();
		let phases = view.spec.phases;
		let shortest = phases.submit.min(phases.reveal).min(phases.aggregate);
		let needed = self.client.confirmations.saturating_add(2);
		if shortest < needed {
			return Err(invalid(format!(
				"not bidding on task {}: its shortest round phase is {shortest} blocks, but this trainer acts on blocks {} deep and needs at least {needed} blocks per phase to see a phase, act and have its transaction included; it would miss deadlines and be slashed",
				self.cfg.task, self.client.confirmations
			)));
		}
		if self
			.client
			.bids(self.cfg.task, Some(head))?
			.iter()
			.any(|(a, _)| *a == me)
		{
			return Ok(Step::Wait);
		}
		let seed = state::fresh_seed();
		let commitment = chain::commitment(&me, &seed);
		self.state
			.seeds
			.insert(state::hex(commitment.as_bytes()), state::hex(&seed));
		self.save()?;
		tracing::info!(
			task = self.cfg.task,
			samples = self.samples,
			stake = view.spec.min_stake,
			"bidding"
		);
		self.client.fl(FlCall::bid {
			task: self.cfg.task,
			samples: self.samples,
			price: self.cfg.price,
			capability: self.cfg.capability,
			commitment,
		})?;
		Ok(Step::Again)
	}

	/// The seed opening this trainer's current commitment.
	fn current_seed(&self, head: H256) -> Result<Seed> {
		let me = self.me().clone();
		let participant = self
			.client
			.participants(self.cfg.task, Some(head))?
			.into_iter()
			.find(|(a, _)| *a == me)
			.map(|(_, p)| p)
			.ok_or_else(|| invalid("not a participant"))?;
		let key = state::hex(participant.commitment.as_bytes());
		let seed = self.state.seeds.get(&key).ok_or_else(|| {
			invalid(format!(
				"no seed for commitment {key} in the state directory: it was lost, the reveal will be missed"
			))
		})?;
		seed_from_hex(seed)
	}

	/// The global model at the start of `round`, or `None` while it is not available yet.
	fn global(&mut self, round: u32, head: H256) -> Result<Option<Vec<f32>>> {
		if let Some(g) = self.globals.get(&round) {
			return Ok(Some(g.clone()));
		}
		let values = if round == 0 {
			self.init.clone()
		} else {
			let Some(gm) = self
				.client
				.global_model(self.cfg.task, round - 1, Some(head))?
			else {
				return Ok(None);
			};
			let local = self
				.store
				.load_blob(self.cfg.task, &aggregate_name(round - 1))?
				.filter(|b| H256(codec::hash(b)) == gm.hash);
			let blob = match (local, gm.published) {
				(Some(blob), _) => blob,
				(None, Some((block, index))) => self.client.blob_at(block, index, gm.hash)?,
				(None, None) => {
					tracing::info!(
						round,
						"waiting for the aggregator to publish the global model"
					);
					return Ok(None);
				}
			};
			codec::decode(&blob, blob.len())?.1
		};
		self.evaluate(round, &values)?;
		self.globals.insert(round, values.clone());
		Ok(Some(values))
	}

	/// Test accuracy of the global model at the start of `round` (i.e. after round - 1);
	/// feeds the adaptive noise decay.
	fn evaluate(&mut self, round: u32, values: &[f32]) -> Result<()> {
		self.model.load_flat(values)?;
		let eval = train::evaluate(&self.model, &self.test, 256)?;
		tracing::info!(
			round,
			accuracy = eval.accuracy,
			loss = eval.loss,
			"global model"
		);
		if round > 0 {
			self.state.accuracy.insert(round - 1, eval.accuracy);
			self.save()?;
		}
		if let Some(adaptive) = self.adaptive.as_mut() {
			adaptive.observe(eval.accuracy);
		}
		Ok(())
	}

	/// Whether the best block already shows this trainer's `mask` bit (e.g. its update
	/// landed above the confirmed head, perhaps sent before a restart).
	fn done_at_best(&self, mask: impl Fn(&TaskView) -> u64) -> Result<bool> {
		let me = self.me();
		Ok(self.client.task(self.cfg.task, None)?.is_some_and(|best| {
			best.trainers
				.iter()
				.position(|a| a == me)
				.is_some_and(|i| mask(&best) & (1u64 << i) != 0)
		}))
	}

	fn submit(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		let (round, attempt) = (view.round, view.attempt);
		if self.done_at_best(|v| v.submitted)? {
			return Ok(Step::Wait);
		}
		let name = update_name(round, attempt);
		let blob = match self.store.load_blob(self.cfg.task, &name)? {
			Some(blob) => {
				tracing::info!(round, "resending the update saved before a restart");
				blob
			}
			None => {
				let Some(values) = self.make_update(view, head)? else {
					return Ok(Step::Wait);
				};
				let blob = if let Behaviour::CraftedBlob = self.cfg.behaviour {
					behaviour::overflowing_blob(self.cfg.task, round, values.len())?
				} else {
					codec::encode(self.cfg.task, round, self.spec.codec, &values)?
				};
				self.store.save_blob(self.cfg.task, &name, &blob)?;
				blob
			}
		};
		let me = self.me().clone();
		let next = state::fresh_seed();
		let next_commitment = chain::commitment(&me, &next);
		self.state
			.seeds
			.insert(state::hex(next_commitment.as_bytes()), state::hex(&next));
		self.state
			.submitted
			.insert(round, state::hex(&codec::hash(&blob)));
		self.save()?;
		let bytes = blob.len();
		let bounded = blob.try_into().map_err(|_| {
			invalid(format!(
				"update of {bytes} bytes exceeds the runtime's bound"
			))
		})?;
		self.client.fl(FlCall::submit_update {
			task: self.cfg.task,
			round,
			blob: bounded,
			next_commitment,
		})?;
		self.outcome.submitted += 1;
		Ok(Step::Again)
	}

	/// Train, apply the behaviour, privatise and watermark this round's update.
	fn make_update(&mut self, view: &TaskView, head: H256) -> Result<Option<Vec<f32>>> {
		let round = view.round;
		let Some(global) = self.global(round, head)? else {
			return Ok(None);
		};
		let seed = self.current_seed(head)?;
		let key = round_key(
			&::codec::Encode::encode(self.me()),
			self.cfg.task,
			round,
			&seed,
		);
		// The lazy trainer copies someone's update of this round from the chain (the best
		// block: it is in a hurry, not careful).
		let victim = if self.cfg.behaviour.copies() {
			let me = self.me().clone();
			let others: Vec<_> = self
				.client
				.updates(self.cfg.task, None)?
				.into_iter()
				.filter(|(a, _)| *a != me)
				.collect();
			let Some((who, record)) = others.first().cloned() else {
				tracing::info!(round, "lazy: waiting for an update to copy");
				return Ok(None);
			};
			tracing::info!(round, victim = %who, "lazy: copying an update");
			let blob = self
				.client
				.blob_at(record.block, record.extrinsic_index, record.hash)?;
			Some(codec::decode(&blob, blob.len())?.1)
		} else {
			None
		};
		let mut update = if victim.is_none() {
			let config = TrainConfig {
				seed: u64::from(round) ^ (self.cfg.shard.0 as u64) << 32,
				..self.cfg.train
			};
			self.bar.set_message(format!(
				"round {}: training {} samples",
				round + 1,
				self.samples
			));
			let (update, stats) =
				train::local_update(&mut self.model, &global, &self.train, &config)?;
			tracing::info!(
				round,
				loss = stats.loss,
				samples_per_s = stats.samples_per_sec,
				"trained"
			);
			update
		} else {
			vec![0.0; global.len()]
		};
		update = behaviour::apply(
			self.cfg.behaviour,
			&update,
			victim.as_deref(),
			&mut self.rng,
		)?;
		if victim.is_none() {
			if let Some(adaptive) = &self.adaptive {
				let p = &self.cfg.privacy;
				let mechanism = match p.noise {
					Noise::Gaussian => Mechanism::Gaussian {
						epsilon: adaptive.epsilon,
						delta: p.delta,
						clip: p.clip,
					},
					Noise::Laplace => Mechanism::Laplace {
						epsilon: adaptive.epsilon,
						clip: p.clip,
					},
					Noise::Off => Mechanism::Off,
				};
				let release = privacy::privatise(&mut update, mechanism, &mut self.rng)?;
				self.accountant.record(release);
				tracing::info!(round, epsilon = adaptive.epsilon, "local DP applied");
			}
		}
		let snr_db = f64::from(view.spec.pn_snr_centi_db) / 100.0;
		let bound = norm_bound(&view.spec);
		privacy::clip_l2(&mut update, signature::norm_before_watermark(bound, snr_db));
		let amplitude = match self.cfg.behaviour {
			Behaviour::Inflate { factor } => factor * privacy::rms(&update),
			_ => signature::amplitude_for_snr(&update, snr_db),
		};
		signature::apply(&mut update, &key, amplitude, 1.0);
		if let Behaviour::Inflate { .. } = self.cfg.behaviour {
			// The inflating copier must still fit the norm bound the chain enforces.
			privacy::clip_l2(&mut update, 0.98 * bound);
		}
		Ok(Some(update))
	}

	fn reveal(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		if self.done_at_best(|v| v.revealed)? {
			return Ok(Step::Wait);
		}
		let seed = self.current_seed(head)?;
		self.client.fl(FlCall::reveal_seed {
			task: self.cfg.task,
			round: view.round,
			seed,
		})?;
		self.state.revealed.push(view.round);
		self.save()?;
		Ok(Step::Again)
	}

	/// Blob and decoded values of a recorded update (downloaded once per round). The values
	/// are `None` when they are unusable: non-finite once decoded (an int8 scale near
	/// `f32::MAX`), beyond the task's norm bound, or undecodable. Such an update is left out
	/// of the aggregate (it is outside the included set), never a reason to stop.
	fn update(
		&mut self,
		record: &chain::UpdateRecord,
		bound: f64,
	) -> Result<(Vec<u8>, Option<Vec<f32>>)> {
		if let Some(known) = self.updates.get(&record.hash) {
			return Ok(known.clone());
		}
		let blob = self
			.client
			.blob_at(record.block, record.extrinsic_index, record.hash)?;
		let values = match codec::decode(&blob, blob.len()) {
			Ok((_, values)) => {
				let norm = privacy::l2_norm(&values);
				if norm.is_finite() && norm <= bound * 1.0001 {
					Some(values)
				} else {
					tracing::warn!(hash = ?record.hash, norm, bound, "update unusable (non-finite or beyond the norm bound); leaving it out");
					None
				}
			}
			Err(e) => {
				tracing::warn!(hash = ?record.hash, error = %e, "update undecodable; leaving it out");
				None
			}
		};
		self.updates
			.insert(record.hash, (blob.clone(), values.clone()));
		Ok((blob, values))
	}

	/// Run the runtime's verdicts on every other update of this round and report what the
	/// runtime will uphold: a watermark too weak, a copy of one revealed trainer, or (in the
	/// aggregate phase, when the reveals are final) a copy of all of them together.
	fn verify(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		use pallet_fl_tasks::Phase;
		let me = self.me().clone();
		let updates = self.client.updates(self.cfg.task, Some(head))?;
		if updates.iter().all(|(_, r)| r.seed.is_none()) {
			return Ok(Step::Wait);
		}
		let params = FlParams::read(self.client, Some(head))?;
		let bound = norm_bound(&view.spec);
		let eligible = view.eligible();
		let key_of = |who: &AccountId| {
			updates
				.iter()
				.find(|(a, _)| a == who)
				.and_then(|(_, r)| r.seed)
		};
		for (accused, record) in &updates {
			let position = view.trainers.iter().position(|a| a == accused);
			let excluded = position.is_none_or(|p| view.lazy & (1u64 << p) != 0);
			let key = format!("{}/{}/{accused}", view.round, view.attempt);
			// The runtime removes the accused's own watermark once it is revealed: only
			// then is the verdict final (an unrevealed update is excluded anyway).
			let Some(own) = record.seed else { continue };
			if *accused == me || excluded || self.state.reported.contains(&key) {
				continue;
			}
			let blob = self.update(record, bound)?.0;
			if self.checked.insert((record.hash, own)) {
				let (weak, snr_centi_db) = signature::chain_weak_watermark(
					&blob,
					&own,
					view.spec.pn_snr_centi_db,
					params.watermark_tolerance,
					params.lazy_z_score,
				)?;
				if weak {
					tracing::warn!(%accused, snr_centi_db, "update without its watermark at the task's strength");
					return self.report(view, accused, key, blob, Accusation::Weak);
				}
			}
			// One named victim at a time, in trainer order.
			for (i, victim) in view.trainers.iter().enumerate() {
				let Some(victim_key) = key_of(victim) else {
					continue;
				};
				if victim == accused
					|| view.lazy & (1u64 << i) != 0
					|| !self.checked.insert((record.hash, victim_key))
				{
					continue;
				}
				let (proven, z_centi) =
					signature::chain_copy(&blob, Some(&own), &[victim_key], params.lazy_z_score)?;
				if proven {
					tracing::warn!(%accused, %victim, z_centi, "lazy copy proven");
					let victim = Some(victim.clone());
					return self.report(view, accused, key, blob, Accusation::Copy(victim));
				}
			}
			// All revealed eligible others together (an averaging copier), exactly the set
			// the runtime takes for `victim = None`.
			if view.phase == Phase::Aggregate && self.checked.insert((record.hash, [0; 32])) {
				let keys: Vec<Seed> = view
					.trainers
					.iter()
					.enumerate()
					.filter(|(i, who)| eligible & (1u64 << i) != 0 && *who != accused)
					.filter_map(|(_, who)| key_of(who))
					.collect();
				if !keys.is_empty() {
					let (proven, z_centi) =
						signature::chain_copy(&blob, Some(&own), &keys, params.lazy_z_score)?;
					if proven {
						tracing::warn!(%accused, victims = keys.len(), z_centi, "copy of the revealed updates together proven");
						return self.report(view, accused, key, blob, Accusation::Copy(None));
					}
				}
			}
		}
		Ok(Step::Wait)
	}

	/// Send a report the runtime's verdict upholds, unless the best block shows the
	/// accused already proven or the round decided.
	fn report(
		&mut self,
		view: &TaskView,
		accused: &AccountId,
		key: String,
		blob: Vec<u8>,
		accusation: Accusation,
	) -> Result<Step> {
		let position = view.trainers.iter().position(|a| a == accused);
		let best = self.client.task(self.cfg.task, None)?;
		if best.as_ref().is_some_and(|b| {
			position.is_some_and(|p| b.lazy & (1u64 << p) != 0) || b.decided.is_some()
		}) {
			tracing::info!(%accused, "already proven, or the round decided; not reporting");
			self.state.reported.push(key);
			return Ok(Step::Wait);
		}
		if best.as_ref().is_some_and(|b| b.lazy != view.lazy) {
			// The eligible set moved above the confirmed head: the verdict against all
			// victims may differ there. Test again on a later head.
			let hash = H256(codec::hash(&blob));
			self.checked.retain(|(h, _)| *h != hash);
			return Ok(Step::Wait);
		}
		self.state.reported.push(key);
		self.save()?;
		let accused_blob = blob
			.try_into()
			.map_err(|_| invalid("accused blob exceeds the runtime's bound"))?;
		let (task, round, accused) = (self.cfg.task, view.round, accused.clone());
		let call = match accusation {
			Accusation::Copy(victim) => FlCall::report_lazy {
				task,
				round,
				accused,
				victim,
				accused_blob,
			},
			Accusation::Weak => FlCall::report_weak_watermark {
				task,
				round,
				accused,
				accused_blob,
			},
		};
		let confirmed = self.client.fl(call)?;
		if chain::fl_events(&confirmed.events).any(|e| {
			matches!(
				e,
				chain::FlEvent::LazyProven { .. } | chain::FlEvent::WeakWatermarkProven { .. }
			)
		}) {
			self.outcome.reports_upheld += 1;
		}
		Ok(Step::Again)
	}

	fn propose(&mut self, view: &TaskView, head: H256) -> Result<Step> {
		let round = view.round;
		// A quorum may already have formed above the confirmed head: a late vote would
		// only be refused (and cost its fee).
		if self
			.client
			.task(self.cfg.task, None)?
			.is_some_and(|best| best.round == round && best.decided.is_some())
		{
			return Ok(Step::Wait);
		}
		let Some(global) = self.global(round, head)? else {
			return Ok(Step::Wait);
		};
		let updates = self.client.updates(self.cfg.task, Some(head))?;
		let participants = self.client.participants(self.cfg.task, Some(head))?;
		let eligible = view.eligible();
		let bound = norm_bound(&view.spec);
		let mut clean = Vec::new();
		let mut weights = Vec::new();
		let mut bits = Vec::new();
		for (i, who) in view.trainers.iter().enumerate() {
			if eligible & (1u64 << i) == 0 {
				continue;
			}
			let Some((_, record)) = updates.iter().find(|(a, _)| a == who) else {
				continue;
			};
			let Some(seed) = record.seed else { continue };
			let Some(mut values) = self.update(record, bound)?.1 else {
				continue;
			};
			signature::remove(&mut values, &seed);
			let samples = participants
				.iter()
				.find(|(a, _)| a == who)
				.map_or(0, |(_, p)| p.samples);
			let reputation = self.client.reputation(who, Some(head))?;
			weights.push(contribution_weight(samples, reputation.deconstruct()));
			clean.push(values);
			bits.push(i);
		}
		if clean.is_empty() {
			return Ok(Step::Wait);
		}
		let aggregate = aggregation::aggregate(&clean, &weights, rule_of(view.spec.rule))?;
		let included = aggregate
			.included
			.iter()
			.fold(0u64, |mask, k| mask | (1u64 << bits[*k]));
		let next: Vec<f32> = global
			.iter()
			.zip(&aggregate.values)
			.map(|(g, d)| g + d)
			.collect();
		let blob = codec::encode(self.cfg.task, round, Codec::F32, &next)?;
		let hash = H256(codec::hash(&blob));
		self.store
			.save_blob(self.cfg.task, &aggregate_name(round), &blob)?;
		self.state.voted.push((round, view.attempt));
		self.save()?;
		tracing::info!(round, included = format!("{included:#b}"), hash = ?hash, "proposing the aggregate");
		let sent = self.client.fl(FlCall::propose_aggregate {
			task: self.cfg.task,
			round,
			hash,
			included,
		});
		if let Err(e @ Error::Dispatch { .. }) = sent {
			// Refused (say, the eligible set changed above the head this trainer acted on):
			// the round still needs a vote, so forget this one and vote again on a later head.
			self.state.voted.retain(|v| *v != (round, view.attempt));
			self.save()?;
			return Err(e);
		}
		sent?;
		Ok(Step::Again)
	}

	/// Publish the aggregates this trainer must or may publish; true if it sent something.
	/// Its own as aggregator at once; another aggregator's agreed blob once that
	/// aggregator's exclusive window has passed (at once if it was proven lazy), staggered
	/// by trainer index so that not everyone pays for the same publication.
	fn publish(&mut self, view: &TaskView, head: H256) -> Result<bool> {
		let me = self.me().clone();
		if let Behaviour::Withhold = self.cfg.behaviour {
			return Ok(false);
		}
		let my_index = view.trainers.iter().position(|a| *a == me).unwrap_or(0) as u32;
		for round in [view.round.saturating_sub(1), view.round] {
			if self.state.published.contains(&round) {
				continue;
			}
			let Some(gm) = self.client.global_model(self.cfg.task, round, Some(head))? else {
				continue;
			};
			if gm.published.is_some() {
				continue;
			}
			let mine = gm.aggregator == me;
			if !mine {
				let aggregator_lazy = view
					.trainers
					.iter()
					.position(|a| *a == gm.aggregator)
					.is_some_and(|p| view.lazy & (1u64 << p) != 0);
				let my_turn = gm.exclusive_until.saturating_add(my_index);
				if !aggregator_lazy && self.head_number < my_turn {
					continue;
				}
				// Someone may have published it above the confirmed head.
				if self
					.client
					.global_model(self.cfg.task, round, None)?
					.is_some_and(|g| g.published.is_some())
				{
					continue;
				}
			}
			let Some(blob) = self
				.store
				.load_blob(self.cfg.task, &aggregate_name(round))?
				.filter(|b| H256(codec::hash(b)) == gm.hash)
			else {
				if mine {
					tracing::warn!(round, "aggregator without the agreed blob; cannot publish");
				}
				continue;
			};
			self.state.published.push(round);
			self.save()?;
			if mine {
				tracing::info!(round, fee = gm.fee, "publishing the aggregate");
			} else {
				tracing::warn!(round, aggregator = %gm.aggregator, "the aggregator withheld the agreed aggregate; publishing it");
			}
			self.client.fl(FlCall::publish_aggregate {
				task: self.cfg.task,
				round,
				blob: blob
					.try_into()
					.map_err(|_| invalid("aggregate exceeds the runtime's bound"))?,
			})?;
			return Ok(true);
		}
		Ok(false)
	}
}

/// What a report accuses an update of.
enum Accusation {
	/// A copy of the named victim (or of all revealed others: `None`).
	Copy(Option<AccountId>),
	/// Its own watermark weaker than the task allows.
	Weak,
}

/// The governed FL parameters the trainer's verdicts use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlParams {
	/// `Fl.LazyZScore`, hundredths of a standard deviation.
	pub lazy_z_score: u32,
	/// `Fl.WatermarkTolerance`, hundredths of a dB.
	pub watermark_tolerance: u32,
}

impl FlParams {
	/// The stored values at `at`, or the runtime's defaults.
	pub fn read(client: &Client, at: Option<H256>) -> Result<FlParams> {
		use blade_fl_runtime::dynamic_params::fl;
		Ok(FlParams {
			lazy_z_score: fl_parameter(
				client,
				at,
				fl::ParametersKey::LazyZScore(fl::LazyZScore),
				|v| match v {
					fl::ParametersValue::LazyZScore(z) => Some(z),
					_ => None,
				},
				<fl::LazyZScore as frame_support::traits::Get<u32>>::get,
			)?,
			watermark_tolerance: fl_parameter(
				client,
				at,
				fl::ParametersKey::WatermarkTolerance(fl::WatermarkTolerance),
				|v| match v {
					fl::ParametersValue::WatermarkTolerance(t) => Some(t),
					_ => None,
				},
				<fl::WatermarkTolerance as frame_support::traits::Get<u32>>::get,
			)?,
		})
	}
}

/// A governed `Fl` parameter: the stored value at `at`, or the runtime's default.
fn fl_parameter<V>(
	client: &Client,
	at: Option<H256>,
	key: blade_fl_runtime::dynamic_params::fl::ParametersKey,
	value: impl Fn(blade_fl_runtime::dynamic_params::fl::ParametersValue) -> Option<V>,
	default: impl FnOnce() -> V,
) -> Result<V> {
	use ::codec::Decode;
	use blade_fl_runtime::configs::{RuntimeParametersKey, RuntimeParametersValue};
	let storage_key = pallet_parameters::Parameters::<blade_fl_runtime::Runtime>::hashed_key_for(
		RuntimeParametersKey::Fl(key),
	);
	if let Some(raw) = client.storage(&storage_key, at)? {
		if let Ok(RuntimeParametersValue::Fl(stored)) = Decode::decode(&mut &raw[..]) {
			if let Some(v) = value(stored) {
				return Ok(v);
			}
		}
	}
	Ok(sp_io::TestExternalities::default().execute_with(default))
}
