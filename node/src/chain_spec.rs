//! Chain specifications built from the runtime's genesis presets.

use blade_fl_runtime::{
	genesis_config_presets::{LOCAL_RUNTIME_PRESET, PRODUCTION_RUNTIME_PRESET},
	SS58_PREFIX, TOKEN_DECIMALS, TOKEN_SYMBOL, WASM_BINARY,
};
use sc_service::{ChainType, Properties};
use sp_genesis_builder::DEV_RUNTIME_PRESET;

/// Chain specification of this node.
pub type ChainSpec = sc_service::GenericChainSpec;

fn properties() -> Properties {
	let mut properties = Properties::new();
	properties.insert("tokenSymbol".into(), TOKEN_SYMBOL.into());
	properties.insert("tokenDecimals".into(), TOKEN_DECIMALS.into());
	properties.insert("ss58Format".into(), SS58_PREFIX.into());
	properties
}

fn wasm() -> Result<&'static [u8], String> {
	WASM_BINARY.ok_or_else(|| {
		"the runtime WASM blob was not built; build without SKIP_WASM_BUILD to run a node"
			.to_string()
	})
}

fn spec(name: &str, id: &str, chain_type: ChainType, preset: &str) -> Result<ChainSpec, String> {
	Ok(ChainSpec::builder(wasm()?, None)
		.with_name(name)
		.with_id(id)
		.with_protocol_id(&id.replace('_', "-"))
		.with_chain_type(chain_type)
		.with_genesis_config_preset_name(preset)
		.with_properties(properties())
		.build())
}

/// `dev`: one miner (Alice), low difficulty.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
	spec(
		"BLADE-FL Development",
		"blade_fl_dev",
		ChainType::Development,
		DEV_RUNTIME_PRESET,
	)
}

/// `production`: the template of a public network (no sudo, no dev accounts); export it,
/// fill in balances and council, and convert it to raw (docs/operations.md).
pub fn production_chain_spec() -> Result<ChainSpec, String> {
	spec(
		"BLADE-FL",
		"blade_fl",
		ChainType::Live,
		PRODUCTION_RUNTIME_PRESET,
	)
}

/// `local`: several machines mining together; governed by the council (no sudo).
pub fn local_chain_spec() -> Result<ChainSpec, String> {
	spec(
		"BLADE-FL Local Testnet",
		"blade_fl_local",
		ChainType::Local,
		LOCAL_RUNTIME_PRESET,
	)
}
