//! Runtime API through which trainers read task and round state in one call each.

use crate::types::*;
use alloc::vec::Vec;
use codec::Codec;
use sp_runtime::Perbill;

sp_api::decl_runtime_apis! {
	/// Read access to federated-learning tasks for off-chain trainers and UIs.
	pub trait FlTasksApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// Live tasks and the block at which their current phase ends.
		fn active_tasks() -> Vec<(TaskId, BlockNumber)>;
		/// A live task.
		fn task(task: TaskId) -> Option<TaskView<AccountId, Balance, BlockNumber>>;
		/// Bids of a task in bidding.
		fn bids(task: TaskId) -> Vec<(AccountId, Bid<Balance>)>;
		/// Selected trainers with their stake, samples, commitment and accrued rewards.
		fn participants(task: TaskId) -> Vec<(AccountId, Participant<Balance>)>;
		/// This round's updates: hash, size, location, next commitment, revealed seed.
		fn updates(task: TaskId) -> Vec<(AccountId, UpdateRecord<BlockNumber>)>;
		/// This round's aggregate proposals.
		fn tallies(task: TaskId) -> Vec<Tally<AccountId>>;
		/// Global model of a finalised round.
		fn global_model(task: TaskId, round: RoundIndex)
			-> Option<GlobalModel<AccountId, Balance, BlockNumber>>;
		/// Reputation of an account.
		fn reputation(who: AccountId) -> Perbill;
	}
}
