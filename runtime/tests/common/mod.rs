//! Helpers shared by the runtime's integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use blade_fl_runtime::{genesis_config_presets, RuntimeGenesisConfig};
use frame_support::traits::BuildGenesisConfig;

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
	match (base, patch) {
		(serde_json::Value::Object(base), serde_json::Value::Object(patch)) => {
			for (key, value) in patch {
				merge(base.entry(key).or_insert(serde_json::Value::Null), value);
			}
		}
		(base, patch) => *base = patch,
	}
}

/// Externalities with the `development` preset applied over the default genesis.
pub fn dev_ext() -> sp_io::TestExternalities {
	let patch: serde_json::Value =
		serde_json::from_slice(&genesis_config_presets::get_preset(&"development".into()).unwrap())
			.unwrap();
	let mut config = serde_json::to_value(RuntimeGenesisConfig::default()).unwrap();
	merge(&mut config, patch);
	let config: RuntimeGenesisConfig = serde_json::from_value(config).unwrap();
	let mut ext = sp_io::TestExternalities::new_empty();
	ext.execute_with(|| config.build());
	ext
}
