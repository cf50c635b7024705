//! Parses the command line and runs the node or a maintenance subcommand.

use blade_fl_runtime::{opaque::Block, AccountId};
use sc_cli::SubstrateCli;
use sc_service::PartialComponents;
use sp_core::crypto::Ss58Codec;
use sp_keyring::Sr25519Keyring;

use crate::{
	chain_spec,
	cli::{Cli, MiningParams, Subcommand},
	service::{self, MiningConfig},
};

impl SubstrateCli for Cli {
	fn impl_name() -> String {
		"BLADE-FL Node".into()
	}

	fn impl_version() -> String {
		env!("SUBSTRATE_CLI_IMPL_VERSION").into()
	}

	fn description() -> String {
		env!("CARGO_PKG_DESCRIPTION").into()
	}

	fn author() -> String {
		env!("CARGO_PKG_AUTHORS").into()
	}

	fn support_url() -> String {
		"https://github.com/blade-fl/blade-fl/issues".into()
	}

	fn copyright_start_year() -> i32 {
		2026
	}

	fn load_spec(&self, id: &str) -> Result<Box<dyn sc_service::ChainSpec>, String> {
		Ok(match id {
			"dev" | "" => Box::new(chain_spec::development_chain_spec()?),
			"local" => Box::new(chain_spec::local_chain_spec()?),
			"production" => Box::new(chain_spec::production_chain_spec()?),
			path => Box::new(chain_spec::ChainSpec::from_json_file(
				std::path::PathBuf::from(path),
			)?),
		})
	}
}

/// Decide whether and as whom this node mines.
fn mining_config(params: &MiningParams, dev: bool) -> sc_cli::Result<Option<MiningConfig>> {
	if !params.mine && !dev {
		if params.author.is_some() {
			return Err("--author has no effect without --mine (or --dev)".into());
		}
		return Ok(None);
	}
	if params.threads == 0 {
		return Err("--threads must be at least 1".into());
	}
	let author = match &params.author {
		Some(address) => AccountId::from_ss58check(address).map_err(|e| {
			sc_cli::Error::Input(format!(
				"--author {address:?} is not a valid SS58 address: {e:?}"
			))
		})?,
		None if dev => Sr25519Keyring::Alice.to_account_id(),
		None => {
			return Err("--mine needs --author <SS58> (the account paid for mined blocks)".into())
		}
	};
	Ok(Some(MiningConfig {
		author,
		threads: params.threads,
	}))
}

/// Whether `args` (the command line) choose a transaction pool with `--pool-type`.
fn pool_type_given<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> bool {
	args.into_iter().any(|arg| {
		let arg = arg.to_string_lossy();
		arg == "--pool-type" || arg.starts_with("--pool-type=")
	})
}

/// The transaction pool for a chain without finality, unless `--pool-type` chose one.
///
/// Substrate's default, the fork-aware pool, keeps every transaction a block included in
/// its mempool until that block is finalized, or until 128 blocks later when finality
/// stalls. Proof of work never finalizes: each included transaction would hold its place in
/// the pool's byte limit for 128 blocks, and blocks of 1 MiB model updates fill that limit
/// in a few blocks, after which every new update is refused ("Immediately Dropped ...
/// because of the limit") and the chain mines empty blocks (measured: the load run at
/// `MaxBlobSize`, docs/reliability.md). The single-state pool drops what the best chain
/// included and takes back what a reorg retracted.
fn choose_pool(run: &mut sc_cli::RunCmd, given: bool) {
	if !given {
		run.pool_config.pool_type = sc_cli::TransactionPoolType::SingleState;
	}
}

/// Entry point.
pub fn run() -> sc_cli::Result<()> {
	let mut cli = Cli::from_args();
	choose_pool(&mut cli.run, pool_type_given(std::env::args_os()));

	match &cli.subcommand {
		Some(Subcommand::Key(cmd)) => cmd.run(&cli),
		Some(Subcommand::ExportChainSpec(cmd)) => {
			let spec = cli.load_spec(&cmd.chain)?;
			cmd.run(spec)
		}
		Some(Subcommand::CheckBlock(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents {
					client,
					task_manager,
					import_queue,
					..
				} = service::new_partial(&config)?;
				Ok((cmd.run(client, import_queue), task_manager))
			})
		}
		Some(Subcommand::ExportBlocks(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents {
					client,
					task_manager,
					..
				} = service::new_partial(&config)?;
				Ok((cmd.run(client, config.database), task_manager))
			})
		}
		Some(Subcommand::ExportState(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents {
					client,
					task_manager,
					..
				} = service::new_partial(&config)?;
				Ok((cmd.run(client, config.chain_spec), task_manager))
			})
		}
		Some(Subcommand::ImportBlocks(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents {
					client,
					task_manager,
					import_queue,
					..
				} = service::new_partial(&config)?;
				Ok((cmd.run(client, import_queue), task_manager))
			})
		}
		Some(Subcommand::PurgeChain(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run(config.database))
		}
		Some(Subcommand::Revert(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.async_run(|config| {
				let PartialComponents {
					client,
					task_manager,
					backend,
					..
				} = service::new_partial(&config)?;
				Ok((cmd.run(client, backend, None), task_manager))
			})
		}
		Some(Subcommand::ChainInfo(cmd)) => {
			let runner = cli.create_runner(cmd)?;
			runner.sync_run(|config| cmd.run::<Block>(&config))
		}
		None => {
			let mining = mining_config(&cli.mining, cli.run.shared_params.dev)?;
			let runner = cli.create_runner(&cli.run)?;
			runner.run_node_until_exit(|config| async move {
				match config.network.network_backend {
					sc_network::config::NetworkBackendType::Libp2p => service::new_full::<
						sc_network::NetworkWorker<
							Block,
							<Block as sp_runtime::traits::Block>::Hash,
						>,
					>(config, mining)
					.map_err(sc_cli::Error::Service),
					sc_network::config::NetworkBackendType::Litep2p => {
						service::new_full::<sc_network::Litep2pNetworkBackend>(config, mining)
							.map_err(sc_cli::Error::Service)
					}
				}
			})
		}
	}
}

#[cfg(test)]
mod tests {
	use super::*;
	fn parsed(args: &[&str]) -> Cli {
		let mut cli = <Cli as clap::Parser>::parse_from(args);
		choose_pool(
			&mut cli.run,
			pool_type_given(args.iter().map(std::ffi::OsString::from)),
		);
		cli
	}

	#[test]
	fn the_node_runs_the_single_state_pool_unless_told_otherwise() {
		let default = parsed(&["blade-fl-node", "--dev"]);
		assert!(matches!(
			default.run.pool_config.pool_type,
			sc_cli::TransactionPoolType::SingleState
		));
		for args in [
			&["blade-fl-node", "--dev", "--pool-type", "fork-aware"][..],
			&["blade-fl-node", "--dev", "--pool-type=fork-aware"][..],
		] {
			assert!(matches!(
				parsed(args).run.pool_config.pool_type,
				sc_cli::TransactionPoolType::ForkAware
			));
		}
	}
}
