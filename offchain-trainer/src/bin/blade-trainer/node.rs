//! Subcommands that talk to a node: `publish-task`, `cancel-task`, `status`, `run`,
//! `export-model`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use blade_fl_primitives::blob::Codec;
use blade_trainer::{
	chain::{self, Backoff, Client, FlCall, TaskSpec, UNIT},
	registry::{self, DatasetName, ModelName},
};
use clap::{Args, ValueEnum};
use sp_core::H256;
use sp_runtime::Percent;

/// How to reach the node.
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
	/// Node RPC endpoint: ws:// or wss:// follows the chain by subscription (new heads,
	/// transaction status); http:// or https:// polls every 500 ms instead (same port).
	/// Several nodes of the same chain, comma-separated, give failover: when the node in
	/// use stops answering the next one takes over at once (`ws://a:9944,ws://b:9944`).
	#[arg(long, env = "BLADE_NODE_URL", default_value = "ws://127.0.0.1:9944")]
	pub url: String,
	/// Blocks a transaction (and the state acted on) must be buried under before it
	/// counts. Proof of work has no finality: raise this on a public network.
	#[arg(long, default_value_t = 3)]
	pub confirmations: u32,
	/// Give up on a node that stays unreachable this long (seconds); it is retried with
	/// exponential backoff meanwhile.
	#[arg(long, default_value_t = 300)]
	pub retry_for: u64,
	/// Longest wait for one transaction's confirmation (seconds).
	#[arg(long, default_value_t = 600)]
	pub tx_timeout: u64,
}

impl NodeArgs {
	fn backoff(&self) -> Backoff {
		Backoff {
			give_up_after: std::time::Duration::from_secs(self.retry_for),
			..Backoff::default()
		}
	}

	fn configure(&self, mut client: Client) -> Client {
		client.confirmations = self.confirmations;
		client.timeout = std::time::Duration::from_secs(self.tx_timeout);
		client
	}

	/// A signing client.
	pub fn signer(&self, suri: &str) -> anyhow::Result<Client> {
		let client = Client::connect(&self.url, suri, self.backoff())
			.with_context(|| format!("connecting to {}", self.url))?;
		tracing::info!(account = %client.account(), url = %self.url, "connected");
		Ok(self.configure(client))
	}

	/// A signing client for a loaded key.
	#[cfg(feature = "torch")]
	pub fn signer_pair(&self, pair: sp_core::sr25519::Pair) -> anyhow::Result<Client> {
		let client = Client::connect_pair(&self.url, pair, self.backoff())
			.with_context(|| format!("connecting to {}", self.url))?;
		tracing::info!(account = %client.account(), url = %self.url, "connected");
		Ok(self.configure(client))
	}

	/// The connection settings a service opens one client per task with.
	#[cfg(feature = "torch")]
	pub fn connection(&self) -> blade_trainer::chain::Connection {
		blade_trainer::chain::Connection {
			url: self.url.clone(),
			backoff: self.backoff(),
			confirmations: self.confirmations,
			timeout: std::time::Duration::from_secs(self.tx_timeout),
		}
	}

	/// A read-only client.
	pub fn reader(&self) -> anyhow::Result<Client> {
		let client = Client::read_only(&self.url, self.backoff())
			.with_context(|| format!("connecting to {}", self.url))?;
		Ok(self.configure(client))
	}
}

/// Codec of update blobs.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CodecArg {
	/// 32-bit floats (exact).
	F32,
	/// 16-bit floats (half the size).
	F16,
	/// 8-bit integers with a per-blob scale (a quarter of the size).
	Int8,
}

/// Aggregation rule of a task.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TaskRule {
	/// Mean weighted by samples x reputation.
	Fedavg,
	/// Coordinate-wise median.
	Median,
	/// Trimmed mean (`--trim-percent`).
	TrimmedMean,
	/// Multi-Krum (`--byzantine`).
	MultiKrum,
}

