//! # Block reward pallet
//!
//! Pays the proof-of-work author of every block a reward minted from nothing.
//!
//! ## Overview
//!
//! BLADE-FL has no validator set: whoever finds the seal authors the block. The miner
//! writes its raw 32-byte account id into a `PreRuntime(*b"pow_")` digest (the node's
//! `--author`), [`PowAuthor`] reads it back as `pallet_authorship::Config::FindAuthor`, and
//! this pallet, as `pallet_authorship::Config::EventHandler`, mints
//! [`Config::BlockReward`] to that account. The reward is a `Get` type so the runtime can
//! feed it from `pallet-parameters` and governance can change it at run time.
//!
//! Transaction fees are routed to the same author by the runtime's fee handler; this
//! pallet only mints the block reward and counts it in [`TotalMinted`].

#![cfg_attr(not(feature = "std"), no_std)]

pub use pallet::*;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod mock;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

use codec::{Decode, DecodeAll};
use frame_support::{traits::FindAuthor, ConsensusEngineId};
use sp_consensus_pow::POW_ENGINE_ID;

/// Finds the author in the `PreRuntime(*b"pow_", account)` digest written by the miner.
///
/// The payload must decode as exactly one `AccountId` (32 raw bytes for `AccountId32`);
/// anything else means "no author" and no reward.
pub struct PowAuthor<AccountId>(core::marker::PhantomData<AccountId>);

impl<AccountId: Decode> FindAuthor<AccountId> for PowAuthor<AccountId> {
	fn find_author<'a, I>(digests: I) -> Option<AccountId>
	where
		I: 'a + IntoIterator<Item = (ConsensusEngineId, &'a [u8])>,
	{
		digests.into_iter().find_map(|(engine, mut data)| {
			if engine == POW_ENGINE_ID {
				AccountId::decode_all(&mut data).ok()
			} else {
				None
			}
		})
	}
}

// FRAME's macro expansion calls `expect` on paths it proves infallible; our own code in
// this module uses neither `expect` nor `unwrap`.
#[allow(clippy::expect_used)]
#[frame_support::pallet]
pub mod pallet {
	use frame_support::{pallet_prelude::*, traits::fungible};
	use frame_system::pallet_prelude::*;
	use sp_runtime::{traits::Zero, Saturating};

	/// Balance type of the configured currency.
	pub type BalanceOf<T> = <<T as Config>::Currency as fungible::Inspect<
		<T as frame_system::Config>::AccountId,
	>>::Balance;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Currency the reward is minted in.
		type Currency: fungible::Mutate<Self::AccountId>;
		/// Reward per block (a governance parameter in the runtime).
		type BlockReward: Get<BalanceOf<Self>>;
	}

	/// Sum of all block rewards minted so far.
	#[pallet::storage]
	pub type TotalMinted<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// `author` mined this block and received `amount`.
		Rewarded {
			author: T::AccountId,
			amount: BalanceOf<T>,
		},
		/// The reward could not be minted (for example below the existential deposit for a
		/// new account); nothing was paid.
		RewardFailed {
			author: T::AccountId,
			amount: BalanceOf<T>,
		},
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
			// `pallet_authorship` calls `note_author` from its own `on_initialize` without
			// accounting for it: account, total issuance and `TotalMinted` are read and written.
			T::DbWeight::get().reads_writes(3, 3)
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	impl<T: Config> Pallet<T> {
		fn reward(author: T::AccountId) {
			let amount = T::BlockReward::get();
			if amount.is_zero() {
				return;
			}
			match <T::Currency as fungible::Mutate<_>>::mint_into(&author, amount) {
				Ok(minted) => {
					TotalMinted::<T>::mutate(|total| *total = total.saturating_add(minted));
					Self::deposit_event(Event::Rewarded {
						author,
						amount: minted,
					});
				}
				Err(error) => {
					log::warn!(target: "runtime::block-reward", "reward not minted: {error:?}");
					Self::deposit_event(Event::RewardFailed { author, amount });
				}
			}
		}

		/// Invariant: the minted total never exceeds the total issuance.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			use fungible::Inspect;
			ensure!(
				TotalMinted::<T>::get() <= T::Currency::total_issuance(),
				"minted rewards exceed total issuance"
			);
			Ok(())
		}
	}

	impl<T: Config> pallet_authorship::EventHandler<T::AccountId, BlockNumberFor<T>> for Pallet<T> {
		fn note_author(author: T::AccountId) {
			Self::reward(author);
		}
	}
}
