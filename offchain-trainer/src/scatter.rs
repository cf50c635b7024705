//! A fixed 2-D scattering transform (Mallat 2012; Bruna and Mallat 2013), the front end of
//! Tramer and Boneh 2021 ("Differentially Private Learning Needs Better Features"): a
//! cascade of Morlet wavelet filters, moduli and a Gaussian low-pass, with no learned
//! parameter. DP-SGD then only has to train a linear model on top, which it does far
//! better than a CNN from pixels at the same privacy.
//!
//! Filters follow Kymatio's `filter_bank` (Morlet wavelets at scales `0.8 * 2^j`, `L`
//! orientations, slant `4 / L`, centre frequency `3 pi / 4 / 2^j`; the low-pass a Gaussian
//! of width `0.8 * 2^(J-1)`), built in the Fourier domain of the reflect-padded image.
//! With `J` = 2 and `L` = 8 an image channel gives 1 + J L + L^2 J (J - 1) / 2 = 81
//! channels at 1/4 of the resolution (7x7 for 28x28). The transform is a pure function of
//! the pixels, so it costs no privacy; [`Scattering`] keeps the features of each image it
//! has seen (keyed by the image's bytes), so training epochs after the first do not
//! recompute them.

use std::{
	collections::HashMap,
	f64::consts::PI,
	hash::{Hash, Hasher},
	sync::Mutex,
};

use tch::{Device, Kind, Tensor};

/// Bytes of features a [`Scattering`] keeps (80 000 Fashion-MNIST images of 81x7x7 `f32`).
const CACHE_BYTES: usize = 1_300_000_000;

/// Images transformed at once (bounds the complex intermediates to a few hundred MB).
const CHUNK: i64 = 256;

/// A 2-D scattering transform of order 2 for `height x width` images.
pub struct Scattering {
	/// Scales.
	j: u32,
	/// Orientations.
	l: usize,
	/// Input side lengths.
	height: i64,
	width: i64,
	/// Padded side lengths (multiples of `2^j`).
	padded: (i64, i64),
	/// Low-pass filter in the Fourier domain at each resolution `0 ..= j`.
	phi: Vec<Tensor>,
	/// Wavelets in the Fourier domain: `psi[j][res]` is `L x P x P` (one per orientation)
	/// at resolution `res <= j`.
	psi: Vec<Vec<Tensor>>,
	/// Features already computed, keyed by a 128-bit hash of the image's bytes.
	cache: Mutex<HashMap<(u64, u64), Tensor>>,
}

/// A Gabor filter `exp(-x' C x / 2 sigma^2 + i xi (x cos t + y sin t))`, periodised over
/// five periods each way, on an `m x n` grid (row-major, real and imaginary parts).
fn gabor(m: i64, n: i64, sigma: f64, theta: f64, xi: f64, slant: f64) -> (Vec<f64>, Vec<f64>) {
	let (c, s) = (theta.cos(), theta.sin());
	// R diag(1, slant^2) R^T / (2 sigma^2).
	let d = slant * slant;
	let a = (c * c + d * s * s) / (2.0 * sigma * sigma);
	let b = (c * s - d * c * s) / (2.0 * sigma * sigma);
	let e = (s * s + d * c * c) / (2.0 * sigma * sigma);
	let (mut re, mut im) = (vec![0f64; (m * n) as usize], vec![0f64; (m * n) as usize]);
	for ex in -2..=2i64 {
		for ey in -2..=2i64 {
			for x in 0..m {
				for y in 0..n {
					let (xx, yy) = ((x + ex * m) as f64, (y + ey * n) as f64);
					let magnitude = (-(a * xx * xx + 2.0 * b * xx * yy + e * yy * yy)).exp();
					let phase = xi * (xx * c + yy * s);
					let i = (x * n + y) as usize;
					re[i] += magnitude * phase.cos();
					im[i] += magnitude * phase.sin();
				}
			}
		}
	}
	let norm = 2.0 * PI * sigma * sigma / slant;
	re.iter_mut().chain(im.iter_mut()).for_each(|v| *v /= norm);
	(re, im)
}

/// The real part of the 2-D DFT of a complex `m x n` grid.
fn fourier_real(m: i64, n: i64, (re, im): (Vec<f64>, Vec<f64>)) -> Tensor {
	let re = Tensor::from_slice(&re).view([m, n]);
	let im = Tensor::from_slice(&im).view([m, n]);
	Tensor::complex(&re, &im)
		.fft_fft2(None::<&[i64]>, [-2, -1], "backward")
		.real()
		.to_kind(Kind::Float)
}

