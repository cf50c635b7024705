//! # Difficulty pallet
//!
//! Keeps the proof-of-work difficulty of the BLADE-FL chain and retargets it every block.
//!
//! ## Overview
//!
//! The node's PoW algorithm (`blade-pow`) never decides the difficulty itself: it reads
//! [`Pallet::difficulty`] through the `sp_consensus_pow::DifficultyApi` runtime API at the
//! parent block. This pallet records each block's timestamp (it is the runtime's
//! `pallet_timestamp::Config::OnTimestampSet`) in a window of the last
//! [`Config::WindowSize`] blocks and moves the difficulty toward
//! [`Config::TargetBlockTime`], damped by [`Config::Damping`], clamped per block by
//! [`Config::MaxChangePerBlock`] and bounded by [`Config::MinDifficulty`] /
//! [`Config::MaxDifficulty`]. The maths lives in [`retarget`].
//!
//! Target time, damping, clamp and bounds are `Get` types: the runtime feeds them from
//! `pallet-parameters`, so Root or a council majority can change them at run time. The
//! difficulty itself can be reset by [`Config::AdminOrigin`] with
//! [`Pallet::set_difficulty`].
//!
//! ## Calls
//! * [`Pallet::set_difficulty`]: governance sets the current difficulty.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

// Also in the pallet's own tests: `impl_benchmark_test_suite!` runs every benchmark once
// against the mock in the same build as the other tests (scripts/test).
#[cfg(any(feature = "runtime-benchmarks", test))]
mod benchmarking;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod mock;
pub mod retarget;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
pub mod weights;

pub use weights::WeightInfo;

// FRAME's macro expansion calls `expect` on paths it proves infallible; our own code in
// this module uses neither `expect` nor `unwrap`.
#[allow(clippy::expect_used)]
#[frame_support::pallet]
pub mod pallet {
	use super::{retarget, WeightInfo};
	use frame_support::{pallet_prelude::*, traits::OnTimestampSet};
	use frame_system::pallet_prelude::*;
	use sp_core::U256;
	use sp_runtime::{traits::UniqueSaturatedInto, Perbill};

	const STORAGE_VERSION: StorageVersion = StorageVersion::new(0);

	#[pallet::pallet]
	#[pallet::storage_version(STORAGE_VERSION)]
	pub struct Pallet<T>(_);

