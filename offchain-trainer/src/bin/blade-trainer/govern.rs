//! `govern`: change chain parameters the two ways the runtime allows, as the demo does
//! mid-task: a council motion (propose, votes, close) and a sudo call.

use std::path::PathBuf;

use anyhow::{bail, Context};
use blade_fl_runtime::{
	configs::RuntimeParameters,
	dynamic_params::{fl, pow},
};
use blade_trainer::chain::{self, Client, RuntimeCall, RuntimeEvent};
use clap::Args;
use codec::Encode;
use frame_support::dispatch::GetDispatchInfo;
use sp_runtime::Perbill;

use crate::node::NodeArgs;

/// `govern` arguments.
#[derive(Args, Debug)]
pub struct GovernArgs {
	#[command(flatten)]
	pub node: NodeArgs,
	/// Wait until the best block reaches this number before acting.
	#[arg(long, default_value_t = 0)]
	pub at_block: u32,
	/// New target block time (milliseconds), set by a council motion: proposed by the
	/// first of --council, voted aye by a majority, closed.
	#[arg(long)]
	pub target_block_time_ms: Option<u64>,
	/// New lazy slash (percent of the stake), set by sudo.
	#[arg(long)]
	pub lazy_slash_percent: Option<u32>,
	/// Council members' secret URIs (in the presets: //Alice //Bob //Charlie).
	#[arg(long, num_args = 1.., default_values_t = ["//Alice".to_string(), "//Bob".to_string(), "//Charlie".to_string()])]
	pub council: Vec<String>,
	/// Sudo key's secret URI.
	#[arg(long, default_value = "//Alice")]
	pub sudo: String,
	/// Write what was changed, and at which block, as JSON here.
	#[arg(long)]
	pub out: Option<PathBuf>,
}

/// `client.execute(call)` (which fails on a dispatch error), with `what` as context.
fn execute(client: &mut Client, call: RuntimeCall, what: &str) -> anyhow::Result<chain::Confirmed> {
	client.execute(call).with_context(|| what.to_string())
}

/// Set the target block time by a council motion; returns the block it took effect in.
fn council_motion(args: &GovernArgs, ms: u64) -> anyhow::Result<u32> {
	let proposal = RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
		key_value: RuntimeParameters::Pow(pow::Parameters::TargetBlockTime(
			pow::TargetBlockTime,
			Some(ms),
		)),
	});
	let members = &args.council;
	if members.is_empty() {
		bail!("--council names nobody");
	}
	let threshold = members.len() as u32 / 2 + 1;
	let length_bound = proposal.encoded_size() as u32;
	let weight_bound = proposal.get_dispatch_info().call_weight;
	let mut proposer = args.node.signer(&members[0])?;
	let confirmed = execute(
		&mut proposer,
		RuntimeCall::Council(pallet_collective::Call::propose {
			threshold,
			proposal: Box::new(proposal),
			length_bound,
		}),
		"proposing the motion",
	)?;
	let (hash, index) = confirmed
		.events
		.iter()
		.find_map(|e| match e {
			RuntimeEvent::Council(pallet_collective::Event::Proposed {
				proposal_hash,
				proposal_index,
				..
			}) => Some((*proposal_hash, *proposal_index)),
			_ => None,
		})
		.context("no Council.Proposed event")?;
	tracing::info!(index, ?hash, threshold, "council motion proposed");
	for member in members.iter().take(threshold as usize) {
		let mut voter = args.node.signer(member)?;
		execute(
			&mut voter,
			RuntimeCall::Council(pallet_collective::Call::vote {
				proposal: hash,
				index,
				approve: true,
			}),
			&format!("vote of {member}"),
		)?;
	}
	let mut closer = args
		.node
		.signer(members.last().map_or(&members[0], |m| m))?;
	let confirmed = execute(
		&mut closer,
		RuntimeCall::Council(pallet_collective::Call::close {
			proposal_hash: hash,
			index,
			proposal_weight_bound: weight_bound,
			length_bound,
		}),
		"closing the motion",
	)?;
	if !confirmed.events.iter().any(|e| {
		matches!(
			e,
			RuntimeEvent::Council(pallet_collective::Event::Executed { result: Ok(()), .. })
		)
	}) {
		bail!(
			"the motion was closed but not executed: {:?}",
			confirmed.events
		);
	}
	Ok(confirmed.block_number)
}

/// Set the lazy slash by sudo; returns the block it took effect in.
fn sudo_lazy_slash(args: &GovernArgs, percent: u32) -> anyhow::Result<u32> {
	if percent > 100 {
		bail!("--lazy-slash-percent must be at most 100");
	}
	let call = RuntimeCall::Parameters(pallet_parameters::Call::set_parameter {
		key_value: RuntimeParameters::Fl(fl::Parameters::LazySlash(
			fl::LazySlash,
			Some(Perbill::from_percent(percent)),
		)),
	});
	let mut sudo = args.node.signer(&args.sudo)?;
	let confirmed = execute(
		&mut sudo,
		RuntimeCall::Sudo(pallet_sudo::Call::sudo {
			call: Box::new(call),
		}),
		"the sudo call",
	)?;
	if !confirmed.events.iter().any(|e| {
		matches!(
			e,
			RuntimeEvent::Sudo(pallet_sudo::Event::Sudid {
				sudo_result: Ok(())
			})
		)
	}) {
		bail!("sudo did not dispatch the call: {:?}", confirmed.events);
	}
	Ok(confirmed.block_number)
}

pub fn govern(args: GovernArgs) -> anyhow::Result<()> {
	let reader = args.node.reader()?;
	while reader.best_number()? < args.at_block {
		reader.wait_new_head(std::time::Duration::from_secs(30))?;
	}
	let mut record = serde_json::Map::new();
	if let Some(ms) = args.target_block_time_ms {
		let block = council_motion(&args, ms)?;
		println!("target block time set to {ms} ms by council motion (block {block})");
		record.insert(
			"target_block_time".into(),
			serde_json::json!({"ms": ms, "block": block, "by": "council motion"}),
		);
	}
	if let Some(percent) = args.lazy_slash_percent {
		let block = sudo_lazy_slash(&args, percent)?;
		println!("lazy slash set to {percent} % by sudo (block {block})");
		record.insert(
			"lazy_slash".into(),
			serde_json::json!({"percent": percent, "block": block, "by": "sudo"}),
		);
	}
	if let Some(path) = &args.out {
		std::fs::write(path, serde_json::to_vec_pretty(&record)?)
			.with_context(|| format!("writing {}", path.display()))?;
	}
	Ok(())
}