/// A Fourier-domain filter at resolution `res`: its low frequencies, folded onto a grid
/// `2^res` times smaller (Kymatio's `periodize_filter_fft`).
fn periodize(filter: &Tensor, res: u32) -> Tensor {
	if res == 0 {
		return filter.shallow_clone();
	}
	let size = filter.size();
	let (m, n) = (size[size.len() - 2], size[size.len() - 1]);
	let k = 1i64 << res;
	let mask = Tensor::ones([m, n], (Kind::Float, Device::Cpu));
	let (len_x, start_x) = (m - m / k, m / (2 * k));
	let (len_y, start_y) = (n - n / k, n / (2 * k));
	let _ = mask.narrow(0, start_x, len_x).fill_(0.0);
	let _ = mask.narrow(1, start_y, len_y).fill_(0.0);
	let (blocks, d) = blocks(&(filter * mask), k);
	blocks.sum_dim_intlist(&[d, d + 2][..], false, Kind::Float)
}

/// `x` (`... x m x n`) viewed as `... x k x m/k x k x n/k`, with the index of the first `k`
/// axis: folding the spectrum sums or averages over that axis and the one two after it.
fn blocks(x: &Tensor, k: i64) -> (Tensor, i64) {
	let size = x.size();
	let lead = &size[..size.len() - 2];
	let (m, n) = (size[size.len() - 2], size[size.len() - 1]);
	let mut shape = lead.to_vec();
	shape.extend([k, m / k, k, n / k]);
	(x.view(shape.as_slice()), lead.len() as i64)
}

/// A Fourier-domain signal subsampled by `k` in space: its spectrum folded `k` times
/// (Kymatio's `subsample_fourier`).
fn subsample(x: &Tensor, k: i64) -> Tensor {
	if k == 1 {
		return x.shallow_clone();
	}
	let (blocks, d) = blocks(x, k);
	blocks.mean_dim(&[d, d + 2][..], false, None::<Kind>)
}

fn fft(x: &Tensor) -> Tensor {
	x.fft_fft2(None::<&[i64]>, [-2, -1], "backward")
}

fn ifft(x: &Tensor) -> Tensor {
	x.fft_ifft2(None::<&[i64]>, [-2, -1], "backward")
}

impl Scattering {
	/// The transform for `height x width` images with `j` scales and `l` orientations.
	/// The sides must be multiples of `2^j`, at least `2^(j+1)`.
	pub fn new(height: i64, width: i64, j: u32, l: usize) -> crate::error::Result<Scattering> {
		let k = 1i64 << j;
		if j == 0 || l == 0 || height % k != 0 || width % k != 0 || height < 2 * k || width < 2 * k
		{
			return Err(crate::error::invalid(format!(
				"scattering with J = {j}, L = {l} needs sides that are multiples of {k}, got {height}x{width}"
			)));
		}
		// Kymatio's padding: the next multiple of 2^J with at least 2^J to spare.
		let padded = (((height + k) / k + 1) * k, ((width + k) / k + 1) * k);
		let (pm, pn) = padded;
		let low = fourier_real(
			pm,
			pn,
			gabor(pm, pn, 0.8 * (1u64 << (j - 1)) as f64, 0.0, 0.0, 1.0),
		);
		let phi = (0..=j).map(|res| periodize(&low, res)).collect();
		let psi = (0..j)
			.map(|scale| {
				let sigma = 0.8 * (1u64 << scale) as f64;
				let xi = 0.75 * PI / (1u64 << scale) as f64;
				let slant = 4.0 / l as f64;
				let bank: Vec<Tensor> = (0..l)
					.map(|t| {
						let first = (l as f64 - l as f64 / 2.0 - 1.0).trunc();
						let theta = (first - t as f64) * PI / l as f64;
						let (wr, wi) = gabor(pm, pn, sigma, theta, xi, slant);
						let (mr, mi) = gabor(pm, pn, sigma, theta, 0.0, slant);
						// Morlet: the Gabor filter less the Gaussian that makes its mean zero.
						// K = sum(gabor) / sum(gaussian), complex; the Gaussian is real.
						let sm = mr.iter().sum::<f64>();
						let kr = wr.iter().sum::<f64>() / sm;
						let ki = wi.iter().sum::<f64>() / sm;
						let re: Vec<f64> = wr
							.iter()
							.zip(&mr)
							.zip(&mi)
							.map(|((w, m), mi)| w - (kr * m - ki * mi))
							.collect();
						let im: Vec<f64> = wi
							.iter()
							.zip(&mr)
							.zip(&mi)
							.map(|((w, m), mi)| w - (kr * mi + ki * m))
							.collect();
						fourier_real(pm, pn, (re, im))
					})
					.collect();
				let bank = Tensor::stack(&bank, 0);
				(0..=scale).map(|res| periodize(&bank, res)).collect()
			})
			.collect();
		Ok(Scattering {
			j,
			l,
			height,
			width,
			padded,
			phi,
			psi,
			cache: Mutex::new(HashMap::new()),
		})
	}

