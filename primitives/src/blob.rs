//! The model-update blob: what a trainer publishes in `submit_update` and what anyone
//! re-reads from the block body.
//!
//! Layout (all integers little-endian):
//!
//! | bytes  | field                                                     |
//! |--------|-----------------------------------------------------------|
//! | 0..4   | magic `b"BLFL"`                                           |
//! | 4      | format version, [`VERSION`]                               |
//! | 5      | [`Codec`]: 0 = f32, 1 = f16, 2 = int8                     |
//! | 6..8   | reserved, must be 0                                       |
//! | 8..16  | task id (`u64`)                                           |
//! | 16..20 | round (`u32`)                                             |
//! | 20..24 | parameter count `n` (`u32`)                               |
//! | 24..28 | int8 scale as IEEE-754 `f32` bits (0 for other codecs)    |
//! | 28..   | `n` values: 4, 2 or 1 bytes each                          |
//!
//! A value `q` of the int8 codec stands for `q * scale`. Parsing never uses floating-point
//! arithmetic: NaN and infinities are recognised from their exponent bits, and
//! [`Blob::fixed_values`] converts every value to Q24 fixed point exactly as the runtime
//! needs it.

use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// First four bytes of every blob.
pub const MAGIC: [u8; 4] = *b"BLFL";
/// Current format version.
pub const VERSION: u8 = 1;
/// Header length in bytes.
pub const HEADER_LEN: usize = 28;
/// Largest int8 scale (`f32` bits of `f32::MAX / 128`): every byte, `-128` included, times
/// the scale stays finite, so a decoder never turns an accepted blob into infinities.
pub const MAX_INT8_SCALE_BITS: u32 = 0x7bff_ffff;
/// Fractional bits of the fixed-point values produced by [`Blob::fixed_values`].
pub const FRAC_BITS: u32 = 24;

/// How payload values are encoded.
#[derive(
	Clone,
	Copy,
	PartialEq,
	Eq,
	Debug,
	Encode,
	Decode,
	DecodeWithMemTracking,
	MaxEncodedLen,
	TypeInfo,
)]
pub enum Codec {
	/// IEEE-754 binary32, 4 bytes per value.
	F32,
	/// IEEE-754 binary16, 2 bytes per value.
	F16,
	/// Signed byte times the header's `f32` scale.
	Int8,
}

impl Codec {
	/// Bytes per payload value.
	pub const fn width(self) -> usize {
		match self {
			Codec::F32 => 4,
			Codec::F16 => 2,
			Codec::Int8 => 1,
		}
	}

	/// Wire tag of the codec.
	pub const fn tag(self) -> u8 {
		match self {
			Codec::F32 => 0,
			Codec::F16 => 1,
			Codec::Int8 => 2,
		}
	}

	fn from_tag(tag: u8) -> Option<Self> {
		match tag {
			0 => Some(Codec::F32),
			1 => Some(Codec::F16),
			2 => Some(Codec::Int8),
			_ => None,
		}
	}
}

/// Why a blob was rejected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum BlobError {
	/// Shorter than the header.
	TooShort,
	/// Longer than the allowed maximum.
	TooLong,
	/// Does not start with [`MAGIC`].
	BadMagic,
	/// Format version this code does not know.
	UnsupportedVersion,
	/// Codec tag other than 0, 1, 2.
	UnknownCodec,
	/// Reserved bytes are not zero.
	ReservedNotZero,
	/// Payload length is not `param_count * width`.
	LengthMismatch,
	/// Value `index` is NaN or infinite.
	NonFinite {
		/// Position of the first offending value.
		index: u32,
	},
	/// The int8 scale is non-finite, zero, negative or above [`MAX_INT8_SCALE_BITS`] (so
	/// that some byte times it would overflow `f32`), or set for another codec.
	BadScale,
}

/// Parsed blob header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BlobHeader {
	/// Task the update belongs to.
	pub task: u64,
	/// Round of the task.
	pub round: u32,
	/// Number of model parameters.
	pub param_count: u32,
	/// Payload codec.
	pub codec: Codec,
	/// int8 scale as `f32` bits; 0 for other codecs.
	pub scale_bits: u32,
}