/// `publish-task` arguments.
#[derive(Args, Debug)]
pub struct PublishArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	/// Publisher's secret URI (dev accounts: //Alice ...).
	#[arg(long, env = "BLADE_SURI")]
	pub suri: String,
	/// Model.
	#[arg(long, value_enum, default_value_t = ModelName::Mlp32)]
	pub model: ModelName,
	/// Data set.
	#[arg(long, value_enum, default_value_t = DatasetName::FashionMnist)]
	pub dataset: DatasetName,
	/// Directory of the data set, hashed into the spec's validation hash (default for
	/// Fashion-MNIST: Debian's package).
	#[arg(long)]
	pub data_dir: Option<PathBuf>,
	/// Training rounds K.
	#[arg(long, default_value_t = 3)]
	pub rounds: u32,
	/// Trainers wanted N.
	#[arg(long, default_value_t = 3)]
	pub trainers: u32,
	/// Fewest trainers with which the task goes on.
	#[arg(long, default_value_t = 2)]
	pub min_trainers: u32,
	/// Fewest samples a bidder must declare.
	#[arg(long, default_value_t = 100)]
	pub min_samples: u64,
	/// Most samples a bidder may declare and be paid for (the chain cannot check a claim:
	/// the cap bounds what a liar can win; see docs/security.md).
	#[arg(long, default_value_t = 60_000)]
	pub max_samples: u64,
	/// Codec of the updates.
	#[arg(long, value_enum, default_value_t = CodecArg::F32)]
	pub codec: CodecArg,
	/// Aggregation rule.
	#[arg(long, value_enum, default_value_t = TaskRule::Fedavg)]
	pub rule: TaskRule,
	/// Trimmed mean: percent dropped at each end.
	#[arg(long, default_value_t = 10)]
	pub trim_percent: u8,
	/// Multi-Krum: assumed Byzantine trainers.
	#[arg(long, default_value_t = 1)]
	pub byzantine: u8,
	/// Privacy floor: the largest total epsilon each trainer may spend on its data over the
	/// whole task (trainers calibrate their noise to it and refuse a task they cannot
	/// meet). Omit for a task without a floor.
	#[arg(long)]
	pub max_epsilon: Option<f64>,
	/// The delta of the privacy floor.
	#[arg(long, default_value_t = 1e-5)]
	pub delta: f64,
	/// Update-to-watermark power ratio in dB (the paper: 9, 6 or 3).
	#[arg(long, default_value_t = 6.0)]
	pub snr_db: f64,
	/// Largest L2 norm of an update, watermark included: the chain refuses larger ones and
	/// trainers clip to it.
	#[arg(long, default_value_t = 100.0)]
	pub max_norm: f64,
	/// Bidding phase, blocks.
	#[arg(long, default_value_t = 20)]
	pub bidding: u32,
	/// Submit phase, blocks.
	#[arg(long, default_value_t = 30)]
	pub submit: u32,
	/// Reveal phase, blocks.
	#[arg(long, default_value_t = 15)]
	pub reveal: u32,
	/// Aggregate phase, blocks.
	#[arg(long, default_value_t = 15)]
	pub aggregate: u32,
	/// Reward escrowed, in BLADE.
	#[arg(long, default_value_t = 100)]
	pub reward: u64,
	/// Stake per bidder, in BLADE.
	#[arg(long, default_value_t = 10)]
	pub stake: u64,
}

/// Blake2-256 of a data set's test split (labels, then pixels as little-endian `f32`).
fn validation_hash(dataset: u32, dir: &std::path::Path) -> anyhow::Result<H256> {
	let (_, test) = registry::load(dataset, dir)
		.with_context(|| format!("loading data set {dataset} from {}", dir.display()))?;
	let mut bytes = test.labels.clone();
	bytes.extend(test.pixels.iter().flat_map(|p| p.to_le_bytes()));
	Ok(H256(sp_crypto_hashing::blake2_256(&bytes)))
}

