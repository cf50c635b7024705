//! Where a trainer's signing key comes from: a node keystore (`blade-fl-node key insert
//! --key-type bltr`), a key file, or a secret URI (development; also the `BLADE_SURI`
//! environment variable).
//!
//! A node keystore holds one file per key, named `hex(key type) ++ hex(public key)`, whose
//! content is the secret phrase or seed as a JSON string; a keystore password is the
//! derivation password of that phrase. The file name's public key lets a wrong password be
//! told apart from a wrong key: loading checks that the derived key is the one named.
//! A key file holds a secret URI on its first line and must not be readable by group or
//! others (like an SSH key).

use std::path::{Path, PathBuf};

use sp_core::{sr25519, Pair};

use crate::error::{invalid, Error, Result};

/// Key type of trainer keys in a node keystore (`--key-type bltr`).
pub const KEY_TYPE: [u8; 4] = *b"bltr";

/// Where to find the signing key.
#[derive(Clone, Debug, PartialEq)]
pub enum KeySource {
	/// A secret URI (`//Bob`, a phrase, or a `0x` seed), optionally with a password.
	Suri(String),
	/// A file whose first line is a secret URI (mode 0600 or stricter).
	File(PathBuf),
	/// A node keystore directory; `account` picks a key when it holds several (SS58 or hex
	/// public key).
	Keystore {
		/// The directory (`<base-path>/chains/<chain>/keystore`, or `--keystore-path`).
		dir: PathBuf,
		/// Which key, when there are several.
		account: Option<String>,
	},
}

fn io(path: &Path, source: std::io::Error) -> Error {
	Error::Io {
		path: path.to_path_buf(),
		source,
	}
}

/// Load the signing key from `source`, with the keystore `password` if any.
pub fn load(source: &KeySource, password: Option<&str>) -> Result<sr25519::Pair> {
	match source {
		KeySource::Suri(suri) => sr25519::Pair::from_string(suri, password)
			.map_err(|e| invalid(format!("secret URI: {e:?}"))),
		KeySource::File(path) => {
			check_private(path)?;
			let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
			let suri = text.lines().next().unwrap_or("").trim();
			sr25519::Pair::from_string(suri, password)
				.map_err(|e| invalid(format!("key file {}: {e:?}", path.display())))
		}
		KeySource::Keystore { dir, account } => from_keystore(dir, account.as_deref(), password),
	}
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<()> {
	use std::os::unix::fs::PermissionsExt;
	let mode = std::fs::metadata(path)
		.map_err(|e| io(path, e))?
		.permissions()
		.mode();
	if mode & 0o077 != 0 {
		return Err(invalid(format!(
			"key file {} is readable by others (mode {:o}): chmod 600 it",
			path.display(),
			mode & 0o777
		)));
	}
	Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<()> {
	Ok(())
}

fn from_keystore(
	dir: &Path,
	account: Option<&str>,
	password: Option<&str>,
) -> Result<sr25519::Pair> {
	let prefix = hex::encode(KEY_TYPE);
	let wanted = account.map(public_hex).transpose()?;
	let mut found: Vec<(String, PathBuf)> = Vec::new();
	for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
		let entry = entry.map_err(|e| io(dir, e))?;
		let name = entry.file_name().to_string_lossy().into_owned();
		let Some(public) = name.strip_prefix(&prefix) else {
			continue;
		};
		if public.len() == 64 && wanted.as_deref().is_none_or(|w| w == public) {
			found.push((public.to_string(), entry.path()));
		}
	}
	let (public, path) = match found.len() {
		0 => {
			return Err(invalid(format!(
				"no trainer key (type {}) {}in keystore {}: add one with `blade-fl-node key insert --keystore-path {} --key-type bltr --scheme sr25519`",
				String::from_utf8_lossy(&KEY_TYPE),
				account.map(|a| format!("for {a} ")).unwrap_or_default(),
				dir.display(),
				dir.display()
			)))
		}
		1 => found.remove(0),
		n => {
			return Err(invalid(format!(
				"{n} trainer keys in keystore {}: pick one with --account",
				dir.display()
			)))
		}
	};
	let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
	let phrase: String = serde_json::from_str(&text).map_err(|e| Error::BadData {
		path: path.clone(),
		reason: format!("not a keystore entry ({e})"),
	})?;
	let pair = sr25519::Pair::from_string(&phrase, password)
		.map_err(|e| invalid(format!("keystore entry {}: {e:?}", path.display())))?;
	if hex::encode(pair.public().0) != public {
		return Err(invalid(format!(
			"wrong keystore password for key {public} (or none given: set BLADE_KEY_PASSWORD or --password)"
		)));
	}
	Ok(pair)
}

/// Hex public key of an SS58 address or a hex public key.
fn public_hex(account: &str) -> Result<String> {
	use sp_core::crypto::Ss58Codec;
	if let Ok(public) = sr25519::Public::from_ss58check(account) {
		return Ok(hex::encode(public.0));
	}
	let hex = account.trim_start_matches("0x").to_lowercase();
	if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
		return Ok(hex);
	}
	Err(invalid(format!(
		"{account} is neither an SS58 address nor a hex public key"
	)))
}

