//! BLADE-FL node: a proof-of-work Substrate chain for decentralised federated learning.

// `sc_cli::Error` / `sc_service::Error` are upstream types we return as they are.
#![allow(clippy::result_large_err)]

mod chain_spec;
mod cli;
mod command;
mod mining;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
	command::run()
}
