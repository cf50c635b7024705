//! The runtime's view of a model update: `Blob::parse` on arbitrary bytes under an
//! arbitrary length bound, then everything the chain computes from an accepted blob: the
//! Q24 fixed-point values, the PN correlation and its z-test, the owner's watermark
//! estimate and the lazy-copy evidence against victims (all saturating integer
//! arithmetic). Properties: no panic, nothing accepted beyond the bound or with a
//! non-finite value, every value keeps its sign (saturating, never wrapping), and the verdict
//! pieces
//! consistent with each other.
#![no_main]

use blade_fl_primitives::{
	blob::{Blob, HEADER_LEN, MAGIC, VERSION},
	correlation,
	pn::Seed,
	verdict,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
	if data.len() < 66 {
		return;
	}
	let (own, rest) = data.split_at(32);
	let (victim, rest) = rest.split_at(32);
	let own: Seed = own.try_into().expect("32 bytes");
	let victim: Seed = victim.try_into().expect("32 bytes");
	let (mode, rest) = (rest[0], &rest[1..]);
	// Half the inputs get a well-formed header (codec, scale and count from the fuzzer's
	// bytes) so the value paths are reached; the other half are parsed raw.
	let mut bytes = Vec::with_capacity(rest.len() + HEADER_LEN);
	if mode & 1 == 1 {
		let codec = (mode >> 1) % 4; // 3 is not a codec: refused
		let width = match codec {
			0 => 4,
			1 => 2,
			_ => 1,
		};
		let payload = rest.get(4..).unwrap_or_default();
		let count = (payload.len() / width) as u32;
		bytes.extend_from_slice(&MAGIC);
		bytes.push(VERSION);
		bytes.push(codec);
		bytes.extend_from_slice(&[0, 0]);
		bytes.extend_from_slice(&7u64.to_le_bytes());
		bytes.extend_from_slice(&1u32.to_le_bytes());
		bytes.extend_from_slice(&count.to_le_bytes());
		let scale = if codec == 2 {
			rest.get(..4).map_or(0, |s| u32::from_le_bytes(s.try_into().expect("4")))
		} else {
			0
		};
		bytes.extend_from_slice(&scale.to_le_bytes());
		bytes.extend_from_slice(&payload[..count as usize * width]);
	} else {
		bytes.extend_from_slice(rest);
	}
	let max_len = usize::from(mode) * 64 + HEADER_LEN;
	let Ok(blob) = Blob::parse(&bytes, max_len) else {
		return;
	};
	assert!(bytes.len() <= max_len, "accepted past the bound");
	let n = blob.fixed_values().count() as u64;
	// Every value keeps its sign: the magnitude saturates at i64::MAX (2^39 in real
	// units), never wraps.
	let width = blob.header.codec.width();
	for (v, chunk) in blob.fixed_values().zip(blob.payload().chunks_exact(width)) {
		let negative = match width {
			4 => chunk[3] >> 7 == 1,
			2 => chunk[1] >> 7 == 1,
			// int8: the byte's sign (the parser refuses negative scales).
			_ => (chunk[0] as i8) < 0,
		};
		assert!(v == 0 || (v < 0) == negative, "sign lost: {chunk:?} -> {v}");
	}
	let rho = correlation::correlate(blob.fixed_values(), &own);
	assert!(rho.0 <= 1_000_000_000, "correlation beyond 1");
	for z in [0, 300, 600, u32::MAX] {
		let _ = correlation::proves_copy(rho, n, z);
	}
	let watermark = verdict::own_watermark(blob.fixed_values(), &own);
	assert_eq!(watermark.n, n);
	let victims = [victim, own];
	let (proven, evidence) = verdict::copy_proven(
		blob.fixed_values(),
		Some((&own, watermark.amplitude)),
		&victims,
		600,
	);
	assert_eq!(evidence.sums.len(), victims.len());
	assert!(evidence.nonzero <= n);
	assert_eq!(proven, evidence.proves_copy(600));
	let _ = (evidence.total(), evidence.z_centi());
	let (_, unknown_owner) = verdict::copy_proven(blob.fixed_values(), None, &victims, 600);
	assert!(unknown_owner.nonzero <= n);
});
