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
//!
//! Layout: this module holds the step loop (`Runner::run`, `Runner::step`) and what every
//! step shares (global models, evaluation); [`config`] the run's settings and outcome;
//! `local` this trainer's own work (bid, train -> behaviour -> privacy -> watermark,
//! submit, reveal); `verify` everyone else's updates and the lazy reports; `aggregate` the
//! screen, the aggregate, the vote and publication; [`params`] the runtime parameters read.

mod aggregate;
pub mod baseline;
pub mod config;
mod local;
pub mod params;
pub(crate) mod pipeline;
mod verify;

pub use config::{Noise, Outcome, PrivacyConfig, RunConfig};
pub use params::FlParams;

use std::{
	collections::{HashMap, HashSet},
	time::{Duration, Instant},
};

use blade_fl_primitives::{
	blob::Codec,
	pn::{round_key, Seed},
	verdict::contribution_weight,
};
use rand::SeedableRng;
use sp_core::H256;

use crate::{
	aggregation::Rule,
	behaviour::{self, Behaviour},
	chain::{self, AccountId, Client, FlCall, TaskView},
	codec,
	data::Dataset,
	error::{invalid, Error, Result},
	model::Model,
	partition::partition,
	privacy::{self, task::TaskPlan, Accountant},
	registry, signature,
	state::{self, Store, TaskState},
	train::{self, Tensors, TrainConfig},
};

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

/// How long a trainer waits for a task it is told to join to appear on its node.
const TASK_APPEAR_WAIT: Duration = Duration::from_secs(30);

/// Target of the runner's progress events (see `Runner::progress`).
pub const PROGRESS_TARGET: &str = "blade_trainer::progress";

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
	/// The privacy plan for the task (`None`: no noise).
	privacy: Option<TaskPlan>,
	/// This round's downloaded update blobs and their values (`None`: unusable), by hash.
	updates: HashMap<H256, (Vec<u8>, Option<Vec<f32>>)>,
	/// (update hash, key) pairs already tested this round (a key of `[0; 32]`: the test
	/// against all victims together).
	checked: HashSet<(H256, Seed)>,
	/// Proven accusations waiting for their turn to be reported (see
	/// `verify::report_delay`), by report key.
	queued: std::collections::BTreeMap<String, verify::Queued>,
	/// Reports sent and not yet confirmed.
	in_flight: Vec<chain::Watch>,
	/// (round, attempt) the caches above belong to.
	cache_round: (u32, u8),
	/// Block number of the confirmed head being acted on.
	head_number: u32,
	/// The global model at the start of a round, by round.
	globals: HashMap<u32, Vec<f32>>,
	/// The round-0 model every trainer starts from.
	init: Vec<f32>,
	/// Where this round's wall time went.
	split: RoundSplit,
	outcome: Outcome,
	last_phase: Option<(chain::RoundIndex, pallet_fl_tasks::Phase)>,
}

/// Where one trainer's wall time in a round went: local training, waiting for blocks
/// (phases, inclusions and confirmations: [`Client::waited`]) and the rest, its own client
/// work (verification, aggregation, encoding, signing, RPC). Logged as `round time split`
/// when the round ends; `watch` reports the median trainer.
#[derive(Clone, Copy, Debug)]
struct RoundSplit {
	round: Option<u32>,
	started: Instant,
	waited_at_start: Duration,
	training: f64,
}

impl RoundSplit {
	fn new(waited: Duration) -> Self {
		RoundSplit {
			round: None,
			started: Instant::now(),
			waited_at_start: waited,
			training: 0.0,
		}
	}

	/// Account for being in `round` now (`waited`: the client's total wait so far): log
	/// the split and start over if a new round began.
	fn enter(&mut self, round: Option<u32>, waited: Duration) {
		if self.round == round {
			return;
		}
		if let Some(ended) = self.round {
			let wall = self.started.elapsed().as_secs_f64();
			let waiting = waited.saturating_sub(self.waited_at_start).as_secs_f64();
			tracing::info!(
				round = ended,
				training = centi(self.training),
				client = centi((wall - waiting - self.training).max(0.0)),
				waiting = centi(waiting),
				"round time split"
			);
		}
		*self = RoundSplit {
			round,
			..RoundSplit::new(waited)
		};
	}
}

