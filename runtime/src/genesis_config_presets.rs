//! Genesis presets: `development` (one miner on one thread) and `local` (a few machines).

use crate::{
	AccountId, BalancesConfig, CouncilConfig, DifficultyConfig, RuntimeGenesisConfig, SudoConfig,
	UNIT,
};
use alloc::{vec, vec::Vec};
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_genesis_builder::{PresetId, DEV_RUNTIME_PRESET};
use sp_keyring::Sr25519Keyring;

/// Name of the multi-machine preset.
pub const LOCAL_RUNTIME_PRESET: &str = "local";
/// Preset of a public network's chain spec template (no sudo, no dev accounts).
pub const PRODUCTION_RUNTIME_PRESET: &str = "production";

/// Balance given to each endowed development account (fits serde_json's u64 numbers).
pub const ENDOWMENT: u128 = 1_000_000 * UNIT;

/// Initial difficulty of the `development` preset: about 1.7 s per block for one mining
/// thread at the ~7 MH/s `blade-bench pow` measured on the 2-core reference machine; the
/// retarget corrects it within a few dozen blocks elsewhere.
pub const DEV_INITIAL_DIFFICULTY: u128 = 12_000_000;

/// Initial difficulty of the `local` preset (two or more miners share the work).
pub const LOCAL_INITIAL_DIFFICULTY: u128 = 20_000_000;

fn genesis(
	endowed: Vec<AccountId>,
	root: Option<AccountId>,
	council: Vec<AccountId>,
	initial_difficulty: u128,
) -> Value {
	build_struct_json_patch!(RuntimeGenesisConfig {
		balances: BalancesConfig {
			balances: endowed
				.into_iter()
				.map(|account| (account, ENDOWMENT))
				.collect::<Vec<_>>(),
		},
		sudo: SudoConfig { key: root },
		council: CouncilConfig { members: council },
		difficulty: DifficultyConfig { initial_difficulty },
	})
}

fn council() -> Vec<AccountId> {
	vec![
		Sr25519Keyring::Alice.to_account_id(),
		Sr25519Keyring::Bob.to_account_id(),
		Sr25519Keyring::Charlie.to_account_id(),
	]
}

fn dev_accounts() -> Vec<AccountId> {
	Sr25519Keyring::well_known()
		.map(|k| k.to_account_id())
		.collect()
}

/// `development`: one miner on one thread; Alice is sudo, Alice/Bob/Charlie form the
/// council, the well-known dev accounts are funded.
pub fn development_config_genesis() -> Value {
	genesis(
		dev_accounts(),
		Some(Sr25519Keyring::Alice.to_account_id()),
		council(),
		DEV_INITIAL_DIFFICULTY,
	)
}

/// `local`: a test network of several miners. No sudo: parameters change only through
/// the council (Alice/Bob/Charlie); the dev accounts are funded; higher starting
/// difficulty.
pub fn local_config_genesis() -> Value {
	genesis(dev_accounts(), None, council(), LOCAL_INITIAL_DIFFICULTY)
}

/// `production`: a template for a public network. No sudo, no endowments, no council:
/// the operators fill `balances` and `council.members` into the exported chain spec
/// before converting it to raw (docs/operations.md, "A production chain spec"). Coins
/// otherwise only come from mining.
pub fn production_config_genesis() -> Value {
	genesis(Vec::new(), None, Vec::new(), LOCAL_INITIAL_DIFFICULTY)
}

/// The JSON patch of preset `id`, if it exists.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
	let patch = match id.as_ref() {
		DEV_RUNTIME_PRESET => development_config_genesis(),
		LOCAL_RUNTIME_PRESET => local_config_genesis(),
		PRODUCTION_RUNTIME_PRESET => production_config_genesis(),
		_ => return None,
	};
	serde_json::to_string(&patch)
		.ok()
		.map(|text| text.into_bytes())
}

/// Names of the presets this runtime offers.
pub fn preset_names() -> Vec<PresetId> {
	vec![
		PresetId::from(DEV_RUNTIME_PRESET),
		PresetId::from(LOCAL_RUNTIME_PRESET),
		PresetId::from(PRODUCTION_RUNTIME_PRESET),
	]
}

/// The full genesis config of preset `id`: its JSON patch applied over the defaults, as a
/// chain spec builds it. For native tools and tests that need real genesis state.
#[cfg(feature = "std")]
pub fn preset_config(id: &PresetId) -> Option<RuntimeGenesisConfig> {
	let patch: Value = serde_json::from_slice(&get_preset(id)?).ok()?;
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).ok()?;
	merge_json(&mut config, patch);
	serde_json::from_value(config).ok()
}

/// RFC 7386-style merge of `patch` into `base` (objects merge key by key).
#[cfg(feature = "std")]
fn merge_json(base: &mut Value, patch: Value) {
	match (base, patch) {
		(Value::Object(base), Value::Object(patch)) => {
			for (key, value) in patch {
				merge_json(base.entry(key).or_insert(Value::Null), value);
			}
		}
		(base, patch) => *base = patch,
	}
}
