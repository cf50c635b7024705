//! # BLADE-FL runtime
//!
//! A proof-of-work chain for decentralised federated learning. This foundation runtime
//! holds accounts and balances, fees, sudo, a council, run-time parameters, the difficulty
//! pallet read by the node's PoW algorithm, and a block reward paid to the miner named in
//! the block's `pow_` pre-runtime digest. The federated-learning pallets sit at indices 20
//! (`FlTasks`: tasks, bidding, rounds, lazy proofs, aggregation, settlement) and 21
//! (`Reputation`).
//!
//! Layout follows the polkadot-sdk solochain template: [`configs`] holds every pallet's
//! `Config`, [`apis`] the runtime APIs, [`genesis_config_presets`] the `development` and
//! `local` presets.

#![cfg_attr(not(feature = "std"), no_std)]
#![recursion_limit = "256"]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod configs;
pub mod genesis_config_presets;

use alloc::vec::Vec;
use sp_runtime::{
	generic, impl_opaque_keys,
	traits::{BlakeTwo256, IdentifyAccount, Verify},
	MultiAddress, MultiSignature,
};
use sp_version::RuntimeVersion;

pub use configs::dynamic_params;
pub use frame_support::{construct_runtime, parameter_types};
pub use pallet_balances::Call as BalancesCall;
pub use sp_runtime::{Perbill, Permill};

/// Signature scheme of transactions.
pub type Signature = MultiSignature;
/// Account identifier: the 32-byte public key (also what the miner puts in the `pow_` digest).
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balance of an account.
pub type Balance = u128;
/// Transaction counter of an account.
pub type Nonce = u32;
/// Hash type of blocks and tries.
pub type Hash = sp_core::H256;
/// Block number.
pub type BlockNumber = u32;
/// Address format of transactions.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block type.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// Signed extensions (transaction extensions) checked for every transaction.
pub type TxExtension = (
	frame_system::CheckNonZeroSender<Runtime>,
	frame_system::CheckSpecVersion<Runtime>,
	frame_system::CheckTxVersion<Runtime>,
	frame_system::CheckGenesis<Runtime>,
	frame_system::CheckEra<Runtime>,
	frame_system::CheckNonce<Runtime>,
	frame_system::CheckWeight<Runtime>,
	pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
	// Lets metadata-checking wallets (Ledger's generic app, polkadot-js with a metadata
	// hash) sign: with mode `Enabled` the signature also covers the hash of the runtime's
	// metadata, which the runtime knows when built with the `metadata-hash` feature.
	frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
);
/// Extrinsic as it travels.
pub type UncheckedExtrinsic =
	generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// The payload signed by a transaction's author.
pub type SignedPayload = generic::SignedPayload<RuntimeCall, TxExtension>;

/// An immortal signed extrinsic of `call` by `pair` with `nonce`, for a chain with
/// `genesis` running `spec_version` / `tx_version` (clients and tests; no tip).
#[cfg(feature = "std")]
pub fn signed_extrinsic(
	call: RuntimeCall,
	pair: &sp_core::sr25519::Pair,
	nonce: Nonce,
	genesis: Hash,
	spec_version: u32,
	tx_version: u32,
) -> UncheckedExtrinsic {
	use codec::Encode;
	use sp_core::Pair;
	let tx_ext: TxExtension = (
		frame_system::CheckNonZeroSender::new(),
		frame_system::CheckSpecVersion::new(),
		frame_system::CheckTxVersion::new(),
		frame_system::CheckGenesis::new(),
		frame_system::CheckEra::from(generic::Era::Immortal),
		frame_system::CheckNonce::from(nonce),
		frame_system::CheckWeight::new(),
		pallet_transaction_payment::ChargeTransactionPayment::from(0),
		frame_metadata_hash_extension::CheckMetadataHash::new(false),
	);
	let implicit = (
		(),
		spec_version,
		tx_version,
		genesis,
		genesis,
		(),
		(),
		(),
		None,
	);
	let payload = SignedPayload::from_raw(call.clone(), tx_ext.clone(), implicit);
	let signature = payload.using_encoded(|bytes| pair.sign(bytes));
	UncheckedExtrinsic::new_signed(
		call,
		MultiAddress::Id(AccountId::from(pair.public())),
		MultiSignature::Sr25519(signature),
		tx_ext,
	)
}
/// Executive: dispatches to the pallets.
pub type Executive = frame_executive::Executive<
	Runtime,
	Block,
	frame_system::ChainContext<Runtime>,
	Runtime,
	AllPalletsWithSystem,
