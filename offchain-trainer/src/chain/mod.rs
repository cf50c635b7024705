//! Chain client: typed calls, state reads and blob downloads against a BLADE-FL node.
//!
//! **Types.** The client uses the runtime's own Rust types (`blade-fl-runtime` compiled
//! natively), not subxt with a metadata file: trainer and runtime live in one workspace, so
//! every call, event, storage value and runtime-API answer is checked by the compiler
//! against the exact runtime it talks to, SCALE encodings cannot drift, and there is no
//! generated file to keep in sync. At connection the node's `specVersion` and
//! `transactionVersion` are compared with the compiled runtime's; a mismatch is refused
//! with a clear error (rebuild the trainer against the chain's runtime).
//!
//! **Finality.** Proof of work has none. A transaction counts only once its block is
//! `confirmations` deep on the node's best chain ([`Client::confirm`]). Blocks are
//! remembered by hash, so a reorg that replaces the including block is seen on the next
//! poll; a transaction that a reorg or a node restart dropped (neither on the best chain
//! nor in the pool for `patience` blocks) is sent again, re-signed with a fresh nonce only
//! if its own was spent by something else *and* a fresh search of the best chain does not
//! find the original (so a transaction that lands between two looks is never sent twice).
//!
//! **Nonces.** Kept locally, never below `system_accountNextIndex` (which counts the
//! pool), so several transactions can be in flight; a `Stale`/`Future` refusal refreshes
//! the nonce and re-signs once.
//!
//! **Restarts.** Every RPC retries with exponential backoff while the node is unreachable
//! ([`rpc::Backoff`]).

pub mod rpc;

use std::{
	collections::HashMap,
	time::{Duration, Instant},
};

use blade_fl_primitives::pn::Seed;
pub use blade_fl_runtime::{
	AccountId, Balance, BlockNumber, Nonce, Runtime, RuntimeCall, RuntimeEvent, UncheckedExtrinsic,
};
use codec::{Decode, Encode};
pub use pallet_fl_tasks::{RoundIndex, TaskId, TrainerMask};
use serde_json::{json, Value};
use sp_core::{crypto::Pair as _, sr25519, H256};
use sp_runtime::Perbill;

use crate::error::{Error, Result};
pub use rpc::{Backoff, Rpc};

/// A task as the runtime API shows it.
pub type TaskView = pallet_fl_tasks::TaskView<AccountId, Balance, BlockNumber>;
/// A task specification.
pub type TaskSpec = pallet_fl_tasks::TaskSpec<Balance, BlockNumber>;
/// A bid.
pub type Bid = pallet_fl_tasks::Bid<Balance>;
/// A selected trainer.
pub type Participant = pallet_fl_tasks::Participant<Balance>;
/// Where an update lives.
pub type UpdateRecord = pallet_fl_tasks::UpdateRecord<BlockNumber>;
/// A vote tally.
pub type Tally = pallet_fl_tasks::Tally<AccountId>;
/// A finalised round's model.
pub type GlobalModel = pallet_fl_tasks::GlobalModel<AccountId, Balance, BlockNumber>;
/// Calls of the FL pallet.
pub type FlCall = pallet_fl_tasks::Call<Runtime>;
/// Events of the FL pallet.
pub type FlEvent = pallet_fl_tasks::Event<Runtime>;

/// One BLADE in plancks.
pub const UNIT: Balance = 1_000_000_000_000;

/// A transaction sent and not yet confirmed.
#[derive(Clone, Debug)]
pub struct Pending {
	/// What it does.
	pub call: RuntimeCall,
	/// Blake2-256 of the encoded extrinsic.
	pub hash: H256,
	/// Its nonce.
	pub nonce: Nonce,
	/// The encoded extrinsic.
	pub bytes: Vec<u8>,
	/// Best block when first sent: inclusion is searched from here.
	pub from: BlockNumber,
	/// Best block when last sent.
	pub sent_at: BlockNumber,
	/// How often it was sent again.
	pub resent: u32,
}

/// A transaction being followed to its confirmation ([`Client::poll`]).
#[derive(Clone, Debug)]
pub struct Watch {
	/// The transaction (as last sent).
	pub pending: Pending,
	included: Option<(BlockNumber, H256)>,
	reorgs: u32,
}