/// Write a keystore entry the way `blade-fl-node key insert` does (for tests and tools).
pub fn insert(dir: &Path, phrase: &str, password: Option<&str>) -> Result<PathBuf> {
	let pair = sr25519::Pair::from_string(phrase, password)
		.map_err(|e| invalid(format!("secret URI: {e:?}")))?;
	std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
	let path = dir.join(format!(
		"{}{}",
		hex::encode(KEY_TYPE),
		hex::encode(pair.public().0)
	));
	let json = serde_json::to_string(phrase).map_err(|e| invalid(e.to_string()))?;
	crate::state::write_private(&path, json.as_bytes())?;
	Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	#[test]
	fn keystore_key_loads_and_a_wrong_password_is_named() {
		let dir = tempfile::tempdir().unwrap();
		let path = insert(dir.path(), "//Dave", Some("secret")).unwrap();
		let source = KeySource::Keystore {
			dir: dir.path().to_path_buf(),
			account: None,
		};
		let pair = load(&source, Some("secret")).unwrap();
		assert_eq!(
			pair.public(),
			sr25519::Pair::from_string("//Dave", Some("secret"))
				.unwrap()
				.public()
		);
		assert!(path
			.file_name()
			.unwrap()
			.to_string_lossy()
			.starts_with("626c7472"));
		let e = load(&source, Some("guess")).err().unwrap().to_string();
		assert!(e.contains("wrong keystore password"), "{e}");
		let e = load(&source, None).err().unwrap().to_string();
		assert!(e.contains("wrong keystore password"), "{e}");
		// Two keys: the account picks one; without it, a clear error.
		insert(dir.path(), "//Eve", None).unwrap();
		let e = load(&source, None).err().unwrap().to_string();
		assert!(e.contains("pick one with --account"), "{e}");
		let eve = sr25519::Pair::from_string("//Eve", None).unwrap().public();
		let picked = KeySource::Keystore {
			dir: dir.path().to_path_buf(),
			account: Some(sp_core::crypto::Ss58Codec::to_ss58check(&eve)),
		};
		assert_eq!(load(&picked, None).unwrap().public(), eve);
		let empty = tempfile::tempdir().unwrap();
		let e = load(
			&KeySource::Keystore {
				dir: empty.path().to_path_buf(),
				account: None,
			},
			None,
		)
		.err()
		.unwrap()
		.to_string();
		assert!(e.contains("key insert"), "{e}");
	}

	#[cfg(unix)]
	#[test]
	fn key_file_must_be_private() {
		use std::os::unix::fs::PermissionsExt;
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("key");
		std::fs::write(&path, "//Ferdie\n").unwrap();
		std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
		let e = load(&KeySource::File(path.clone()), None)
			.err()
			.unwrap()
			.to_string();
		assert!(e.contains("chmod 600"), "{e}");
		std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
		assert_eq!(
			load(&KeySource::File(path), None).unwrap().public(),
			sr25519::Pair::from_string("//Ferdie", None)
				.unwrap()
				.public()
		);
	}
}
