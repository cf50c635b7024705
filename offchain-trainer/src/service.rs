//! The long-running trainer (`blade-trainer serve`): start it once, it serves.
//!
//! Every confirmed block it lists the chain's active tasks. A task it has a state file for
//! (it bid on it before a restart) is resumed at once; a new task in bidding is put to the
//! [`policy`](crate::policy) and, when the policy says so, served by its own thread running
//! the same [`runner`] as `blade-trainer run --task N` (bid, train, submit, reveal, verify,
//! report, aggregate, vote, publish, settle), with its own chain client signing for the
//! same account. Tasks are served concurrently up to the policy's `max_tasks`; the state
//! directory is shared (one file per task), so a killed service restarted with the same
//! directory resumes every task it was serving.

use std::{
	collections::{BTreeMap, HashMap, HashSet},
	path::PathBuf,
	sync::atomic::{AtomicBool, Ordering},
	thread::JoinHandle,
	time::Duration,
};

use sp_core::sr25519;

use crate::{
	chain::{Connection, TaskId},
	error::{invalid, Result},
	metrics,
	policy::{decide, Decision, Policy, Situation, Skip},
	runner::{self, Outcome, RunConfig},
	state::Store,
};

/// Failed runs of one task before the service gives up on it.
const MAX_FAILURES: u32 = 3;

/// What `serve` needs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
	/// The node.
	pub connection: Connection,
	/// State directory (seeds, blobs, progress per task).
	pub state_dir: PathBuf,
	/// How each task is trained (`task` is set per task).
	pub run: RunConfig,
	/// When to bid.
	pub policy: Policy,
	/// Pause between looks at the chain.
	pub poll: Duration,
}

/// A short label of a skip reason (a metric label).
fn label(skip: &Skip) -> &'static str {
	match skip {
		Skip::NotBidding => "not_bidding",
		Skip::Busy { .. } => "busy",
		Skip::Dataset(_) => "dataset",
		Skip::Model(_) => "model",
		Skip::TooFewSamples { .. } => "samples",
		Skip::Underpaid { .. } => "underpaid",
		Skip::StakeTooHigh { .. } => "stake",
		Skip::Funds { .. } => "funds",
		Skip::Privacy { .. } => "privacy",
		Skip::PrivacyFloor(_) => "privacy_floor",
		Skip::PhaseTooShort { .. } => "phases",
		Skip::NoTimeToTrain { .. } => "time",
	}
}

/// Serve tasks until `stop` is set; `done` is called with each task's outcome.
pub fn serve(
	cfg: &ServiceConfig,
	pair: sr25519::Pair,
	stop: &AtomicBool,
	mut done: impl FnMut(TaskId, &Outcome),
) -> Result<()> {
	let reader = cfg.connection.connect(pair.clone())?;
	let me = reader.account().clone();
	let store = Store::open(&cfg.state_dir)?;
	tracing::info!(account = %me, policy = ?cfg.policy, "serving");
	let mut serving: BTreeMap<TaskId, JoinHandle<Result<Outcome>>> = BTreeMap::new();
	// Tasks finished or refused for good; the last reason logged per task.
	let mut finished: HashSet<TaskId> = HashSet::new();
	let mut logged: HashMap<TaskId, Skip> = HashMap::new();
	let mut failures: HashMap<TaskId, u32> = HashMap::new();
	let mut samples: HashMap<u32, u64> = HashMap::new();
	let mut last_head = None;
	while !stop.load(Ordering::Relaxed) {
		// Collect finished tasks.
		let ended: Vec<TaskId> = serving
			.iter()
			.filter(|(_, h)| h.is_finished())
			.map(|(t, _)| *t)
			.collect();
		for task in ended {
			let Some(handle) = serving.remove(&task) else {
				continue;
			};
			match handle.join() {
				Ok(Ok(outcome)) => {
					tracing::info!(
						task,
						selected = outcome.selected,
						submitted = outcome.submitted,
						"task finished"
					);
					metrics::get().tasks_served.inc();
					finished.insert(task);
					done(task, &outcome);
				}
				Ok(Err(e)) => {
					let count = failures.entry(task).or_default();
					*count += 1;
					tracing::error!(task, error = %e, failures = *count, "serving the task failed");
					if *count >= MAX_FAILURES {
						tracing::error!(
							task,
							"giving up on the task after {MAX_FAILURES} failures"
						);
						finished.insert(task);
					}
				}
				Err(_) => {
					tracing::error!(task, "the task's thread panicked; giving up on it");
					finished.insert(task);
				}
			}
		}
		metrics::get().tasks_active.set(serving.len() as i64);

		let (number, head) = reader.confirmed_head()?;
		if last_head == Some(head) {
			// A new head (subscribed) or one poll interval, whichever comes first: finished
			// task threads are also collected at this pace.
			reader.wait_new_head(cfg.poll)?;
			continue;
		}
		last_head = Some(head);
		for (task, _) in reader.active_tasks(Some(head))? {
			if serving.contains_key(&task) || finished.contains(&task) {
				continue;
			}
			let Some(view) = reader.task(task, Some(head))? else {
				continue;
			};
			if store.has(task) {
				tracing::info!(task, "resuming the task from the state directory");
			} else {
				let dataset = view.spec.dataset_id;
				let have = match samples.get(&dataset) {
					Some(n) => *n,
					None => {
						let n = if cfg.policy.datasets.contains(&dataset) {
							runner::local_samples(&cfg.run, dataset).unwrap_or_else(|e| {
								tracing::warn!(dataset, error = %e, "no usable local data for the data set");
								0
							})
						} else {
							0
						};
						samples.insert(dataset, n);
						n
					}
				};
				let free = reader.account_info(&me, Some(head))?.free;
				let situation = Situation {
					samples: have,
					free,
					serving: serving.len(),
				};
				let mut decision = decide(&cfg.policy, &view, situation);
				// The policy would bid: can this trainer meet the task's privacy floor?
				if let Decision::Bid { .. } = decision {
					if let Some(why) = runner::privacy_refusal(&cfg.run, &view.spec, have as usize)
					{
						decision = Decision::Skip(Skip::PrivacyFloor(why));
					}
				}
				match decision {
					Decision::Skip(why) => {
						if logged.get(&task) != Some(&why) {
							tracing::info!(task, block = number, reason = %why, "not bidding");
							metrics::get()
								.skipped
								.with_label_values(&[label(&why)])
								.inc();
							logged.insert(task, why.clone());
						}
						// Busy or short of funds may change while bidding lasts.
						if !matches!(why, Skip::Busy { .. } | Skip::Funds { .. }) {
							finished.insert(task);
						}
						continue;
					}
					Decision::Bid { samples, stake } => {
						tracing::info!(task, block = number, samples, stake, "bidding by policy");
						metrics::get().bids.inc();
					}
				}
			}
			let run = RunConfig {
				task,
				..cfg.run.clone()
			};
			let (connection, pair, dir) =
				(cfg.connection.clone(), pair.clone(), cfg.state_dir.clone());
			let handle = std::thread::Builder::new()
				.name(format!("task-{task}"))
				.spawn(move || {
					let mut client = connection.connect(pair)?;
					let store = Store::open(dir)?;
					runner::run(&mut client, &store, &run)
				})
				.map_err(|e| invalid(format!("starting the thread of task {task}: {e}")))?;
			serving.insert(task, handle);
		}
	}
	Ok(())
}