impl BlobHeader {
	/// The 28 header bytes.
	pub fn encode(&self) -> [u8; HEADER_LEN] {
		let mut out = [0u8; HEADER_LEN];
		out[0..4].copy_from_slice(&MAGIC);
		out[4] = VERSION;
		out[5] = self.codec.tag();
		out[8..16].copy_from_slice(&self.task.to_le_bytes());
		out[16..20].copy_from_slice(&self.round.to_le_bytes());
		out[20..24].copy_from_slice(&self.param_count.to_le_bytes());
		out[24..28].copy_from_slice(&self.scale_bits.to_le_bytes());
		out
	}
}

/// A parsed, validated blob borrowing its payload.
#[derive(Clone, Copy, Debug)]
pub struct Blob<'a> {
	/// The header.
	pub header: BlobHeader,
	payload: &'a [u8],
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
	let mut word = [0u8; 4];
	if let Some(src) = bytes.get(at..at + 4) {
		word.copy_from_slice(src);
	}
	u32::from_le_bytes(word)
}

fn f32_is_finite(bits: u32) -> bool {
	(bits >> 23) & 0xff != 0xff
}

fn f16_is_finite(bits: u16) -> bool {
	(bits >> 10) & 0x1f != 0x1f
}

/// `value * 2^shift` saturated to `i64`, for `value < 2^25` and any `shift`.
fn scale_pow2(value: u64, shift: i32) -> i64 {
	let magnitude = if shift >= 0 {
		if shift >= 64 || (value != 0 && value.leading_zeros() <= shift as u32) {
			i64::MAX as u64
		} else {
			value << shift
		}
	} else if shift <= -64 {
		0
	} else {
		value >> (-shift)
	};
	magnitude.min(i64::MAX as u64) as i64
}

/// Q24 fixed point of a finite IEEE-754 value from its fields: `value = 1.m * 2^(e - bias)`
/// (or `0.m * 2^(1 - bias)` when subnormal). Truncates toward zero, saturates at ±2^39.
fn ieee_to_fixed(
	negative: bool,
	exponent: i32,
	mantissa: u64,
	mantissa_bits: u32,
	bias: i32,
) -> i64 {
	let (significand, power) = if exponent == 0 {
		(mantissa, 1 - bias - mantissa_bits as i32)
	} else {
		(
			mantissa | (1 << mantissa_bits),
			exponent - bias - mantissa_bits as i32,
		)
	};
	let fixed = scale_pow2(significand, power + FRAC_BITS as i32);
	if negative {
		-fixed
	} else {
		fixed
	}
}

/// Q24 fixed point of finite `f32` bits, truncated toward zero, saturating at ±2^39.
pub fn f32_bits_to_fixed(bits: u32) -> i64 {
	ieee_to_fixed(
		bits >> 31 == 1,
		((bits >> 23) & 0xff) as i32,
		(bits & 0x7f_ffff) as u64,
		23,
		127,
	)
}

/// Q24 fixed point of finite `f16` bits, exact (f16 has at most 24 fractional bits).
pub fn f16_bits_to_fixed(bits: u16) -> i64 {
	ieee_to_fixed(
		bits >> 15 == 1,
		((bits >> 10) & 0x1f) as i32,
		(bits & 0x3ff) as u64,
		10,
		15,
	)
}

impl<'a> Blob<'a> {
	/// Parse and validate `bytes`, refusing anything longer than `max_len`.
	pub fn parse(bytes: &'a [u8], max_len: usize) -> Result<Self, BlobError> {
		if bytes.len() > max_len {
			return Err(BlobError::TooLong);
		}
		let (head, payload) = match (bytes.get(..HEADER_LEN), bytes.get(HEADER_LEN..)) {
			(Some(head), Some(payload)) => (head, payload),
			_ => return Err(BlobError::TooShort),
		};
		if head.get(0..4) != Some(&MAGIC[..]) {
			return Err(BlobError::BadMagic);
		}
		if head.get(4) != Some(&VERSION) {
			return Err(BlobError::UnsupportedVersion);
		}
		let codec = head
			.get(5)
			.and_then(|tag| Codec::from_tag(*tag))
			.ok_or(BlobError::UnknownCodec)?;
		if head.get(6..8) != Some(&[0u8, 0][..]) {
			return Err(BlobError::ReservedNotZero);
		}
		let mut task = [0u8; 8];
		if let Some(src) = head.get(8..16) {
			task.copy_from_slice(src);
		}
		let header = BlobHeader {
			task: u64::from_le_bytes(task),
			round: le_u32(head, 16),
			param_count: le_u32(head, 20),
			codec,
			scale_bits: le_u32(head, 24),
		};
		let expected = (header.param_count as usize).checked_mul(codec.width());
		if expected != Some(payload.len()) {
			return Err(BlobError::LengthMismatch);
		}
		match codec {
			Codec::Int8 => {
				let scale = header.scale_bits;
				// Positive f32 bits order like the values: one integer comparison.
				if !f32_is_finite(scale)
					|| scale >> 31 == 1
					|| scale & 0x7fff_ffff == 0
					|| scale > MAX_INT8_SCALE_BITS
				{
					return Err(BlobError::BadScale);
				}
			}
			_ if header.scale_bits != 0 => return Err(BlobError::BadScale),
			Codec::F32 => {
				for (index, chunk) in payload.chunks_exact(4).enumerate() {
					if !f32_is_finite(le_u32(chunk, 0)) {
						return Err(BlobError::NonFinite {
							index: index as u32,
						});
					}
				}
			}
			Codec::F16 => {
				for (index, chunk) in payload.chunks_exact(2).enumerate() {
					let bits = u16::from_le_bytes([chunk[0], chunk[1]]);
					if !f16_is_finite(bits) {
						return Err(BlobError::NonFinite {
							index: index as u32,
						});
					}
				}
			}
		}
		Ok(Blob { header, payload })
	}