impl Watch {
	/// Follow `pending`.
	pub fn new(pending: Pending) -> Watch {
		Watch {
			pending,
			included: None,
			reorgs: 0,
		}
	}

	/// The best-chain block (number, hash) it was last seen in.
	pub fn included(&self) -> Option<(BlockNumber, H256)> {
		self.included
	}
}

/// A transaction buried `confirmations` deep.
#[derive(Clone, Debug)]
pub struct Confirmed {
	/// The including block.
	pub block_hash: H256,
	/// Its number.
	pub block_number: BlockNumber,
	/// Index of the extrinsic in the block.
	pub index: u32,
	/// The extrinsic's events (ending with `ExtrinsicSuccess`).
	pub events: Vec<RuntimeEvent>,
	/// How often a reorg moved the transaction out of the block it was seen in.
	pub reorgs: u32,
	/// How often it was sent again (after a reorg or a restart dropped it).
	pub resent: u32,
}

/// Balances of an account.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
	/// Next nonce on chain.
	pub nonce: Nonce,
	/// Free balance.
	pub free: Balance,
	/// On hold (escrows and stakes).
	pub held: Balance,
}

/// Client of one node for one signing account.
pub struct Client {
	rpc: Rpc,
	pair: sr25519::Pair,
	account: AccountId,
	genesis: H256,
	spec_version: u32,
	tx_version: u32,
	/// Depth at which a transaction (or state) counts.
	pub confirmations: u32,
	/// Blocks to wait for a transaction that is neither on chain nor in the pool before
	/// sending it again.
	pub patience: u32,
	/// Longest wait for one confirmation.
	pub timeout: Duration,
	/// Poll interval.
	pub poll: Duration,
	next_nonce: Option<Nonce>,
	/// Extrinsic hashes by block hash (reorg-safe: a replaced block has another hash).
	seen: HashMap<H256, Vec<H256>>,
}

impl Client {
	/// Connect to `url` as the account of secret URI `suri` (`//Alice`, a mnemonic, or a
	/// `0x` seed), check the runtime version and read the genesis hash.
	pub fn connect(url: &str, suri: &str, backoff: Backoff) -> Result<Client> {
		let pair = sr25519::Pair::from_string(suri, None)
			.map_err(|e| Error::Invalid(format!("secret URI: {e:?}")))?;
		Self::with_pair(url, pair, backoff)
	}

	/// Connect for reading only (a throw-away key signs nothing of value).
	pub fn read_only(url: &str, backoff: Backoff) -> Result<Client> {
		Self::with_pair(url, sr25519::Pair::generate().0, backoff)
	}

	fn with_pair(url: &str, pair: sr25519::Pair, backoff: Backoff) -> Result<Client> {
		let account = AccountId::from(pair.public());
		let rpc = Rpc::new(url, backoff)?;
		let genesis = parse_h256(&rpc.call("chain_getBlockHash", json!([0]))?, "genesis hash")?;
		let mut client = Client {
			rpc,
			pair,
			account,
			genesis,
			spec_version: 0,
			tx_version: 0,
			confirmations: 3,
			patience: 4,
			timeout: Duration::from_secs(300),
			poll: Duration::from_millis(500),
			next_nonce: None,
			seen: HashMap::new(),
		};
		client.refresh_version()?;
		Ok(client)
	}

	fn refresh_version(&mut self) -> Result<()> {
		let version = self.rpc.call("state_getRuntimeVersion", json!([]))?;
		let spec = version["specVersion"].as_u64().unwrap_or(0) as u32;
		let tx = version["transactionVersion"].as_u64().unwrap_or(0) as u32;
		let ours = &blade_fl_runtime::VERSION;
		if version["specName"].as_str() != Some(&*ours.spec_name) || tx != ours.transaction_version
		{
			return Err(Error::Invalid(format!(
				"the node runs {} spec {spec} tx {tx}; this trainer was built for {} spec {} tx {}: rebuild it against the chain's runtime",
				version["specName"], ours.spec_name, ours.spec_version, ours.transaction_version
			)));
		}
		if spec != ours.spec_version {
			tracing::warn!(
				node = spec,
				built = ours.spec_version,
				"runtime spec version differs (transaction format is the same)"
			);
		}
		self.spec_version = spec;
		self.tx_version = tx;
		Ok(())
	}