pub fn publish(args: PublishArgs) -> anyhow::Result<()> {
	let (model, dataset) = (args.model.id(), args.dataset.id());
	let param_count = registry::param_count(model, dataset)?;
	let dir = match (&args.data_dir, dataset) {
		(Some(dir), _) => dir.clone(),
		(None, 1) => PathBuf::from(blade_trainer::data::DEBIAN_FASHION_MNIST_DIR),
		(None, _) => bail!("--data-dir is needed for data set {:?}", args.dataset),
	};
	let validation_hash = validation_hash(dataset, &dir)?;
	let spec = TaskSpec {
		model_id: model,
		param_count,
		dataset_id: dataset,
		validation_hash,
		rounds: args.rounds,
		trainers_wanted: args.trainers,
		trainers_min: args.min_trainers,
		min_samples: args.min_samples,
		max_samples: args.max_samples,
		codec: match args.codec {
			CodecArg::F32 => Codec::F32,
			CodecArg::F16 => Codec::F16,
			CodecArg::Int8 => Codec::Int8,
		},
		rule: match args.rule {
			TaskRule::Fedavg => pallet_fl_tasks::AggregationRule::FedAvg,
			TaskRule::Median => pallet_fl_tasks::AggregationRule::CoordinateMedian,
			TaskRule::TrimmedMean => pallet_fl_tasks::AggregationRule::TrimmedMean {
				trim: Percent::from_percent(args.trim_percent),
			},
			TaskRule::MultiKrum => pallet_fl_tasks::AggregationRule::MultiKrum {
				byzantine: args.byzantine,
			},
		},
		privacy: args.max_epsilon.map(|e| pallet_fl_tasks::PrivacyFloor {
			max_epsilon_milli: (e * 1000.0).round() as u32,
			delta: sp_runtime::Perbill::from_float(args.delta),
		}),
		pn_snr_centi_db: (args.snr_db * 100.0).round() as u32,
		max_norm_milli: (args.max_norm * 1000.0)
			.round()
			.clamp(1.0, f64::from(u32::MAX)) as u32,
		phases: pallet_fl_tasks::PhaseLengths {
			bidding: args.bidding,
			submit: args.submit,
			reveal: args.reveal,
			aggregate: args.aggregate,
		},
		reward: u128::from(args.reward) * UNIT,
		min_stake: u128::from(args.stake) * UNIT,
	};
	let mut client = args.node.signer(&args.suri)?;
	let confirmed = client
		.fl(FlCall::publish_task { spec })
		.context("publishing the task")?;
	let task = chain::fl_events(&confirmed.events)
		.find_map(|e| match e {
			chain::FlEvent::TaskPublished {
				task, bidding_end, ..
			} => Some((*task, *bidding_end)),
			_ => None,
		})
		.context("no TaskPublished event")?;
	tracing::info!(
		task = task.0,
		bidding_end = task.1,
		params = param_count,
		"task published"
	);
	println!("{}", task.0);
	Ok(())
}

/// `fund` arguments.
#[derive(Args, Debug)]
pub struct FundArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	/// Payer's secret URI.
	#[arg(long, env = "BLADE_SURI")]
	pub suri: String,
	/// BLADE sent to each recipient.
	#[arg(long)]
	pub amount: u64,
	/// Recipients: SS58 addresses, or secret URIs (`//Trainer7`) whose accounts are meant.
	#[arg(required = true)]
	pub to: Vec<String>,
}

/// The account of `who`: an SS58 address, or the public key of a secret URI.
pub fn account_of(who: &str) -> anyhow::Result<chain::AccountId> {
	use sp_core::crypto::{Pair as _, Ss58Codec};
	if let Ok(account) = chain::AccountId::from_ss58check(who) {
		return Ok(account);
	}
	let pair = sp_core::sr25519::Pair::from_string(who, None).map_err(|e| {
		anyhow::anyhow!("{who:?} is neither an SS58 address nor a secret URI: {e:?}")
	})?;
	Ok(pair.public().into())
}

pub fn fund(args: FundArgs) -> anyhow::Result<()> {
	let mut client = args.node.signer(&args.suri)?;
	let amount = chain::Balance::from(args.amount).saturating_mul(UNIT);
	let mut sent = Vec::new();
	for who in &args.to {
		let dest = account_of(who)?;
		let call = chain::RuntimeCall::Balances(pallet_balances::Call::transfer_keep_alive {
			dest: dest.clone().into(),
			value: amount,
		});
		let pending = client
			.submit(call)
			.with_context(|| format!("sending {} BLADE to {dest}", args.amount))?;
		sent.push((dest, pending));
	}
	for (dest, pending) in sent {
		let confirmed = client
			.confirm(pending)
			.with_context(|| format!("confirming the transfer to {dest}"))?;
		if let Some(error) = confirmed.failure() {
			bail!("the transfer to {dest} failed: {error}");
		}
		println!(
			"{dest}: +{} BLADE (block {})",
			args.amount, confirmed.block_number
		);
	}
	Ok(())
}