	/// Output channels per input channel: `1 + J L + L^2 J (J - 1) / 2`.
	pub fn channels(&self) -> i64 {
		let (j, l) = (self.j as i64, self.l as i64);
		1 + j * l + l * l * j * (j - 1) / 2
	}

	/// Output side lengths: the input's divided by `2^J`.
	pub fn output_side(&self) -> (i64, i64) {
		(self.height >> self.j, self.width >> self.j)
	}

	/// Low-pass `x_hat` (at resolution `res`), subsample to resolution `J`, back to space,
	/// and drop the padding: `... x out_h x out_w` real.
	fn average(&self, x_hat: &Tensor, res: u32) -> Tensor {
		let s = subsample(&(x_hat * &self.phi[res as usize]), 1 << (self.j - res));
		let (oh, ow) = self.output_side();
		ifft(&s).real().narrow(-2, 1, oh).narrow(-1, 1, ow)
	}

	/// Scattering coefficients of `images` (`N x H x W`, one channel each), computed
	/// without the cache: `N x channels x H/2^J x W/2^J`. Channels: order 0, then order 1
	/// by (j1, theta1), then order 2 by (j1, j2, theta1, theta2) (Kymatio's order for
	/// J = 2).
	pub fn transform(&self, images: &Tensor) -> Tensor {
		let (pm, pn) = self.padded;
		let (top, left) = ((pm - self.height) / 2, (pn - self.width) / 2);
		let x = images
			.to_kind(Kind::Float)
			.unsqueeze(1)
			.reflection_pad2d([left, pn - self.width - left, top, pm - self.height - top])
			.squeeze_dim(1);
		let x_hat = fft(&x.to_kind(Kind::ComplexFloat));
		let mut out = vec![self.average(&x_hat, 0).unsqueeze(1)];
		let mut second = Vec::new();
		for j1 in 0..self.j {
			// |x * psi_j1| at resolution j1, for every orientation: N x L x .. x ..
			let u1 = subsample(&(x_hat.unsqueeze(1) * &self.psi[j1 as usize][0]), 1 << j1);
			let u1_hat = fft(&ifft(&u1).abs().to_kind(Kind::ComplexFloat));
			out.push(self.average(&u1_hat, j1));
			for j2 in j1 + 1..self.j {
				// ||x * psi_j1| * psi_j2| at resolution j2: N x L x L x .. x ..
				let u2 = subsample(
					&(u1_hat.unsqueeze(2) * &self.psi[j2 as usize][j1 as usize]),
					1 << (j2 - j1),
				);
				let u2_hat = fft(&ifft(&u2).abs().to_kind(Kind::ComplexFloat));
				second.push(self.average(&u2_hat, j2).flatten(1, 2));
			}
		}
		out.extend(second);
		Tensor::cat(&out, 1)
	}

