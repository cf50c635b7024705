//! Model-update blobs in the shared format of `blade_fl_primitives::blob`: encoding from
//! `f32` parameters with the f32, f16 or int8 codec, decoding back to `f32`, and the
//! Blake2-256 hash the chain records. Decoding runs the same strict parser as the runtime,
//! so anything the trainer accepts the chain accepts, and the other way round.

use blade_fl_primitives::blob::{blob_hash, Blob, BlobHeader, Codec, HEADER_LEN};

use crate::error::{invalid, Error, Result};

/// Encode `values` for `task` and `round` with `codec`.
///
/// Non-finite values are refused (the chain would reject the blob). The int8 codec uses
/// the symmetric scale `max |x| / 127` and rounds to nearest.
pub fn encode(task: u64, round: u32, codec: Codec, values: &[f32]) -> Result<Vec<u8>> {
	if let Some(i) = values.iter().position(|v| !v.is_finite()) {
		return Err(invalid(format!("parameter {i} is {}", values[i])));
	}
	let param_count =
		u32::try_from(values.len()).map_err(|_| invalid("more than 2^32 parameters"))?;
	let (scale, scale_bits) = match codec {
		Codec::Int8 => {
			let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
			let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
			(scale, scale.to_bits())
		}
		_ => (1.0, 0),
	};
	let header = BlobHeader {
		task,
		round,
		param_count,
		codec,
		scale_bits,
	};
	let mut out = Vec::with_capacity(HEADER_LEN + codec.width() * values.len());
	out.extend_from_slice(&header.encode());
	match codec {
		Codec::F32 => values
			.iter()
			.for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
		Codec::F16 => values
			.iter()
			.for_each(|v| out.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes())),
		Codec::Int8 => values
			.iter()
			.for_each(|v| out.push((v / scale).round().clamp(-127.0, 127.0) as i8 as u8)),
	}
	// f16 overflows to infinity above 65504: refuse rather than publish a blob the chain
	// rejects.
	Blob::parse(&out, out.len()).map_err(Error::Blob)?;
	Ok(out)
}

/// A validated blob's header and its values as `f32`.
pub fn decode(bytes: &[u8], max_len: usize) -> Result<(BlobHeader, Vec<f32>)> {
	let blob = Blob::parse(bytes, max_len).map_err(Error::Blob)?;
	let header = blob.header;
	let payload = blob.payload();
	let values: Vec<f32> = match header.codec {
		Codec::F32 => payload
			.chunks_exact(4)
			.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
			.collect(),
		Codec::F16 => payload
			.chunks_exact(2)
			.map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
			.collect(),
		Codec::Int8 => {
			let scale = f32::from_bits(header.scale_bits);
			payload
				.iter()
				.map(|b| f32::from(*b as i8) * scale)
				.collect()
		}
	};
	// The parser bounds the int8 scale so this cannot trigger; a model never receives an
	// infinity whatever the parser's future.
	if values.iter().any(|v| !v.is_finite()) {
		return Err(invalid("a decoded value is not finite"));
	}
	Ok((header, values))
}

/// Blake2-256 of a blob, as the chain stores it.
pub fn hash(bytes: &[u8]) -> [u8; 32] {
	blob_hash(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use blade_fl_primitives::blob::BlobError;
	use proptest::prelude::*;

	#[test]
	fn round_trips_per_codec() {
		let values: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.37).sin()).collect();
		for (codec, tolerance) in [
			(Codec::F32, 0.0),
			(Codec::F16, 1e-3),
			(Codec::Int8, 1.0 / 127.0),
		] {
			let blob = encode(4, 2, codec, &values).unwrap();
			assert_eq!(blob.len(), HEADER_LEN + codec.width() * values.len());
			let (header, back) = decode(&blob, 1 << 20).unwrap();
			assert_eq!(
				(header.task, header.round, header.param_count),
				(4, 2, 1000)
			);
			let worst = values
				.iter()
				.zip(&back)
				.map(|(a, b)| (a - b).abs())
				.fold(0f32, f32::max);
			assert!(worst <= tolerance, "{codec:?}: {worst}");
		}
	}

	#[test]
	fn rejects_non_finite_and_malformed() {
		assert!(encode(0, 0, Codec::F32, &[1.0, f32::NAN]).is_err());
		assert!(encode(0, 0, Codec::F16, &[1.0e6]).is_err(), "f16 overflow");
		let blob = encode(0, 0, Codec::F32, &[1.0, 2.0]).unwrap();
		assert!(matches!(
			decode(&blob[..20], 1 << 20),
			Err(Error::Blob(BlobError::TooShort))
		));
		assert!(matches!(
			decode(&blob, 30),
			Err(Error::Blob(BlobError::TooLong))
		));
		let mut nan = blob.clone();
		nan[HEADER_LEN + 4..].copy_from_slice(&f32::INFINITY.to_le_bytes());
		assert!(matches!(
			decode(&nan, 1 << 20),
			Err(Error::Blob(BlobError::NonFinite { index: 1 }))
		));
	}

	#[test]
	fn f32_encoding_matches_the_shared_encoder() {
		let values = [0.5f32, -1.25, 3.0];
		assert_eq!(
			encode(9, 1, Codec::F32, &values).unwrap(),
			blade_fl_primitives::blob::encode_f32(9, 1, &values)
		);
	}

	/// A hostile int8 blob whose scale would make byte 0x80 overflow to -inf is refused
	/// (by the parser, and the decoder would refuse the value anyway).
	#[test]
	fn int8_scale_that_overflows_is_refused() {
		for scale in [f32::MAX / 100.0, f32::MAX] {
			let header = BlobHeader {
				task: 1,
				round: 0,
				param_count: 2,
				codec: Codec::Int8,
				scale_bits: scale.to_bits(),
			};
			let mut blob = header.encode().to_vec();
			blob.extend_from_slice(&[0x80, 0x7f]);
			assert!(decode(&blob, 1 << 10).is_err(), "scale {scale}");
		}
	}

	proptest! {
		/// Whatever the bytes, an accepted blob decodes to finite values only.
		#[test]
		fn decoded_values_are_always_finite(bytes in proptest::collection::vec(any::<u8>(), 0..64), codec in 0u8..3, scale in any::<u32>()) {
			let width = [4usize, 2, 1][codec as usize];
			let header = BlobHeader {
				task: 1,
				round: 0,
				param_count: (bytes.len() / width) as u32,
				codec: [Codec::F32, Codec::F16, Codec::Int8][codec as usize],
				scale_bits: if codec == 2 { scale } else { 0 },
			};
			let mut blob = header.encode().to_vec();
			blob.extend_from_slice(&bytes[..bytes.len() / width * width]);
			if let Ok((_, values)) = decode(&blob, 1 << 10) {
				prop_assert!(values.iter().all(|v| v.is_finite()));
			}
		}

		#[test]
		fn int8_error_is_within_half_a_step(values in proptest::collection::vec(-1e3f32..1e3, 1..200)) {
			let blob = encode(1, 1, Codec::Int8, &values).unwrap();
			let (header, back) = decode(&blob, 1 << 20).unwrap();
			let scale = f32::from_bits(header.scale_bits);
			for (a, b) in values.iter().zip(&back) {
				prop_assert!((a - b).abs() <= scale * 0.5 + scale * 1e-3);
			}
		}
	}
}