	/// The payload bytes.
	pub fn payload(&self) -> &'a [u8] {
		self.payload
	}

	/// Every value in Q24 fixed point ([`FRAC_BITS`] fractional bits).
	pub fn fixed_values(&self) -> impl Iterator<Item = i64> + 'a {
		let codec = self.header.codec;
		let scale = f32_bits_to_fixed(self.header.scale_bits);
		self.payload
			.chunks_exact(codec.width())
			.map(move |chunk| match codec {
				Codec::F32 => f32_bits_to_fixed(le_u32(chunk, 0)),
				Codec::F16 => f16_bits_to_fixed(u16::from_le_bytes([chunk[0], chunk[1]])),
				Codec::Int8 => scale.saturating_mul(i64::from(chunk[0] as i8)),
			})
	}
}

/// Encode an `f32` blob (header plus raw little-endian values); no float arithmetic.
pub fn encode_f32(task: u64, round: u32, values: &[f32]) -> alloc::vec::Vec<u8> {
	let header = BlobHeader {
		task,
		round,
		param_count: values.len() as u32,
		codec: Codec::F32,
		scale_bits: 0,
	};
	let mut out = alloc::vec::Vec::with_capacity(HEADER_LEN + 4 * values.len());
	out.extend_from_slice(&header.encode());
	for value in values {
		out.extend_from_slice(&value.to_le_bytes());
	}
	out
}