	/// The signing account.
	pub fn account(&self) -> &AccountId {
		&self.account
	}

	/// The RPC endpoint.
	pub fn rpc(&self) -> &Rpc {
		&self.rpc
	}

	/// Best block number.
	pub fn best_number(&self) -> Result<BlockNumber> {
		let header = self.rpc.call("chain_getHeader", json!([]))?;
		parse_number(&header["number"])
	}

	/// Hash of block `n` of the best chain.
	pub fn block_hash(&self, n: BlockNumber) -> Result<Option<H256>> {
		let value = self.rpc.call("chain_getBlockHash", json!([n]))?;
		if value.is_null() {
			return Ok(None);
		}
		parse_h256(&value, "block hash").map(Some)
	}

	/// The block `confirmations` below the best one, and its number: state read there
	/// will not be undone by a reorg shallower than the confirmation depth.
	pub fn confirmed_head(&self) -> Result<(BlockNumber, H256)> {
		let best = self.best_number()?;
		let n = best.saturating_sub(self.confirmations);
		let hash = self
			.block_hash(n)?
			.ok_or_else(|| Error::Timeout(format!("block {n} (reorg in progress?)")))?;
		Ok((n, hash))
	}

	/// Call runtime API `method` with SCALE `args` at `at` (best block if `None`).
	pub fn state_call<R: Decode>(
		&self,
		method: &str,
		args: impl Encode,
		at: Option<H256>,
	) -> Result<R> {
		let at = at.map(|h| json!(format!("{h:?}"))).unwrap_or(Value::Null);
		let value = self.rpc.call(
			"state_call",
			json!([method, format!("0x{}", hex::encode(args.encode())), at]),
		)?;
		let bytes = parse_bytes(&value, method)?;
		R::decode(&mut &bytes[..]).map_err(|e| Error::Decode {
			what: method.into(),
			reason: e.to_string(),
		})
	}

	/// Tasks not yet settled, with their current phase end.
	pub fn active_tasks(&self, at: Option<H256>) -> Result<Vec<(TaskId, BlockNumber)>> {
		self.state_call("FlTasksApi_active_tasks", (), at)
	}

	/// A task, `None` once settled (or never published).
	pub fn task(&self, task: TaskId, at: Option<H256>) -> Result<Option<TaskView>> {
		self.state_call("FlTasksApi_task", task, at)
	}

	/// Bids of a task in bidding.
	pub fn bids(&self, task: TaskId, at: Option<H256>) -> Result<Vec<(AccountId, Bid)>> {
		self.state_call("FlTasksApi_bids", task, at)
	}

	/// Selected trainers of a task.
	pub fn participants(
		&self,
		task: TaskId,
		at: Option<H256>,
	) -> Result<Vec<(AccountId, Participant)>> {
		self.state_call("FlTasksApi_participants", task, at)
	}

	/// This round's updates.
	pub fn updates(
		&self,
		task: TaskId,
		at: Option<H256>,
	) -> Result<Vec<(AccountId, UpdateRecord)>> {
		self.state_call("FlTasksApi_updates", task, at)
	}

	/// This round's vote tallies.
	pub fn tallies(&self, task: TaskId, at: Option<H256>) -> Result<Vec<Tally>> {
		self.state_call("FlTasksApi_tallies", task, at)
	}

	/// The global model of a finalised round.
	pub fn global_model(
		&self,
		task: TaskId,
		round: RoundIndex,
		at: Option<H256>,
	) -> Result<Option<GlobalModel>> {
		self.state_call("FlTasksApi_global_model", (task, round), at)
	}

	/// Reputation of `who`.
	pub fn reputation(&self, who: &AccountId, at: Option<H256>) -> Result<Perbill> {
		self.state_call("FlTasksApi_reputation", who, at)
	}