pub fn cancel(node: NodeArgs, suri: &str, task: u64) -> anyhow::Result<()> {
	let mut client = node.signer(suri)?;
	client
		.fl(FlCall::cancel_task { task })
		.with_context(|| format!("cancelling task {task}"))?;
	println!("task {task} cancelled; it settles at the next block");
	Ok(())
}

fn blade(amount: chain::Balance) -> String {
	format!("{:.4}", amount as f64 / UNIT as f64)
}

/// The `status` report as JSON (planck amounts as decimal strings: they exceed 2^53).
fn status_json(
	client: &Client,
	best: u32,
	confirmed: u32,
	head: sp_core::H256,
	ids: &[u64],
	accounts: &[chain::AccountId],
) -> anyhow::Result<serde_json::Value> {
	use serde_json::json;
	let percent = |p: sp_runtime::Perbill| p.deconstruct() as f64 / 1e7;
	let mut tasks = Vec::new();
	for &id in ids {
		let Some(view) = client.task(id, Some(head))? else {
			continue;
		};
		let participants = client.participants(id, Some(head))?;
		let mut trainers = Vec::new();
		for (i, who) in view.trainers.iter().enumerate() {
			let bit = 1u64 << i;
			let p = participants.iter().find(|(a, _)| a == who).map(|(_, p)| p);
			trainers.push(json!({
				"index": i,
				"account": who.to_string(),
				"samples": p.map_or(0, |p| p.samples),
				"stake": p.map_or(0, |p| p.stake).to_string(),
				"earned": p.map_or(0, |p| p.earned).to_string(),
				"reputation_percent": percent(client.reputation(who, Some(head))?),
				"submitted": view.submitted & bit != 0,
				"revealed": view.revealed & bit != 0,
				"excluded": view.lazy & bit != 0,
			}));
		}
		let mut models = Vec::new();
		for round in 0..=view.round {
			if let Some(gm) = client.global_model(id, round, Some(head))? {
				models.push(json!({
					"round": round,
					"hash": format!("{:?}", gm.hash),
					"aggregator": gm.aggregator.to_string(),
					"published": gm.published.map(|(block, index)| json!({"block": block, "index": index})),
				}));
			}
		}
		tasks.push(json!({
			"id": id,
			"phase": format!("{:?}", view.phase),
			"round": view.round,
			"rounds": view.spec.rounds,
			"attempt": view.attempt,
			"phase_end": view.phase_end,
			"publisher": view.publisher.to_string(),
			"escrow": view.escrow.to_string(),
			"reward": view.spec.reward.to_string(),
			"model": view.spec.model_id,
			"dataset": view.spec.dataset_id,
			"params": view.spec.param_count,
			"bids": view.bids,
			"trainers": trainers,
			"decided": view.decided.map(|(hash, included)| json!({"hash": format!("{hash:?}"), "included": included})),
			"global_models": models,
		}));
	}
	let mut balances = Vec::new();
	for who in accounts {
		let info = client.account_info(who, Some(head))?;
		balances.push(json!({
			"account": who.to_string(),
			"free": info.free.to_string(),
			"held": info.held.to_string(),
			"reputation_percent": percent(client.reputation(who, Some(head))?),
		}));
	}
	Ok(json!({
		"best": best,
		"confirmed": confirmed,
		"confirmed_hash": format!("{head:?}"),
		"tasks": tasks,
		"accounts": balances,
	}))
}

