//! Helpers shared by the runtime's integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use blade_fl_runtime::genesis_config_presets;
use frame_support::traits::BuildGenesisConfig;

/// Externalities with the `development` preset applied over the default genesis.
pub fn dev_ext() -> sp_io::TestExternalities {
	let config = genesis_config_presets::preset_config(&"development".into()).unwrap();
	let mut ext = sp_io::TestExternalities::new_empty();
	ext.execute_with(|| config.build());
	ext
}