	/// Raw storage at `key`.
	pub fn storage(&self, key: &[u8], at: Option<H256>) -> Result<Option<Vec<u8>>> {
		let at = at.map(|h| json!(format!("{h:?}"))).unwrap_or(Value::Null);
		let value = self.rpc.call(
			"state_getStorage",
			json!([format!("0x{}", hex::encode(key)), at]),
		)?;
		if value.is_null() {
			return Ok(None);
		}
		parse_bytes(&value, "storage").map(Some)
	}

	/// Nonce and balances of `who`.
	pub fn account_info(&self, who: &AccountId, at: Option<H256>) -> Result<Account> {
		let key = frame_system::Account::<Runtime>::hashed_key_for(who);
		let Some(raw) = self.storage(&key, at)? else {
			return Ok(Account::default());
		};
		let info =
			frame_system::AccountInfo::<Nonce, pallet_balances::AccountData<Balance>>::decode(
				&mut &raw[..],
			)
			.map_err(|e| Error::Decode {
				what: "System.Account".into(),
				reason: e.to_string(),
			})?;
		Ok(Account {
			nonce: info.nonce,
			free: info.data.free,
			held: info.data.reserved,
		})
	}

	/// The extrinsics of block `hash`, SCALE-encoded.
	pub fn block_extrinsics(&self, hash: H256) -> Result<Vec<Vec<u8>>> {
		let block = self
			.rpc
			.call("chain_getBlock", json!([format!("{hash:?}")]))?;
		let Some(list) = block["block"]["extrinsics"].as_array() else {
			return Err(Error::Timeout(format!(
				"block {hash:?} (unknown to the node)"
			)));
		};
		list.iter().map(|x| parse_bytes(x, "extrinsic")).collect()
	}

	/// Event records of block `hash`.
	pub fn event_records(
		&self,
		hash: H256,
	) -> Result<Vec<frame_system::EventRecord<RuntimeEvent, H256>>> {
		let key = [
			sp_crypto_hashing::twox_128(b"System"),
			sp_crypto_hashing::twox_128(b"Events"),
		]
		.concat();
		match self.storage(&key, Some(hash))? {
			None => Ok(Vec::new()),
			Some(raw) => Decode::decode(&mut &raw[..]).map_err(|e| Error::Decode {
				what: "System.Events".into(),
				reason: e.to_string(),
			}),
		}
	}

	/// The decoded extrinsic at (`block`, `index`) of the best chain.
	pub fn extrinsic_at(&self, block: BlockNumber, index: u32) -> Result<UncheckedExtrinsic> {
		let hash = self
			.block_hash(block)?
			.ok_or_else(|| Error::Timeout(format!("block {block}")))?;
		let all = self.block_extrinsics(hash)?;
		let bytes = all.get(index as usize).ok_or_else(|| Error::Decode {
			what: format!("extrinsic {block}-{index}"),
			reason: format!("block has {} extrinsics", all.len()),
		})?;
		UncheckedExtrinsic::decode(&mut &bytes[..]).map_err(|e| Error::Decode {
			what: format!("extrinsic {block}-{index}"),
			reason: e.to_string(),
		})
	}

	/// Download the blob of a `submit_update` or `publish_aggregate` extrinsic at
	/// (`block`, `index`) and check it against `hash`.
	pub fn blob_at(&self, block: BlockNumber, index: u32, hash: H256) -> Result<Vec<u8>> {
		let xt = self.extrinsic_at(block, index)?;
		let blob = match xt.function {
			RuntimeCall::FlTasks(FlCall::submit_update { blob, .. })
			| RuntimeCall::FlTasks(FlCall::publish_aggregate { blob, .. }) => blob.into_inner(),
			other => {
				return Err(Error::Decode {
					what: format!("extrinsic {block}-{index}"),
					reason: format!("not an update or aggregate: {other:?}"),
				})
			}
		};
		let actual = H256(crate::codec::hash(&blob));
		if actual != hash {
			return Err(Error::Decode {
				what: format!("blob {block}-{index}"),
				reason: format!("hash {actual:?}, the chain recorded {hash:?}"),
			});
		}
		Ok(blob)
	}

	/// Sign `call` with `nonce`.
	pub fn sign(&self, call: RuntimeCall, nonce: Nonce) -> UncheckedExtrinsic {
		blade_fl_runtime::signed_extrinsic(
			call,
			&self.pair,
			nonce,
			self.genesis,
			self.spec_version,
			self.tx_version,
		)
	}

