//! Runtime API through which trainers read task and round state in one call each.

use crate::types::*;
use alloc::vec::Vec;
use codec::Codec;
use sp_core::H256;
use sp_runtime::Perbill;

sp_api::decl_runtime_apis! {
	/// Read access to federated-learning tasks for off-chain trainers and UIs. Results are
	/// named structs (wallets and polkadot-js apps show their field names); they encode as
	/// the `(account, record)` tuples of version 1.
	#[api_version(2)]
	pub trait FlTasksApi<AccountId, Balance, BlockNumber>
	where
		AccountId: Codec,
		Balance: Codec,
		BlockNumber: Codec,
	{
		/// Live tasks and the block at which their current phase ends.
		fn active_tasks() -> Vec<ActiveTask<BlockNumber>>;
		/// A live task.
		fn task(task: TaskId) -> Option<TaskView<AccountId, Balance, BlockNumber>>;
		/// Bids of a task in bidding.
		fn bids(task: TaskId) -> Vec<BidEntry<AccountId, Balance>>;
		/// Selected trainers with their stake, samples, commitment and accrued rewards.
		fn participants(task: TaskId) -> Vec<ParticipantEntry<AccountId, Balance>>;
		/// This round's updates: hash, size, location, next commitment, revealed seed.
		fn updates(task: TaskId) -> Vec<UpdateEntry<AccountId, BlockNumber>>;
		/// This round's aggregate proposals.
		fn tallies(task: TaskId) -> Vec<Tally<AccountId>>;
		/// Global model of a finalised round.
		fn global_model(task: TaskId, round: RoundIndex)
			-> Option<GlobalModel<AccountId, Balance, BlockNumber>>;
		/// Reputation of an account.
		fn reputation(who: AccountId) -> Perbill;
		/// The commitment `bid` (and `submit_update`'s `next_commitment`) expects from
		/// `who` for PN seed `seed`: `Blake2b-256("blade-fl/commit1" || who || seed)`.
		/// Lets a bid be made from polkadot-js apps (Developer > Runtime calls) without
		/// outside tools. The seed stays secret until it is revealed: ask only a node you
		/// run yourself.
		fn seed_commitment(who: AccountId, seed: [u8; 32]) -> H256;
	}
}