>;

/// Types the node uses without knowing the extrinsic format.
pub mod opaque {
	use super::*;
	use alloc::vec::Vec;
	pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;
	/// Opaque block header.
	pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
	/// Opaque block.
	pub type Block = generic::Block<Header, UncheckedExtrinsic>;
	/// Opaque block identifier.
	pub type BlockId = generic::BlockId<Block>;

	impl_opaque_keys! {
		/// PoW needs no session keys; the empty set keeps `author_rotateKeys` answering.
		pub struct SessionKeys {}
	}
}

/// The runtime's version. Bump `spec_version` with every change of runtime behaviour.
#[cfg(not(feature = "upgrade-test"))]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("blade-fl"),
	impl_name: alloc::borrow::Cow::Borrowed("blade-fl"),
	authoring_version: 1,
	spec_version: 106,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 3,
	system_version: 1,
};

/// The same runtime one `spec_version` later: the code a runtime-upgrade test enacts with
/// `sudo(set_code)` (`benchmarking/runtime-upgrade`; never a release).
#[cfg(feature = "upgrade-test")]
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
	spec_name: alloc::borrow::Cow::Borrowed("blade-fl"),
	impl_name: alloc::borrow::Cow::Borrowed("blade-fl"),
	authoring_version: 1,
	spec_version: 107,
	impl_version: 1,
	apis: apis::RUNTIME_API_VERSIONS,
	transaction_version: 3,
	system_version: 1,
};

/// Smallest unit: the token has 12 decimals.
pub const UNIT: Balance = 1_000_000_000_000;
/// A thousandth of a unit.
pub const MILLI_UNIT: Balance = UNIT / 1_000;
/// Token symbol shown by wallets.
pub const TOKEN_SYMBOL: &str = "BLADE";
/// Decimals shown by wallets.
pub const TOKEN_DECIMALS: u8 = 12;
/// SS58 address prefix (42: generic Substrate, so dev keys show familiar addresses).
pub const SS58_PREFIX: u16 = 42;
/// Minimum balance an account must keep.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_UNIT;
/// Target block time of the development chain, in milliseconds.
pub const TARGET_BLOCK_TIME_MS: u64 = 2_000;
/// Blocks per minute at the target block time.
pub const MINUTES: BlockNumber = (60_000 / TARGET_BLOCK_TIME_MS) as BlockNumber;

#[frame_support::runtime]
mod runtime {
	#[runtime::runtime]
	#[runtime::derive(
		RuntimeCall,
		RuntimeEvent,
		RuntimeError,
		RuntimeOrigin,
		RuntimeFreezeReason,
		RuntimeHoldReason,
		RuntimeSlashReason,
		RuntimeLockId,
		RuntimeTask,
		RuntimeViewFunction
	)]
	pub struct Runtime;

	#[runtime::pallet_index(0)]
	pub type System = frame_system;
	#[runtime::pallet_index(1)]
	pub type Timestamp = pallet_timestamp;
	#[runtime::pallet_index(2)]
	pub type Balances = pallet_balances;
	#[runtime::pallet_index(3)]
	pub type TransactionPayment = pallet_transaction_payment;
	#[runtime::pallet_index(4)]
	pub type Sudo = pallet_sudo;
	#[runtime::pallet_index(5)]
	pub type Authorship = pallet_authorship;
	#[runtime::pallet_index(6)]
	pub type Difficulty = pallet_difficulty;
	#[runtime::pallet_index(7)]
	pub type BlockReward = pallet_block_reward;
	#[runtime::pallet_index(8)]
	pub type Council = pallet_collective<Instance1>;
	#[runtime::pallet_index(9)]
	pub type Parameters = pallet_parameters;

	// ---- federated learning ----
	#[runtime::pallet_index(20)]
	pub type FlTasks = pallet_fl_tasks;
	#[runtime::pallet_index(21)]
	pub type Reputation = pallet_fl_reputation;
}