	fn pool_nonce(&self) -> Result<Nonce> {
		let value = self
			.rpc
			.call("system_accountNextIndex", json!([self.account.to_string()]))?;
		value
			.as_u64()
			.map(|n| n as Nonce)
			.ok_or_else(|| Error::Decode {
				what: "system_accountNextIndex".into(),
				reason: value.to_string(),
			})
	}

	/// Sign `call` with the next nonce and send it; see [`Client::confirm`].
	pub fn submit(&mut self, call: RuntimeCall) -> Result<Pending> {
		let best = self.best_number()?;
		let mut pending = Pending {
			call,
			hash: H256::zero(),
			nonce: 0,
			bytes: Vec::new(),
			from: best.saturating_sub(1),
			sent_at: best,
			resent: 0,
		};
		self.send_fresh(&mut pending)?;
		Ok(pending)
	}

	/// (Re-)sign `pending` with the next free nonce and send it.
	fn send_fresh(&mut self, pending: &mut Pending) -> Result<()> {
		for attempt in 0..2 {
			let chain = self.pool_nonce()?;
			let nonce = self.next_nonce.map_or(chain, |n| n.max(chain));
			let xt = self.sign(pending.call.clone(), nonce);
			let bytes = xt.encode();
			match self.send_bytes(&bytes) {
				Ok(hash) => {
					self.next_nonce = Some(nonce.saturating_add(1));
					pending.hash = hash;
					pending.nonce = nonce;
					pending.bytes = bytes;
					tracing::debug!(call = %call_name(&pending.call), nonce, hash = ?hash, "sent");
					return Ok(());
				}
				Err(Error::Rpc { message, .. })
					if attempt == 0
						&& (message.contains("Stale")
							|| message.contains("Future")
							|| message.contains("Priority is too low")) =>
				{
					tracing::debug!(%message, "nonce refused; refreshing");
					self.next_nonce = None;
					// A runtime upgrade changes the signed payload's spec version.
					self.refresh_version()?;
				}
				Err(e) => return Err(e),
			}
		}
		Err(Error::Timeout("a usable nonce".into()))
	}

	fn send_bytes(&self, bytes: &[u8]) -> Result<H256> {
		let value = self.rpc.call(
			"author_submitExtrinsic",
			json!([format!("0x{}", hex::encode(bytes))]),
		)?;
		parse_h256(&value, "transaction hash")
	}

	/// Where `hash` sits on the best chain between blocks `from` and `to`, if it does.
	fn find(
		&mut self,
		hash: H256,
		from: BlockNumber,
		to: BlockNumber,
	) -> Result<Option<(BlockNumber, H256, u32)>> {
		for n in from..=to {
			let Some(block) = self.block_hash(n)? else {
				continue;
			};
			if !self.seen.contains_key(&block) {
				let hashes = self
					.block_extrinsics(block)?
					.iter()
					.map(|x| H256(sp_crypto_hashing::blake2_256(x)))
					.collect();
				self.seen.insert(block, hashes);
			}
			if let Some(index) = self.seen[&block].iter().position(|h| *h == hash) {
				return Ok(Some((n, block, index as u32)));
			}
		}
		Ok(None)
	}

	fn in_pool(&self, bytes: &[u8]) -> Result<bool> {
		let wanted = format!("0x{}", hex::encode(bytes));
		let pool = self.rpc.call("author_pendingExtrinsics", json!([]))?;
		Ok(pool
			.as_array()
			.is_some_and(|list| list.iter().any(|x| x.as_str() == Some(&wanted))))
	}

