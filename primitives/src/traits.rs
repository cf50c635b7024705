//! Traits that couple the federated-learning pallets loosely.
//!
//! The task pallet asks for reputation and reports behaviour through [`Reputation`]; any
//! pallet (or a test double) implementing it can stand behind.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_arithmetic::Perbill;

/// What a trainer did in one round, as judged by the chain.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum Behaviour {
	/// Included in the agreed aggregate and voted for it.
	Good,
	/// Voted for an aggregate other than the one the quorum agreed on.
	Dissent,
	/// Left out of the agreed aggregate (an outlier under the task's robust rule).
	Outlier,
	/// Missed the update submission or the seed reveal.
	Missed,
	/// Proven lazy: its update carries another trainer's PN watermark.
	Lazy,
}

/// A reputation system: a score in `[0, 1]` per account, moved by recorded behaviour.
pub trait Reputation<AccountId> {
	/// Current score of `who` (accounts never seen have the prior score).
	fn score(who: &AccountId) -> Perbill;
	/// Record one behaviour of `who`; returns the new score.
	fn record(who: &AccountId, behaviour: Behaviour) -> Perbill;
}

/// A constant reputation for tests: everybody scores one half, nothing is recorded.
impl<AccountId> Reputation<AccountId> for () {
	fn score(_: &AccountId) -> Perbill {
		Perbill::from_percent(50)
	}
	fn record(_: &AccountId, _: Behaviour) -> Perbill {
		Perbill::from_percent(50)
	}
}
