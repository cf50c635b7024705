//! What a trainer must not forget, persisted in a local directory so a killed trainer
//! resumes where it stopped: its secret PN seeds (a seed lost before its reveal costs a
//! missed-reveal penalty), the blobs it submitted, and its progress per task.
//!
//! One JSON file per task, `task-<id>.json`, written atomically (temporary file, `fsync`,
//! rename) before the commitment or update it protects is sent to the chain.

use std::{
	collections::BTreeMap,
	io::Write,
	path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Progress of one task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskState {
	/// The task.
	pub task: u64,
	/// Seeds by commitment (both hex), so any commitment the chain shows can be opened.
	pub seeds: BTreeMap<String, String>,
	/// Hex Blake2-256 of the blob submitted per round.
	pub submitted: BTreeMap<u32, String>,
	/// Rounds whose seed was revealed.
	pub revealed: Vec<u32>,
	/// (round, attempt) pairs in which this trainer voted (a retried round is voted on
	/// again).
	pub voted: Vec<(u32, u8)>,
	/// Lazy reports sent, as `round/attempt/accused`.
	pub reported: Vec<String>,
	/// Rounds whose aggregate this trainer published.
	pub published: Vec<u32>,
	/// Test accuracy of the global model after each round.
	pub accuracy: BTreeMap<u32, f64>,
	/// The privacy plan's noise per round, fixed when the task started: a restart must
	/// plan the same (or refuse), so that a change of settings cannot overspend.
	pub privacy_plan: Vec<f64>,
	/// Rounds whose noisy update was released, with that round's planned noise: what a
	/// restarted trainer has already spent.
	pub privacy_releases: Vec<(u32, f64)>,
}

/// A directory of task states.
pub struct Store {
	dir: PathBuf,
}

fn io(path: &Path, source: std::io::Error) -> Error {
	Error::Io {
		path: path.to_path_buf(),
		source,
	}
}

impl Store {
	/// Open (creating) the state directory.
	pub fn open(dir: impl Into<PathBuf>) -> Result<Store> {
		let dir = dir.into();
		let mut builder = std::fs::DirBuilder::new();
		builder.recursive(true);
		#[cfg(unix)]
		{
			// Created owner-only; an existing directory keeps its mode.
			use std::os::unix::fs::DirBuilderExt;
			builder.mode(0o700);
		}
		builder.create(&dir).map_err(|e| io(&dir, e))?;
		Ok(Store { dir })
	}

	fn path(&self, task: u64) -> PathBuf {
		self.dir.join(format!("task-{task}.json"))
	}

	/// Path of a named blob of `task` (an update or an aggregate).
	pub fn blob_path(&self, task: u64, name: &str) -> PathBuf {
		self.dir.join(format!("task-{task}-{name}.blob"))
	}

	/// Save a blob atomically (owner-only, see [`write_private`]).
	pub fn save_blob(&self, task: u64, name: &str, bytes: &[u8]) -> Result<()> {
		write_private(&self.blob_path(task, name), bytes)
	}

	/// Whether a state file of `task` exists (this trainer bid on it before).
	pub fn has(&self, task: u64) -> bool {
		self.path(task).exists()
	}

	/// A saved blob, if there is one.
	pub fn load_blob(&self, task: u64, name: &str) -> Result<Option<Vec<u8>>> {
		let path = self.blob_path(task, name);
		match std::fs::read(&path) {
			Ok(bytes) => Ok(Some(bytes)),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
			Err(e) => Err(io(&path, e)),
		}
	}

	/// The saved state of `task`, or a fresh one.
	pub fn load(&self, task: u64) -> Result<TaskState> {
		let path = self.path(task);
		match std::fs::read(&path) {
			Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::BadData {
				path: path.clone(),
				reason: format!("corrupt trainer state ({e}); it holds unrevealed seeds, so it is not overwritten"),
			}),
			Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TaskState { task, ..Default::default() }),
			Err(e) => Err(io(&path, e)),
		}
	}

	/// Save `state` atomically (owner-only, see [`write_private`]).
	pub fn save(&self, state: &TaskState) -> Result<()> {
		let bytes = serde_json::to_vec_pretty(state).map_err(|e| Error::Invalid(e.to_string()))?;
		write_private(&self.path(state.task), &bytes)
	}
}