	/// Send `pending` again after a reorg or a node restart dropped it.
	fn resend(&mut self, pending: &mut Pending, best: BlockNumber) -> Result<()> {
		pending.resent += 1;
		pending.sent_at = best;
		let on_chain = self.account_info(&self.account.clone(), None)?.nonce;
		if on_chain <= pending.nonce {
			match self.send_bytes(&pending.bytes) {
				Ok(_) => return Ok(()),
				Err(Error::Rpc { message, .. }) if message.contains("Already Imported") => {
					return Ok(())
				}
				Err(Error::Rpc { message, .. }) => {
					tracing::debug!(%message, "resend refused; re-signing");
				}
				Err(e) => return Err(e),
			}
		}
		// Its nonce is spent, or the node refused the old bytes. Spent by the original
		// itself, landed since the last look? Never re-sign before searching the best chain
		// for it: a second signature would be a second transaction (a second escrow).
		let now = self.best_number()?;
		if let Some((number, _, _)) = self.find(pending.hash, pending.from, now)? {
			tracing::debug!(call = %call_name(&pending.call), block = number, "the original landed meanwhile; not re-signing");
			return Ok(());
		}
		// Its nonce went to another transaction: sign it anew.
		self.next_nonce = None;
		self.send_fresh(pending)
	}

	/// Look once at where `watch`'s transaction stands: `Some` once it is `confirmations`
	/// deep on the best chain. Notices a reorg that moved or dropped it and re-sends it
	/// when it is neither on chain nor in the pool (reorg, restarted node).
	pub fn poll(&mut self, watch: &mut Watch) -> Result<Option<Confirmed>> {
		let best = self.best_number()?;
		let pending = &mut watch.pending;
		match self.find(pending.hash, pending.from, best)? {
			Some((number, block, index)) => {
				if watch.included.is_some_and(|(_, seen)| seen != block) {
					watch.reorgs += 1;
					tracing::warn!(call = %call_name(&pending.call), block = number, "reorg moved the transaction to another block");
				}
				watch.included = Some((number, block));
				if best >= number.saturating_add(self.confirmations) {
					let events = self
						.event_records(block)?
						.into_iter()
						.filter(|r| r.phase == frame_system::Phase::ApplyExtrinsic(index))
						.map(|r| r.event)
						.collect();
					return Ok(Some(Confirmed {
						block_hash: block,
						block_number: number,
						index,
						events,
						reorgs: watch.reorgs,
						resent: pending.resent,
					}));
				}
			}
			None => {
				let resend = if let Some((number, _)) = watch.included.take() {
					watch.reorgs += 1;
					tracing::warn!(call = %call_name(&pending.call), block = number, "reorg dropped the transaction; sending it again");
					true
				} else if best >= pending.sent_at.saturating_add(self.patience)
					&& !self.in_pool(&pending.bytes)?
				{
					tracing::warn!(call = %call_name(&pending.call), "transaction neither on chain nor in the pool (node restarted?); sending it again");
					true
				} else {
					false
				};
				if resend {
					self.resend(&mut watch.pending, best)?;
				}
			}
		}
		Ok(None)
	}

	/// Wait until `pending` is `confirmations` deep on the best chain and return its
	/// block and events; see [`Client::poll`].
	pub fn confirm(&mut self, pending: Pending) -> Result<Confirmed> {
		let deadline = Instant::now() + self.timeout;
		let mut watch = Watch::new(pending);
		loop {
			if let Some(confirmed) = self.poll(&mut watch)? {
				return Ok(confirmed);
			}
			if Instant::now() > deadline {
				return Err(Error::Timeout(format!(
					"{} to be {} blocks deep",
					call_name(&watch.pending.call),
					self.confirmations
				)));
			}
			std::thread::sleep(self.poll);
		}
	}

	/// Submit `call`, wait for its confirmation and fail with [`Error::Dispatch`] if it
	/// failed on chain.
	pub fn execute(&mut self, call: RuntimeCall) -> Result<Confirmed> {
		let name = call_name(&call);
		let pending = self.submit(call)?;
		let confirmed = self.confirm(pending)?;
		for event in &confirmed.events {
			if let RuntimeEvent::System(frame_system::Event::ExtrinsicFailed {
				dispatch_error,
				..
			}) = event
			{
				return Err(Error::Dispatch {
					call: name,
					error: describe_error(dispatch_error),
				});
			}
		}
		tracing::info!(call = %name, block = confirmed.block_number, "confirmed");
		Ok(confirmed)
	}