	/// Scattering coefficients of `xs` (`N x C x H x W`): `N x (C channels()) x H/2^J x
	/// W/2^J`, each input channel transformed alone. Features of images seen before come
	/// from the cache; the rest are computed in chunks and kept while the cache has room.
	pub fn apply(&self, xs: &Tensor) -> Tensor {
		let size = xs.size();
		let (n, c) = (size[0], size[1]);
		let (oh, ow) = self.output_side();
		if n == 0 {
			return Tensor::zeros([0, c * self.channels(), oh, ow], (xs.kind(), xs.device()));
		}
		let images = xs
			.to_device(Device::Cpu)
			.reshape([n * c, self.height, self.width])
			.to_kind(Kind::Float);
		let Ok(flat) = Vec::<f32>::try_from(images.flatten(0, -1)) else {
			// Not readable as f32 on the host: compute without the cache.
			return self
				.transform(&images)
				.view([n, c * self.channels(), oh, ow])
				.to_kind(xs.kind())
				.to_device(xs.device());
		};
		let per = (self.height * self.width) as usize;
		// Two independent 64-bit SipHashes: a collision would hand one image another's
		// features, so the key is 128 bits wide.
		let keys: Vec<(u64, u64)> = flat
			.chunks(per.max(1))
			.map(|pixels| {
				let digest = |salt: u64| {
					let mut h = std::collections::hash_map::DefaultHasher::new();
					salt.hash(&mut h);
					pixels.iter().for_each(|p| p.to_bits().hash(&mut h));
					h.finish()
				};
				(digest(0x5ca7_7e12), digest(0xb1ad_ef1a))
			})
			.collect();
		let limit = CACHE_BYTES / (self.channels() * oh * ow * 4).max(1) as usize;
		let mut rows: Vec<Option<Tensor>> = {
			let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
			keys.iter()
				.map(|k| cache.get(k).map(|t| t.shallow_clone()))
				.collect()
		};
		let missing: Vec<i64> = (0..rows.len() as i64)
			.filter(|i| rows[*i as usize].is_none())
			.collect();
		for chunk in missing.chunks(CHUNK as usize) {
			let index = Tensor::from_slice(chunk);
			let features = self.transform(&images.index_select(0, &index));
			let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
			for (row, i) in chunk.iter().enumerate() {
				let f = features.get(row as i64).copy();
				if cache.len() < limit {
					cache.insert(keys[*i as usize], f.shallow_clone());
				}
				rows[*i as usize] = Some(f);
			}
		}
		let rows: Vec<Tensor> = rows.into_iter().flatten().collect();
		Tensor::stack(&rows, 0)
			.view([n, c * self.channels(), oh, ow])
			.to_kind(xs.kind())
			.to_device(xs.device())
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	fn max_abs(t: &Tensor) -> f64 {
		t.abs().max().double_value(&[])
	}

	#[test]
	fn shapes_and_filter_moments_are_those_of_a_scattering_transform() {
		let s = Scattering::new(28, 28, 2, 8).unwrap();
		assert_eq!(s.channels(), 81);
		assert_eq!(s.padded, (36, 36));
		// The low-pass keeps the mean (unit gain at frequency 0); wavelets remove it.
		assert!((s.phi[0].double_value(&[0, 0]) - 1.0).abs() < 1e-3);
		for scale in &s.psi {
			assert!(max_abs(&scale[0].select(1, 0).select(1, 0)) < 1e-4);
		}
		assert!(Scattering::new(30, 28, 2, 8).is_err());
		assert!(Scattering::new(28, 28, 0, 8).is_err());
		let empty = Tensor::zeros([0, 1, 28, 28], (Kind::Float, Device::Cpu));
		assert_eq!(s.apply(&empty).size(), vec![0, 81, 7, 7]);
	}

	#[test]
	fn a_constant_image_keeps_only_its_mean_and_an_edge_lights_the_wavelets() {
		let s = Scattering::new(28, 28, 2, 8).unwrap();
		let flat = Tensor::full([2, 1, 28, 28], 0.5, (Kind::Float, Device::Cpu));
		let out = s.apply(&flat);
		assert_eq!(out.size(), vec![2, 81, 7, 7]);
		// Order 0 is the local mean; every wavelet channel of a constant is zero.
		assert!(max_abs(&(out.narrow(1, 0, 1) - 0.5)) < 1e-3);
		assert!(max_abs(&out.narrow(1, 1, 80)) < 1e-4);
		// A vertical edge lights the wavelet channels.
		let edge = Tensor::zeros([1, 1, 28, 28], (Kind::Float, Device::Cpu));
		let _ = edge.narrow(3, 14, 14).fill_(1.0);
		assert!(max_abs(&s.apply(&edge).narrow(1, 1, 16)) > 1e-2);
	}

	#[test]
	fn cached_features_equal_fresh_ones_whatever_the_batch() {
		let s = Scattering::new(28, 28, 2, 8).unwrap();
		let xs = Tensor::rand([5, 1, 28, 28], (Kind::Float, Device::Cpu));
		let fresh = s.transform(&xs.view([5, 28, 28]));
		let first = s.apply(&xs.narrow(0, 1, 3));
		let all = s.apply(&xs);
		assert_eq!(s.cache.lock().unwrap().len(), 5);
		assert!(max_abs(&(all.narrow(0, 1, 3) - first)) == 0.0);
		assert!(max_abs(&(all - fresh)) < 1e-5);
		// Shifting an image by one pixel moves its features far less than its pixels.
		let shifted = xs.roll([1], [3]);
		let rel =
			|a: &Tensor, b: &Tensor| (a - b).norm().double_value(&[]) / a.norm().double_value(&[]);
		let (px, sc) = (rel(&xs, &shifted), rel(&s.apply(&xs), &s.apply(&shifted)));
		assert!(sc < px / 2.0, "features moved {sc}, pixels {px}");
	}
}
