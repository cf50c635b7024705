//! `blade-bench kernels`: throughput of the trainer's hot loops: aggregation of 20 updates
//! (against a plain memory copy of the same bytes), PN chip generation and correlation,
//! and blob encode/decode.

use std::time::Instant;

use blade_fl_primitives::{blob::Codec, pn::Chips};
use blade_trainer::{aggregation, codec, signature};

fn best_of<T>(repeats: u32, mut f: impl FnMut() -> T) -> f64 {
	let mut best = f64::MAX;
	for _ in 0..repeats.max(1) {
		let start = Instant::now();
		std::hint::black_box(f());
		best = best.min(start.elapsed().as_secs_f64());
	}
	best
}

fn updates(m: usize, n: usize) -> Vec<Vec<f32>> {
	(0..m)
		.map(|k| {
			(0..n)
				.map(|i| ((i * 31 + k * 17) % 1000) as f32 * 1e-3 - 0.5)
				.collect()
		})
		.collect()
}

/// Print the figures for models of each size in `params`.
pub fn report(params: &[usize], clients: usize, repeats: u32) {
	println!(
		"{:<22} {:>10} {:>12} {:>14} {:>10}",
		"kernel", "params", "time (ms)", "throughput", "vs memcpy"
	);
	for &n in params {
		let u = updates(clients, n);
		let bytes = (clients * n * 4) as f64;
		let weights: Vec<u128> = (1..=clients as u128).collect();
		// The same bytes copied into buffers allocated (and touched) beforehand.
		let mut dst: Vec<Vec<f32>> = u.iter().map(|x| vec![1.0; x.len()]).collect();
		let copy = best_of(repeats, || {
			for (d, s) in dst.iter_mut().zip(&u) {
				d.copy_from_slice(s);
			}
			dst.len()
		});
		println!(
			"{:<22} {:>10} {:>12.3} {:>10.2} GB/s {:>10}",
			"memcpy (20 updates)",
			n,
			copy * 1e3,
			bytes / copy / 1e9,
			"1.00"
		);
		for (name, rule) in [
			("fedavg", aggregation::Rule::FedAvg),
			("median", aggregation::Rule::Median),
			(
				"trimmed mean 10%",
				aggregation::Rule::TrimmedMean { trim: 0.1 },
			),
			(
				"multi-krum f=2",
				aggregation::Rule::MultiKrum { byzantine: 2 },
			),
		] {
			let t = best_of(repeats, || {
				aggregation::aggregate(&u, &weights, rule).expect("valid input")
			});
			println!(
				"{:<22} {:>10} {:>12.3} {:>10.2} GB/s {:>10.2}",
				name,
				n,
				t * 1e3,
				bytes / t / 1e9,
				copy / t
			);
		}
		let seed = [7u8; 32];
		let t = best_of(repeats, || {
			Chips::new(&seed).take(n).map(i64::from).sum::<i64>()
		});
		println!(
			"{:<22} {:>10} {:>12.3} {:>9.1} Mchip/s",
			"pn chips",
			n,
			t * 1e3,
			n as f64 / t / 1e6
		);
		let t = best_of(repeats, || signature::correlation(&u[0], &seed));
		println!(
			"{:<22} {:>10} {:>12.3} {:>9.1} Mval/s",
			"correlation (f64)",
			n,
			t * 1e3,
			n as f64 / t / 1e6
		);
		let blob = codec::encode(0, 0, Codec::F32, &u[0]).expect("finite");
		let t = best_of(repeats, || {
			signature::chain_correlation(&blob, &seed).expect("valid")
		});
		println!(
			"{:<22} {:>10} {:>12.3} {:>9.1} Mval/s",
			"correlation (chain)",
			n,
			t * 1e3,
			n as f64 / t / 1e6
		);
		for c in [Codec::F32, Codec::F16, Codec::Int8] {
			let enc = best_of(repeats, || codec::encode(0, 0, c, &u[0]).expect("finite"));
			let blob = codec::encode(0, 0, c, &u[0]).expect("finite");
			let dec = best_of(repeats, || codec::decode(&blob, blob.len()).expect("valid"));
			println!(
				"{:<22} {:>10} {:>12.3} {:>9.2} GB/s   decode {:.2} GB/s",
				format!("encode {c:?}"),
				n,
				enc * 1e3,
				(n * 4) as f64 / enc / 1e9,
				(n * 4) as f64 / dec / 1e9
			);
		}
	}
}
