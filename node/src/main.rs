//! BLADE-FL node: a proof-of-work Substrate chain for decentralised federated learning.

mod chain_spec;
mod cli;
mod command;
mod mining;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
