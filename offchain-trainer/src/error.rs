//! The library's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the trainer library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
	/// A file could not be read.
	#[error("cannot read {path}: {source}")]
	Io {
		/// The file.
		path: PathBuf,
		/// The cause.
		source: std::io::Error,
	},
	/// A data file is not in the expected format.
	#[error("{path}: {reason}")]
	BadData {
		/// The file.
		path: PathBuf,
		/// What is wrong.
		reason: String,
	},
	/// A data file's content differs from the published data set.
	#[error("{path}: SHA-256 {actual} differs from the expected {expected} (corrupt or a different file)")]
	Checksum {
		/// The file.
		path: PathBuf,
		/// Expected digest.
		expected: String,
		/// Actual digest.
		actual: String,
	},
	/// Arguments that cannot work (empty inputs, mismatched lengths, bad parameters).
	#[error("invalid input: {0}")]
	Invalid(String),
	/// libtorch reported an error.
	#[error("libtorch: {0}")]
	Torch(String),
	/// A model-update blob was rejected by the shared codec.
	#[error("malformed blob: {0:?}")]
	Blob(blade_fl_primitives::blob::BlobError),
	/// The node could not be reached or answered something that is not JSON-RPC.
	#[error("{method}: cannot talk to the node: {reason}")]
	Transport {
		/// The RPC method.
		method: String,
		/// What failed.
		reason: String,
	},
	/// The node stayed unreachable for the whole retry budget.
	#[error("node at {url} unreachable for {waited:?} (last error: {last}); is it running?")]
	Unreachable {
		/// The endpoint.
		url: String,
		/// How long the client retried.
		waited: std::time::Duration,
		/// The last transport error.
		last: String,
	},
	/// The node answered with a JSON-RPC error.
	#[error("{method}: node refused (code {code}): {message}")]
	Rpc {
		/// The RPC method.
		method: String,
		/// JSON-RPC error code.
		code: i64,
		/// The node's message.
		message: String,
	},
	/// A confirmed extrinsic failed on chain.
	#[error("{call} failed on chain: {error}")]
	Dispatch {
		/// The call, e.g. `FlTasks.submit_update`.
		call: String,
		/// The dispatch error, e.g. `FlTasks::WrongPhase`.
		error: String,
	},
	/// The chain returned bytes that do not decode as this runtime's types (a different
	/// runtime version, or corruption).
	#[error("cannot decode {what}: {reason}")]
	Decode {
		/// What was decoded.
		what: String,
		/// The decoder's message.
		reason: String,
	},
	/// Waited too long for something on chain.
	/// The trainer will not take part in a task (for example: it cannot meet the task's
	/// privacy floor).
	#[error("refusing the task: {0}")]
	Refused(String),
	#[error("timed out waiting for {0}")]
	Timeout(String),
}

/// Result with the library's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(feature = "torch")]
impl From<tch::TchError> for Error {
	fn from(e: tch::TchError) -> Self {
		Error::Torch(e.to_string())
	}
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
	Error::Invalid(message.into())
}