	#[pallet::config]
	pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
		/// Desired mean block time in milliseconds.
		type TargetBlockTime: Get<u64>;
		/// Smallest difficulty the retarget may produce (at least 1).
		type MinDifficulty: Get<u128>;
		/// Largest difficulty the retarget may produce.
		type MaxDifficulty: Get<u128>;
		/// Damping factor: each block moves `1/Damping` of the way toward the target.
		type Damping: Get<u32>;
		/// Largest relative change of the difficulty in one block.
		type MaxChangePerBlock: Get<Perbill>;
		/// Number of recent block timestamps averaged; at least 2.
		#[pallet::constant]
		type WindowSize: Get<u32>;
		/// Origin allowed to set the difficulty directly (Root or a council majority).
		type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
		/// Weights of this pallet's calls and hook.
		type WeightInfo: WeightInfo;
	}

	/// Difficulty the next block must meet.
	#[pallet::storage]
	pub type CurrentDifficulty<T> = StorageValue<_, U256, ValueQuery>;

	/// Timestamps (ms) of the most recent blocks, oldest first.
	#[pallet::storage]
	pub type RecentTimestamps<T: Config> =
		StorageValue<_, BoundedVec<u64, T::WindowSize>, ValueQuery>;

	#[pallet::genesis_config]
	#[derive(frame_support::DefaultNoBound)]
	pub struct GenesisConfig<T: Config> {
		/// Difficulty of block #1.
		pub initial_difficulty: u128,
		#[serde(skip)]
		pub _config: core::marker::PhantomData<T>,
	}

	#[pallet::genesis_build]
	impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
		fn build(&self) {
			CurrentDifficulty::<T>::put(U256::from(self.initial_difficulty.max(1)));
		}
	}

	#[pallet::event]
	#[pallet::generate_deposit(pub(super) fn deposit_event)]
	pub enum Event<T: Config> {
		/// Governance set the difficulty; the timestamp window was cleared.
		DifficultySet { old: U256, new: U256 },
	}

	#[pallet::error]
	pub enum Error<T> {
		/// The requested difficulty is outside `[MinDifficulty, MaxDifficulty]`. Change the
		/// bounds first (through the parameters pallet) or pick a value inside them.
		DifficultyOutOfBounds,
	}

	#[pallet::hooks]
	impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
		fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
			// `on_timestamp_set` runs inside the timestamp inherent, which does not account
			// for it; reserve its weight here.
			T::WeightInfo::on_timestamp_set()
		}

		fn integrity_test() {
			assert!(
				T::WindowSize::get() >= 2,
				"the retarget window needs two timestamps"
			);
		}

		#[cfg(feature = "try-runtime")]
		fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
			Self::do_try_state()
		}
	}

	#[pallet::call]
	impl<T: Config> Pallet<T> {
		/// Set the difficulty of the next block.
		///
		/// - Origin: [`Config::AdminOrigin`] (Root or a council majority in the runtime).
		/// - Clears the timestamp window so the old block times do not immediately undo
		///   the change.
		/// - Emits [`Event::DifficultySet`].
		/// - Errors: [`Error::DifficultyOutOfBounds`] outside the configured bounds.
		#[pallet::call_index(0)]
		#[pallet::weight(T::WeightInfo::set_difficulty())]
		pub fn set_difficulty(origin: OriginFor<T>, difficulty: u128) -> DispatchResult {
			T::AdminOrigin::ensure_origin(origin)?;
			let min = T::MinDifficulty::get().max(1);
			let max = T::MaxDifficulty::get();
			ensure!(
				difficulty >= min && difficulty <= max,
				Error::<T>::DifficultyOutOfBounds
			);
			let new = U256::from(difficulty);
			let old = CurrentDifficulty::<T>::get();
			CurrentDifficulty::<T>::put(new);
			RecentTimestamps::<T>::kill();
			Self::deposit_event(Event::DifficultySet { old, new });
			Ok(())
		}
	}

	impl<T: Config> Pallet<T> {
		/// Difficulty the next block must meet (what the runtime API returns).
		pub fn difficulty() -> U256 {
			CurrentDifficulty::<T>::get().max(U256::one())
		}

		/// Current retarget parameters, as read from the `Get` types.
		pub fn params() -> retarget::RetargetParams {
			retarget::RetargetParams {
				target_block_time_ms: T::TargetBlockTime::get(),
				damping: T::Damping::get(),
				max_change: T::MaxChangePerBlock::get(),
				min: U256::from(T::MinDifficulty::get()),
				max: U256::from(T::MaxDifficulty::get()),
			}
		}

		/// Record a block timestamp and retarget.
		pub(crate) fn note_timestamp(now: u64) {
			let mut window = RecentTimestamps::<T>::get();
			// Timestamps are monotonic in the runtime; a lower one would be a bug upstream.
			let now = window.last().map_or(now, |last| now.max(*last));
			if window.is_full() && !window.is_empty() {
				window.remove(0);
			}
			if window.try_push(now).is_err() {
				// Unreachable after the removal above; keep the old window rather than panic.
				return;
			}
			if let Some(observed) = retarget::mean_block_time(&window) {
				let next = retarget::next_difficulty(
					CurrentDifficulty::<T>::get(),
					observed,
					&Self::params(),
				);
				CurrentDifficulty::<T>::put(next);
			}
			RecentTimestamps::<T>::put(window);
		}

		/// Storage invariants, checked by `try-runtime` and after every unit test.
		#[cfg(any(feature = "try-runtime", feature = "std", test))]
		pub fn do_try_state() -> Result<(), sp_runtime::TryRuntimeError> {
			ensure!(
				!CurrentDifficulty::<T>::get().is_zero(),
				"difficulty is zero"
			);
			let window = RecentTimestamps::<T>::get();
			ensure!(
				window.windows(2).all(|pair| pair[0] <= pair[1]),
				"timestamp window is not sorted"
			);
			Ok(())
		}
	}

	impl<T: Config, Moment: UniqueSaturatedInto<u64>> OnTimestampSet<Moment> for Pallet<T> {
		fn on_timestamp_set(moment: Moment) {
			Self::note_timestamp(moment.unique_saturated_into());
		}
	}
}
