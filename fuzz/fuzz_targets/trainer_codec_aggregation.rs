//! What a trainer does with other trainers' bytes: decode a blob, strip a watermark,
//! screen the updates and aggregate them under every rule. The updates are the fuzzer's
//! raw `f32` bits (NaN, infinities, subnormals, signed zeros included), the weights and
//! rule parameters its bytes. Properties: no panic; a decoded blob has only finite
//! values; an aggregate is only produced from finite updates and is itself finite, the
//! same length, and includes only valid indices; the screen keeps nothing non-finite.
#![no_main]

use blade_trainer::{aggregation, codec, signature};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
	let Some((&shape, rest)) = data.split_first() else {
		return;
	};
	// Part 1: the decoder on the raw bytes.
	if let Ok((header, values)) = codec::decode(rest, rest.len()) {
		assert_eq!(values.len(), header.param_count as usize);
		assert!(
			values.iter().all(|v| v.is_finite()),
			"a decoded blob carries a non-finite value"
		);
	}
	// Part 2: updates from the bytes.
	let m = usize::from(shape % 8) + 1;
	let n = usize::from(shape / 8 % 16) + 1;
	let need = m * n * 4 + n * 4 + m * 2 + 2;
	let Some(bytes) = rest.get(..need) else {
		return;
	};
	let (values, tail) = bytes.split_at(m * n * 4);
	let (previous_bytes, tail) = tail.split_at(n * 4);
	let (weight_bytes, params) = tail.split_at(m * 2);
	let mut updates: Vec<Vec<f32>> = values
		.chunks_exact(n * 4)
		.map(|u| {
			u.chunks_exact(4)
				.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
				.collect()
		})
		.collect();
	let weights: Vec<u128> = weight_bytes
		.chunks_exact(2)
		.map(|w| u128::from(u16::from_le_bytes([w[0], w[1]])) * 1_000_000_007)
		.collect();
	let seed = [params[0]; 32];
	if params[1] & 1 == 1 {
		let _ = signature::remove(&mut updates[0], &seed);
	}
	let finite = updates.iter().flatten().all(|v| v.is_finite());
	// The previous global step from its own bytes; a non-finite one is refused outright.
	let previous: Vec<f32> = previous_bytes
		.chunks_exact(4)
		.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
		.collect();
	let previous = (params[1] & 2 == 2).then_some(previous);
	if let Ok(screened) = aggregation::screen(&updates, previous.as_deref()) {
		for k in &screened.kept {
			assert!(updates[*k].iter().all(|v| v.is_finite()), "screen kept a non-finite update");
		}
		assert_eq!(screened.kept.len() + screened.dropped.len(), m);
	}
	let rules = [
		aggregation::Rule::FedAvg,
		aggregation::Rule::Median,
		aggregation::Rule::TrimmedMean { trim: f64::from(params[1]) / 512.0 },
		aggregation::Rule::MultiKrum { byzantine: usize::from(params[0] % 4) },
	];
	for rule in rules {
		match aggregation::aggregate(&updates, &weights, rule) {
			Ok(out) => {
				assert!(finite, "{rule:?} aggregated a non-finite update");
				assert_eq!(out.values.len(), n);
				assert!(out.values.iter().all(|v| v.is_finite()), "{rule:?} produced a non-finite value");
				assert!(out.included.iter().all(|i| *i < m));
				// Order statistics stay within the inputs' range.
				if matches!(rule, aggregation::Rule::Median | aggregation::Rule::TrimmedMean { .. }) {
					for (j, v) in out.values.iter().enumerate() {
						let lo = updates.iter().map(|u| u[j]).fold(f32::INFINITY, f32::min);
						let hi = updates.iter().map(|u| u[j]).fold(f32::NEG_INFINITY, f32::max);
						assert!(*v >= lo && *v <= hi, "{rule:?} left the inputs' range");
					}
				}
			}
			Err(_) => {}
		}
	}
});
