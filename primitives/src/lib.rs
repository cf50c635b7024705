//! # BLADE-FL primitives
//!
//! Code the runtime and the off-chain trainer must compute **bit for bit the same**, in one
//! `no_std` crate without floating-point arithmetic:
//!
//! - [`blob`]: the model-update blob format (28-byte header, then `f32`, `f16` or `int8`
//!   payload), strict parsing that rejects malformed, oversized and non-finite blobs, and
//!   conversion of payload values to Q24 fixed point straight from their bit patterns;
//! - [`pn`]: pseudo-noise chips (±1) from a 256-bit secret seed, Blake2b-256 in counter
//!   mode, and the seed commitment published before the seed is revealed;
//! - [`correlation`]: normalised correlation of fixed-point values with PN chips, in
//!   integer arithmetic, as a [`correlation::Correlation`] in parts per billion;
//! - [`verdict`]: the runtime's verdicts on an update (copy proof after removing the
//!   accused's own watermark, with a sign statistic no large value can sway; watermark
//!   strength; the task's norm bound) and the sub-linear contribution weight;
//! - [`traits`]: the [`traits::Reputation`] interface between the task and reputation
//!   pallets.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod blob;
pub mod correlation;
pub mod pn;
pub mod traits;
pub mod verdict;
