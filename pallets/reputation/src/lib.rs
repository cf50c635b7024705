//! # Reputation pallet
//!
//! A per-account reputation score in `[0, 1]` ([`Perbill`]) for BLADE-FL trainers, moved only
//! by behaviour the chain verified itself (see [`Behaviour`]).
//!
//! ## Model
//!
//! Beta reputation with exponential forgetting. Each account keeps two evidence counters,
//! `good` and `bad`, in milli-events. Recording a behaviour first decays both counters by
//! [`Config::Decay`] and then adds the behaviour's weight to one of them:
//!
//! | behaviour | counter | weight                      |
//! |-----------|---------|-----------------------------|
//! | Good      | good    | [`Config::GoodWeight`]      |
//! | Dissent   | bad     | [`Config::DissentWeight`]   |
//! | Outlier   | bad     | [`Config::OutlierWeight`]   |
//! | Missed    | bad     | [`Config::MissedWeight`]    |
//! | Lazy      | bad     | [`Config::LazyWeight`]      |
//!
//! The score is the mean of the Beta(good + 1, bad + 1) posterior:
//! `(good + 1000) / (good + bad + 2000)` with counters in milli-events, so an unknown
//! account scores exactly one half, and with decay `d < 1` old behaviour fades: the evidence
//! is bounded by `weight / (1 - d)` and a reformed trainer recovers.
//!
//! The pallet has no calls. The task pallet reads and writes it through
//! [`blade_fl_primitives::traits::Reputation`]; all weights and the decay are runtime
//! parameters that governance tunes.

#![cfg_attr(not(feature = "std"), no_std)]

pub use blade_fl_primitives::traits::{Behaviour, Reputation};
pub use pallet::*;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod mock;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;

/// Evidence counted for one account, in milli-events.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Default,
	codec::Encode,
	codec::Decode,
	codec::MaxEncodedLen,
	scale_info::TypeInfo,
)]
pub struct Evidence {
	/// Decayed weight of good behaviour.
	pub good: u64,
	/// Decayed weight of bad behaviour.
	pub bad: u64,
}

/// One event of evidence, in milli-events: the Beta prior adds one of each.
pub const PRIOR: u64 = 1_000;

impl Evidence {
	/// Posterior mean `(good + 1) / (good + bad + 2)` in events.
	pub fn score(&self) -> sp_runtime::Perbill {
		let good = self.good.saturating_add(PRIOR);
		let total = self.good.saturating_add(self.bad).saturating_add(2 * PRIOR);
		sp_runtime::Perbill::from_rational(good, total)
	}
}

#[allow(clippy::expect_used)] // FRAME macro expansions
#[frame_support::pallet]
pub mod pallet {
	use super::*;
	use frame_support::pallet_prelude::*;
	use frame_system::pallet_prelude::BlockNumberFor;
	use sp_runtime::Perbill;

	#[pallet::pallet]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Share of the old evidence kept each time a behaviour is recorded.
		type Decay: Get<Perbill>;
		/// Weight of a good round, in milli-events.
		type GoodWeight: Get<u32>;
		/// Weight of a dissenting aggregate vote, in milli-events.
		type DissentWeight: Get<u32>;
		/// Weight of being left out of the agreed aggregate, in milli-events.
		type OutlierWeight: Get<u32>;
		/// Weight of a missed update or seed reveal, in milli-events.
		type MissedWeight: Get<u32>;
		/// Weight of a lazy-client proof, in milli-events.
		type LazyWeight: Get<u32>;
	}

	/// Evidence per account; accounts without an entry have the prior score of one half.
	#[pallet::storage]
	pub type Records<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, Evidence>;

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// A behaviour of `who` was recorded; `score` is the new reputation.
		Recorded {
			/// The account.
			who: T::AccountId,
			/// What it did.
			behaviour: Behaviour,
			/// Its reputation afterwards.
			score: Perbill,
		},
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	impl<T: Config> Pallet<T> {
		/// Reputation of `who`.
		pub fn score(who: &T::AccountId) -> Perbill {
			Records::<T>::get(who).unwrap_or_default().score()
		}

		/// Evidence after recording `behaviour` on top of `evidence`.
		pub fn updated(evidence: Evidence, behaviour: Behaviour) -> Evidence {
			let decay = T::Decay::get();
			let mut next = Evidence {
				good: decay.mul_floor(evidence.good),
				bad: decay.mul_floor(evidence.bad),
			};
			let weight = u64::from(match behaviour {
				Behaviour::Good => T::GoodWeight::get(),
				Behaviour::Dissent => T::DissentWeight::get(),
				Behaviour::Outlier => T::OutlierWeight::get(),
				Behaviour::Missed => T::MissedWeight::get(),
				Behaviour::Lazy => T::LazyWeight::get(),
			});
			match behaviour {
				Behaviour::Good => next.good = next.good.saturating_add(weight),
				_ => next.bad = next.bad.saturating_add(weight),
			}
			next
		}

		/// Invariants: every stored record holds some evidence and scores within `[0, 1]`.
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			for (_, evidence) in Records::<T>::iter() {
				ensure!(
					evidence.good.saturating_add(evidence.bad) > 0,
					"a stored reputation record without evidence"
				);
				ensure!(evidence.score() <= Perbill::one(), "reputation above one");
			}
			Ok(())
		}
	}

	impl<T: Config> Reputation<T::AccountId> for Pallet<T> {
		fn score(who: &T::AccountId) -> Perbill {
			Pallet::<T>::score(who)
		}

		fn record(who: &T::AccountId, behaviour: Behaviour) -> Perbill {
			let evidence = Self::updated(Records::<T>::get(who).unwrap_or_default(), behaviour);
			let score = evidence.score();
			if evidence.good.saturating_add(evidence.bad) == 0 {
				Records::<T>::remove(who);
			} else {
				Records::<T>::insert(who, evidence);
			}
			Self::deposit_event(Event::Recorded {
				who: who.clone(),
				behaviour,
				score,
			});
			score
		}
	}
}
