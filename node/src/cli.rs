//! Command-line interface: the standard Substrate node flags plus mining flags.

use sc_cli::RunCmd;

/// Mining options (`--mine`, `--threads`, `--author`).
#[derive(Debug, Clone, clap::Args)]
pub struct MiningParams {
	/// Mine blocks with this node. Implied by `--dev`.
	#[arg(long)]
	pub mine: bool,

	/// Number of CPU threads searching for nonces.
	#[arg(long, value_name = "N", default_value_t = 1)]
	pub threads: usize,

	/// SS58 address credited with the block reward and fees of blocks this node mines.
	/// Written raw into each block's `pow_` pre-runtime digest. Defaults to Alice with
	/// `--dev`; required with `--mine` otherwise.
	#[arg(long, value_name = "SS58")]
	pub author: Option<String>,
}

/// The BLADE-FL node.
///
/// Start a development chain that mines as Alice on one thread:
/// `blade-fl-node --dev`. Join another machine's chain as a miner:
/// `blade-fl-node --chain local --mine --author <SS58> --bootnodes <multiaddr>`.
#[derive(Debug, clap::Parser)]
#[command(
	propagate_version = true,
	args_conflicts_with_subcommands = true,
	subcommand_negates_reqs = true
)]
pub struct Cli {
	/// Maintenance subcommands; without one the node runs.
	#[command(subcommand)]
	pub subcommand: Option<Subcommand>,

	/// Standard Substrate node options (`--chain`, `--base-path`, `--rpc-port`, ...).
	#[clap(flatten)]
	pub run: RunCmd,

	/// Proof-of-work mining options.
	#[clap(flatten)]
	pub mining: MiningParams,
}

/// Maintenance subcommands.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
	/// Key management (generate keys, inspect them, derive a node key).
	#[command(subcommand)]
	Key(sc_cli::KeySubcommand),

	/// Write the chain specification of `--chain` as JSON (add `--raw` for the raw form).
	ExportChainSpec(sc_cli::ExportChainSpecCmd),

	/// Validate blocks read from a file or stdin.
	CheckBlock(sc_cli::CheckBlockCmd),

	/// Export blocks to a file.
	ExportBlocks(sc_cli::ExportBlocksCmd),

	/// Export the state of a block as a chain specification.
	ExportState(sc_cli::ExportStateCmd),

	/// Import blocks from a file.
	ImportBlocks(sc_cli::ImportBlocksCmd),

	/// Remove the whole chain database.
	PurgeChain(sc_cli::PurgeChainCmd),

	/// Revert the chain to a previous state.
	Revert(sc_cli::RevertCmd),

	/// Database metadata: best and genesis block, finalized head.
	ChainInfo(sc_cli::ChainInfoCmd),
}