	/// The last published global model of `task`: its round and blob. While the task is
	/// live the runtime API points at it; once settled its storage is gone, so the last
	/// `scan` blocks are searched for its last successful `publish_aggregate`.
	pub fn final_model(&self, task: TaskId, scan: u32) -> Result<Option<(RoundIndex, Vec<u8>)>> {
		if let Some(view) = self.task(task, None)? {
			for round in (0..view.spec.rounds).rev() {
				if let Some(GlobalModel {
					hash,
					published: Some((block, index)),
					..
				}) = self.global_model(task, round, None)?
				{
					return Ok(Some((round, self.blob_at(block, index, hash)?)));
				}
			}
			return Ok(None);
		}
		let best = self.best_number()?;
		for n in (best.saturating_sub(scan)..=best).rev() {
			let Some(hash) = self.block_hash(n)? else {
				continue;
			};
			let extrinsics = self.block_extrinsics(hash)?;
			let events = self.event_records(hash)?;
			for (index, bytes) in extrinsics.iter().enumerate().rev() {
				let Ok(xt) = UncheckedExtrinsic::decode(&mut &bytes[..]) else {
					continue;
				};
				let RuntimeCall::FlTasks(FlCall::publish_aggregate {
					task: t,
					round,
					blob,
				}) = xt.function
				else {
					continue;
				};
				let succeeded = events.iter().any(|r| {
					r.phase == frame_system::Phase::ApplyExtrinsic(index as u32)
						&& matches!(
							r.event,
							RuntimeEvent::System(frame_system::Event::ExtrinsicSuccess { .. })
						)
				});
				if t == task && succeeded {
					return Ok(Some((round, blob.into_inner())));
				}
			}
		}
		Ok(None)
	}

	/// Submit an FL call; see [`Client::execute`].
	pub fn fl(&mut self, call: FlCall) -> Result<Confirmed> {
		self.execute(RuntimeCall::FlTasks(call))
	}
}

/// `Pallet.call` name of a call, for logs and errors.
pub fn call_name(call: &RuntimeCall) -> String {
	use frame_support::traits::GetCallMetadata;
	let meta = call.get_call_metadata();
	format!("{}.{}", meta.pallet_name, meta.function_name)
}

/// `Pallet::Error` name of a dispatch error where the pallet is known.
pub fn describe_error(error: &sp_runtime::DispatchError) -> String {
	use frame_support::traits::PalletInfoAccess;
	if let sp_runtime::DispatchError::Module(module) = error {
		if module.index as usize == blade_fl_runtime::FlTasks::index() {
			if let Ok(e) = pallet_fl_tasks::Error::<Runtime>::decode(&mut &module.error[..]) {
				return format!("FlTasks::{e:?}");
			}
		}
		if module.index as usize == blade_fl_runtime::Balances::index() {
			if let Ok(e) = pallet_balances::Error::<Runtime>::decode(&mut &module.error[..]) {
				return format!("Balances::{e:?}");
			}
		}
	}
	format!("{error:?}")
}

/// The FL events among `events`.
pub fn fl_events(events: &[RuntimeEvent]) -> impl Iterator<Item = &FlEvent> {
	events.iter().filter_map(|e| match e {
		RuntimeEvent::FlTasks(e) => Some(e),
		_ => None,
	})
}

/// Commitment of `owner` to `seed`, as the runtime checks it.
pub fn commitment(owner: &AccountId, seed: &Seed) -> H256 {
	H256(blade_fl_primitives::pn::seed_commitment(
		&owner.encode(),
		seed,
	))
}

fn parse_bytes(value: &Value, what: &str) -> Result<Vec<u8>> {
	value
		.as_str()
		.and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
		.ok_or_else(|| Error::Decode {
			what: what.into(),
			reason: format!("not hex: {value}"),
		})
}

fn parse_h256(value: &Value, what: &str) -> Result<H256> {
	let bytes = parse_bytes(value, what)?;
	if bytes.len() != 32 {
		return Err(Error::Decode {
			what: what.into(),
			reason: format!("{} bytes", bytes.len()),
		});
	}
	Ok(H256::from_slice(&bytes))
}

fn parse_number(value: &Value) -> Result<BlockNumber> {
	value
		.as_str()
		.and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok())
		.ok_or_else(|| Error::Decode {
			what: "block number".into(),
			reason: value.to_string(),
		})
}