pub fn status(
	node: NodeArgs,
	task: Option<u64>,
	accounts: Vec<String>,
	as_json: bool,
) -> anyhow::Result<()> {
	let client = node.reader()?;
	let best = client.best_number()?;
	let (confirmed, head) = client.confirmed_head()?;
	// The asked task, or every active one.
	let ids: Vec<u64> = match task {
		Some(t) => vec![t],
		None => client
			.active_tasks(Some(head))?
			.into_iter()
			.map(|(t, _)| t)
			.collect(),
	};
	if as_json {
		let accounts = accounts
			.iter()
			.map(|text| {
				text.parse()
					.map_err(|e| anyhow::anyhow!("{text:?} is not an SS58 address: {e:?}"))
			})
			.collect::<anyhow::Result<Vec<chain::AccountId>>>()?;
		let value = status_json(&client, best, confirmed, head, &ids, &accounts)?;
		println!("{}", serde_json::to_string_pretty(&value)?);
		return Ok(());
	}
	println!(
		"best block {best}; confirmed head {confirmed} ({} confirmations)",
		node.confirmations
	);
	if ids.is_empty() {
		println!("no active tasks");
	}
	let mut watch: Vec<chain::AccountId> = Vec::new();
	for id in ids {
		let Some(view) = client.task(id, Some(head))? else {
			println!("task {id}: settled (or never published)");
			continue;
		};
		println!(
			"task {id}: {:?}, round {}/{} (attempt {}), phase ends at block {}; publisher {}; escrow {} BLADE; model {} data set {} ({} parameters), {:?}, SNR {} dB, {}",
			view.phase,
			view.round + 1,
			view.spec.rounds,
			view.attempt,
			view.phase_end,
			view.publisher,
			blade(view.escrow),
			view.spec.model_id,
			view.spec.dataset_id,
			view.spec.param_count,
			view.spec.rule,
			f64::from(view.spec.pn_snr_centi_db) / 100.0,
			blade_trainer::privacy::task::floor_text(view.spec.privacy),
		);
		watch.push(view.publisher.clone());
		if view.phase == pallet_fl_tasks::Phase::Bidding {
			for (who, bid) in client.bids(id, Some(head))? {
				println!(
					"  bid  {who}  samples {}  price {}  capability {}",
					bid.samples,
					blade(bid.price),
					bid.capability
				);
				watch.push(who);
			}
		}
		let participants = client.participants(id, Some(head))?;
		let updates = client.updates(id, Some(head))?;
		if !view.trainers.is_empty() {
			println!("  #  trainer                                            samples   stake     earned    reputation  submitted revealed lazy");
		}
		for (i, who) in view.trainers.iter().enumerate() {
			let bit = 1u64 << i;
			let p = participants.iter().find(|(a, _)| a == who).map(|(_, p)| p);
			let flag = |mask: u64| if mask & bit != 0 { "yes" } else { "-" };
			println!(
				"  {i:<2} {who:<50} {:>7}  {:>8}  {:>8}  {:>9.3}%  {:<9} {:<8} {}",
				p.map_or(0, |p| p.samples),
				blade(p.map_or(0, |p| p.stake)),
				blade(p.map_or(0, |p| p.earned)),
				client.reputation(who, Some(head))?.deconstruct() as f64 / 1e7,
				flag(view.submitted),
				flag(view.revealed),
				flag(view.lazy)
			);
			watch.push(who.clone());
		}
		for (who, u) in updates {
			println!(
				"  update {who}: {} bytes at block {} #{}, hash {:?}{}",
				u.size,
				u.block,
				u.extrinsic_index,
				u.hash,
				if u.seed.is_some() {
					", seed revealed"
				} else {
					""
				}
			);
		}
		for tally in client.tallies(id, Some(head))? {
			println!(
				"  vote {:?} included {:#b}: {} votes (first {})",
				tally.hash, tally.included, tally.votes, tally.first
			);
		}
		for round in 0..=view.round {
			if let Some(gm) = client.global_model(id, round, Some(head))? {
				println!(
					"  global model of round {}: {:?} by {}, {}",
					round + 1,
					gm.hash,
					gm.aggregator,
					match gm.published {
						Some((b, i)) => format!("published at block {b} #{i}"),
						None => "not yet published".into(),
					}
				);
			}
		}
	}
	for text in accounts {
		watch.push(
			text.parse()
				.map_err(|e| anyhow::anyhow!("{text:?} is not an SS58 address: {e:?}"))?,
		);
	}
	watch.sort();
	watch.dedup();
	if !watch.is_empty() {
		println!("accounts (free / on hold, BLADE; reputation):");
	}
	for who in watch {
		let info = client.account_info(&who, Some(head))?;
		println!(
			"  {who}  {} / {}  {:.3}%",
			blade(info.free),
			blade(info.held),
			client.reputation(&who, Some(head))?.deconstruct() as f64 / 1e7
		);
	}
	Ok(())
}