/// Write `bytes` to `path` atomically and durably, readable by the owner only: a
/// temporary file created with mode 0600, `fsync`ed, renamed over `path`, then the parent
/// directory `fsync`ed so the rename itself survives a crash. Secret seeds live in these
/// files.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
	let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
	tmp_name.push(".tmp");
	let tmp = path.with_file_name(tmp_name);
	let mut options = std::fs::OpenOptions::new();
	options.write(true).create(true).truncate(true);
	#[cfg(unix)]
	{
		use std::os::unix::fs::OpenOptionsExt;
		options.mode(0o600);
	}
	let mut file = options.open(&tmp).map_err(|e| io(&tmp, e))?;
	#[cfg(unix)]
	{
		// An older file may have been created with looser permissions.
		use std::os::unix::fs::PermissionsExt;
		file.set_permissions(std::fs::Permissions::from_mode(0o600))
			.map_err(|e| io(&tmp, e))?;
	}
	file.write_all(bytes).map_err(|e| io(&tmp, e))?;
	file.sync_all().map_err(|e| io(&tmp, e))?;
	std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
	#[cfg(unix)]
	if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
		std::fs::File::open(parent)
			.and_then(|d| d.sync_all())
			.map_err(|e| io(parent, e))?;
	}
	Ok(())
}

/// A fresh secret seed from the operating system's randomness.
pub fn fresh_seed() -> [u8; 32] {
	use rand::RngCore;
	let mut seed = [0u8; 32];
	rand::rngs::OsRng.fill_bytes(&mut seed);
	seed
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
	bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn state_survives_a_restart_and_corruption_is_refused() {
		let dir = tempfile::tempdir().unwrap();
		let store = Store::open(dir.path().join("state")).unwrap();
		let mut s = store.load(4).unwrap();
		assert_eq!(
			s,
			TaskState {
				task: 4,
				..Default::default()
			}
		);
		let seed = fresh_seed();
		assert_ne!(seed, fresh_seed());
		s.seeds.insert(hex(&[1; 32]), hex(&seed));
		s.submitted.insert(0, hex(&[2; 32]));
		s.revealed.push(0);
		store.save(&s).unwrap();
		// "Restart": a new handle reads the same state.
		let again = Store::open(dir.path().join("state")).unwrap();
		assert_eq!(again.load(4).unwrap(), s);
		assert!(!dir.path().join("state/task-4.json.tmp").exists());
		assert!(again.has(4) && !again.has(6));
		#[cfg(unix)]
		{
			use std::os::unix::fs::PermissionsExt;
			let mode = std::fs::metadata(dir.path().join("state/task-4.json"))
				.unwrap()
				.permissions()
				.mode();
			assert_eq!(mode & 0o777, 0o600, "seeds are readable by the owner only");
		}
		// Blobs too.
		assert_eq!(again.load_blob(4, "update-0-0").unwrap(), None);
		store.save_blob(4, "update-0-0", b"blob").unwrap();
		assert_eq!(
			again.load_blob(4, "update-0-0").unwrap().as_deref(),
			Some(&b"blob"[..])
		);
		// A state written by an older trainer (fewer fields) still loads.
		std::fs::write(
			dir.path().join("state/task-5.json"),
			br#"{"task": 5, "seeds": {}, "submitted": {}, "revealed": [], "voted": [[1, 0]]}"#,
		)
		.unwrap();
		assert_eq!(again.load(5).unwrap().voted, vec![(1, 0)]);
		std::fs::write(dir.path().join("state/task-4.json"), b"{ not json").unwrap();
		let e = again.load(4).unwrap_err().to_string();
		assert!(e.contains("corrupt trainer state"), "{e}");
	}
}