/// Blake2b-256 of the whole blob: what the chain stores and commits to.
pub fn blob_hash(bytes: &[u8]) -> [u8; 32] {
	sp_crypto_hashing::blake2_256(bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;
	use proptest::prelude::*;

	const MAX: usize = 1 << 20;

	#[test]
	fn round_trip_f32() {
		let blob = encode_f32(7, 3, &[0.5, -1.25, 3.0]);
		let parsed = Blob::parse(&blob, MAX).unwrap();
		assert_eq!(parsed.header.task, 7);
		assert_eq!(parsed.header.round, 3);
		assert_eq!(parsed.header.param_count, 3);
		let fixed: Vec<i64> = parsed.fixed_values().collect();
		assert_eq!(fixed, vec![1 << 23, -(5 << 22), 3 << 24]);
	}

	#[test]
	fn rejects_malformed() {
		let good = encode_f32(1, 0, &[1.0, 2.0]);
		assert_eq!(
			Blob::parse(&good[..10], MAX).unwrap_err(),
			BlobError::TooShort
		);
		assert_eq!(Blob::parse(&good, 20).unwrap_err(), BlobError::TooLong);
		let mut bad = good.clone();
		bad[0] = b'X';
		assert_eq!(Blob::parse(&bad, MAX).unwrap_err(), BlobError::BadMagic);
		let mut bad = good.clone();
		bad[4] = 9;
		assert_eq!(
			Blob::parse(&bad, MAX).unwrap_err(),
			BlobError::UnsupportedVersion
		);
		let mut bad = good.clone();
		bad[5] = 3;
		assert_eq!(Blob::parse(&bad, MAX).unwrap_err(), BlobError::UnknownCodec);
		let mut bad = good.clone();
		bad[6] = 1;
		assert_eq!(
			Blob::parse(&bad, MAX).unwrap_err(),
			BlobError::ReservedNotZero
		);
		assert_eq!(
			Blob::parse(&good[..good.len() - 1], MAX).unwrap_err(),
			BlobError::LengthMismatch
		);
		let mut bad = good.clone();
		bad[24] = 1; // scale on an f32 blob
		assert_eq!(Blob::parse(&bad, MAX).unwrap_err(), BlobError::BadScale);
	}

	#[test]
	fn rejects_non_finite() {
		for value in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
			let blob = encode_f32(1, 0, &[1.0, value]);
			assert_eq!(
				Blob::parse(&blob, MAX).unwrap_err(),
				BlobError::NonFinite { index: 1 }
			);
		}
		let header = BlobHeader {
			task: 1,
			round: 0,
			param_count: 1,
			codec: Codec::F16,
			scale_bits: 0,
		};
		let mut blob = header.encode().to_vec();
		blob.extend_from_slice(&0x7c00u16.to_le_bytes()); // f16 +inf
		assert_eq!(
			Blob::parse(&blob, MAX).unwrap_err(),
			BlobError::NonFinite { index: 0 }
		);
	}

	#[test]
	fn int8_uses_scale_and_checks_it() {
		let mut header = BlobHeader {
			task: 1,
			round: 0,
			param_count: 2,
			codec: Codec::Int8,
			scale_bits: 0.5f32.to_bits(),
		};
		let mut blob = header.encode().to_vec();
		blob.extend_from_slice(&[4u8, (-2i8) as u8]);
		let fixed: Vec<i64> = Blob::parse(&blob, MAX).unwrap().fixed_values().collect();
		assert_eq!(fixed, vec![2 << 24, -(1 << 24)]);
		// The bound is exactly f32::MAX / 128: the largest scale no byte overflows.
		assert_eq!(f32::from_bits(MAX_INT8_SCALE_BITS), f32::MAX / 128.0);
		assert!((-128.0 * f32::from_bits(MAX_INT8_SCALE_BITS)).is_finite());
		assert!((-128.0 * f32::from_bits(MAX_INT8_SCALE_BITS + 1)).is_infinite());
		header.scale_bits = MAX_INT8_SCALE_BITS;
		let mut largest = header.encode().to_vec();
		largest.extend_from_slice(&[0x80, 0x7f]);
		assert!(Blob::parse(&largest, MAX).is_ok());
		// Found writing the decoder's fuzz property (fuzz/trainer_codec_aggregation: a
		// decoded blob has only finite values): a finite scale above the bound was
		// accepted, and the trainer's decoder made -128 x scale = -inf of it.
		for bad in [
			0f32,
			-1.0,
			f32::NAN,
			f32::INFINITY,
			f32::from_bits(MAX_INT8_SCALE_BITS + 1),
			f32::MAX,
		] {
			header.scale_bits = bad.to_bits();
			let mut blob = header.encode().to_vec();
			blob.extend_from_slice(&[1, 1]);
			assert_eq!(Blob::parse(&blob, MAX).unwrap_err(), BlobError::BadScale);
		}
	}

	#[test]
	fn f16_conversion_matches_reference_values() {
		assert_eq!(f16_bits_to_fixed(0x3c00), 1 << 24); // 1.0
		assert_eq!(f16_bits_to_fixed(0xc000), -(2 << 24)); // -2.0
		assert_eq!(f16_bits_to_fixed(0x0001), 1); // smallest subnormal = 2^-24
		assert_eq!(f16_bits_to_fixed(0x7bff), 65504 << 24); // max finite
	}

	proptest! {
		/// Bit-level conversion equals the float computation (truncated toward zero).
		#[test]
		fn f32_fixed_matches_float(value in -1.0e6f32..1.0e6f32) {
			let expected = (value as f64 * (1u64 << FRAC_BITS) as f64).trunc() as i64;
			prop_assert_eq!(f32_bits_to_fixed(value.to_bits()), expected);
		}

		/// Huge values saturate instead of wrapping.
		#[test]
		fn f32_fixed_saturates(value in 1.0e12f32..f32::MAX) {
			prop_assert_eq!(f32_bits_to_fixed(value.to_bits()), i64::MAX);
			prop_assert_eq!(f32_bits_to_fixed((-value).to_bits()), -i64::MAX);
		}

		/// Arbitrary bytes never panic the parser.
		#[test]
		fn parser_total(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
			let _ = Blob::parse(&bytes, MAX).map(|b| b.fixed_values().count());
		}
	}
}