/// `x` rounded to hundredths (for logs).
fn centi(x: f64) -> f64 {
	(x * 100.0).round() / 100.0
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

/// `rule` for `count` updates: Multi-Krum assumes at most as many Byzantine updates as
/// it can tolerate among those the screen kept (`2f + 2 < count`), and falls back to
/// FedAvg below three.
fn fit_rule(rule: Rule, count: usize) -> Rule {
	match rule {
		Rule::MultiKrum { byzantine } if count >= 3 => Rule::MultiKrum {
			byzantine: byzantine.min((count - 3) / 2),
		},
		Rule::MultiKrum { .. } => Rule::FedAvg,
		other => other,
	}
}

fn seed_from_hex(text: &str) -> Result<Seed> {
	let bytes = hex::decode(text).map_err(|e| invalid(format!("seed in state: {e}")))?;
	bytes
		.try_into()
		.map_err(|_| invalid("seed in state is not 32 bytes"))
}

/// Indices of this trainer's samples in `train_set`: its shard of the configured split,
/// cut to `max_samples`.
fn local_indices(train_set: &Dataset, cfg: &RunConfig) -> Result<Vec<usize>> {
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
	let mut mine = parts
		.get(shard)
		.cloned()
		.ok_or_else(|| invalid(format!("shard {shard} of {shards}")))?;
	if let Some(max) = cfg.max_samples {
		mine.truncate(max);
	}
	Ok(mine)
}

/// Why this trainer, configured by `cfg` with `samples` local samples, refuses a task of
/// `spec` for privacy (it cannot meet the task's floor), or `None`.
pub fn privacy_refusal(cfg: &RunConfig, spec: &chain::TaskSpec, samples: usize) -> Option<String> {
	match pipeline::privacy_plan(&cfg.privacy, &cfg.train, spec, samples) {
		Ok(_) => None,
		Err(e) => Some(e.to_string()),
	}
}

/// How many samples this trainer holds for data set `dataset_id` under `cfg` (what it
/// would declare in a bid, before the task's cap).
pub fn local_samples(cfg: &RunConfig, dataset_id: u32) -> Result<u64> {
	let (train_set, _) = registry::load(dataset_id, &cfg.data_dir)?;
	Ok(local_indices(&train_set, cfg)?.len() as u64)
}
impl<'a> Runner<'a> {
	fn new(client: &'a mut Client, store: &'a Store, cfg: &'a RunConfig) -> Result<Self> {
		// A task published moments ago may not have reached this node yet (another node
		// mined it): give it a few blocks before calling it unknown.
		let mut view = client.task(cfg.task, None)?;
		let started = Instant::now();
		while view.is_none() && started.elapsed() < TASK_APPEAR_WAIT {
			client.wait_new_head(Duration::from_secs(5))?;
			view = client.task(cfg.task, None)?;
		}
		let view = view.ok_or_else(|| {
			invalid(format!(
				"task {} does not exist or has settled (waited {} s for it)",
				cfg.task,
				TASK_APPEAR_WAIT.as_secs()
			))
		})?;
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
		let mine = local_indices(&train_set, cfg)?;
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
		// Before anything is sent: a trainer that cannot meet the task's privacy floor
		// refuses it here.
		let privacy = pipeline::privacy_plan(&cfg.privacy, &cfg.train, &spec, local.len())?;
		let mut state = store.load(cfg.task)?;
		let accountant = pipeline::resume_privacy(&mut state, privacy.as_ref())?;

		let balance = client.account_info(&client.account().clone(), None)?.free;
		Ok(Runner {
			state,
			spec,
			samples: local.len() as u64,
			train: train::to_tensors(&local, cfg.device)?,
			test: train::to_tensors(&test, cfg.device)?,
			model,
			rng: rand_chacha::ChaCha12Rng::from_seed(state::fresh_seed()),
			accountant,
			privacy,
			updates: HashMap::new(),
			checked: HashSet::new(),
			queued: Default::default(),
			in_flight: Vec::new(),
			cache_round: (0, 0),
			head_number: 0,
			globals: HashMap::new(),
			init,
			split: RoundSplit::new(Duration::ZERO),
			outcome: Outcome {
				balance: (balance, balance),
				..Default::default()
			},
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
				// Published moments ago and not yet `confirmations` deep: wait for it rather
				// than taking it for settled (a trainer started right after publication).
				None if self.last_phase.is_none()
					&& self.client.task(self.cfg.task, None)?.is_some() =>
				{
					Step::Wait
				}
				None => Step::Done,
				Some(view) => {
					self.head_number = number;
					if view.phase != pallet_fl_tasks::Phase::Bidding {
						self.split.enter(Some(view.round), self.client.waited());
					}
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
		self.split.enter(None, self.client.waited());
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
		if let (true, Some(plan)) = (self.accountant.releases() > 0, &self.privacy) {
			let delta = plan.budget.delta;
			let epsilon = plan.spent(&self.accountant);
			self.outcome.privacy = Some((epsilon, delta));
			crate::metrics::get()
				.privacy_epsilon
				.with_label_values(&[&self.cfg.task.to_string()])
				.set(epsilon);
		}
		let (before, after) = self.outcome.balance;
		crate::metrics::get()
			.balance_change
			.with_label_values(&[&self.cfg.task.to_string()])
			.set((after as f64 - before as f64) / chain::UNIT as f64);
		Ok(self.outcome)
	}

	/// Say what the runner is doing now, for a progress display: a `TRACE` event of target
	/// [`PROGRESS_TARGET`] with fields `task` and `message` (the binary draws a spinner
	/// from these; the library draws nothing).
	fn progress(&self, message: String) {
		tracing::trace!(target: PROGRESS_TARGET, task = self.cfg.task, "{message}");
	}

	fn show(&mut self, number: u32, view: &TaskView) {
		crate::metrics::get().head.set(i64::from(number));
		let key = (view.round, view.phase);
		if self.last_phase != Some(key) {
			tracing::info!(task = self.cfg.task, round = view.round, attempt = view.attempt, phase = ?view.phase, phase_end = view.phase_end, "phase");
			self.last_phase = Some(key);
		}
		self.progress(format!(
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
			self.client
				.wait_new_head(deadline.saturating_duration_since(Instant::now()))?;
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
			self.queued.clear();
			self.cache_round = (view.round, view.attempt);
		}
		let bit = 1u64 << i;
		if view.lazy & bit != 0 {
			tracing::warn!(
				task = self.cfg.task,
				"excluded from the task (a proven copy or a withheld aggregate)"
			);
			self.outcome.excluded = true;
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
				// Vote only on the final eligible set: not while a proven copy waits to be
				// reported or a report to be confirmed.
				if !self.queued.is_empty() || !self.in_flight.is_empty() {
					return Ok(Step::Wait);
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
}
