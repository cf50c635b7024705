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
//!
//! **Layout** (as subxt splits `storage`, `runtime_api`, `blocks` and `tx`): this module
//! holds the connection (version check, account) and the shared types; `reads` the state
//! (runtime API, storage, accounts); `blocks` heads, bodies, events and blobs; `tx`
//! signing, submission and confirmation; [`rpc`] the JSON-RPC transport.

mod blocks;
mod reads;
pub use reads::Ledger;
pub mod rpc;
mod tx;

pub use tx::{Confirmed, Pending, Watch};

use std::{
	collections::{BTreeMap, HashMap},
	sync::Mutex,
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
pub use rpc::{Backoff, Head, Heads, Rpc, TxState, TxWatch};

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

/// How to reach a node: what a service needs to open one [`Client`] per task.
#[derive(Clone, Debug)]
pub struct Connection {
	/// RPC endpoint.
	pub url: String,
	/// Retry schedule while the node is unreachable.
	pub backoff: Backoff,
	/// Depth at which transactions and state count.
	pub confirmations: u32,
	/// Longest wait for one confirmation.
	pub timeout: Duration,
}

impl Connection {
	/// A client signing with `pair`.
	pub fn connect(&self, pair: sr25519::Pair) -> Result<Client> {
		let mut client = Client::connect_pair(&self.url, pair, self.backoff)?;
		client.confirmations = self.confirmations;
		client.timeout = self.timeout;
		Ok(client)
	}
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
	/// The best chain as followed ([`Heads`]).
	follow: Mutex<Follow>,
	/// Pool status of transactions sent over WebSocket, by transaction hash.
	watches: HashMap<H256, TxWatch>,
}

/// The best chain as the client follows it: the head source and, when heads arrive by
/// subscription, the hashes of recent best-chain blocks by number (kept right across
/// reorgs by walking parent hashes back from each new head), so that looking up a block
/// by number costs no call.
pub(crate) struct Follow {
	heads: Heads,
	canon: BTreeMap<BlockNumber, H256>,
	/// Time spent in [`Client::wait_new_head`] so far.
	waited: Duration,
}

/// Blocks kept in [`Follow`]'s map below the head.
const CANON_KEEP: BlockNumber = 1024;
/// Longest reorg walked back block by block; a deeper one resets the map.
const CANON_WALK: u32 = 128;

impl Client {
	/// Connect to `url` as the account of secret URI `suri` (`//Alice`, a mnemonic, or a
	/// `0x` seed), check the runtime version and read the genesis hash.
	pub fn connect(url: &str, suri: &str, backoff: Backoff) -> Result<Client> {
		let pair = sr25519::Pair::from_string(suri, None)
			.map_err(|e| Error::Invalid(format!("secret URI: {e:?}")))?;
		Self::with_pair(url, pair, backoff)
	}

	/// Connect to `url` signing with `pair` (from [`crate::keys::load`]).
	pub fn connect_pair(url: &str, pair: sr25519::Pair, backoff: Backoff) -> Result<Client> {
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
		let poll = Duration::from_millis(500);
		let heads = rpc.heads(poll)?;
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
			poll,
			next_nonce: None,
			seen: HashMap::new(),
			follow: Mutex::new(Follow {
				heads,
				canon: BTreeMap::new(),
				waited: Duration::ZERO,
			}),
			watches: HashMap::new(),
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

pub(crate) fn parse_h256(value: &Value, what: &str) -> Result<H256> {
	let bytes = parse_bytes(value, what)?;
	if bytes.len() != 32 {
		return Err(Error::Decode {
			what: what.into(),
			reason: format!("{} bytes", bytes.len()),
		});
	}
	Ok(H256::from_slice(&bytes))
}
