//! Models (`tch`): an MLP and a small CNN for 28x28 (1 channel) and 32x32 (3 channels)
//! inputs, with all parameters flattened in a fixed, documented order so that a model
//! update is a plain `f32` vector every trainer interprets the same way.
//!
//! **Parameter order**: variables sorted by name (byte-wise), each tensor in row-major
//! (C) order. Names: MLP `fc1.weight`, `fc1.bias`, `fc2.weight`, `fc2.bias`; CNN adds
//! `conv1.*`, `conv2.*` and uses `fc1` / `fc2` for its head. The same names key the
//! safetensors files, so `safetensors.torch.load_file` gives a PyTorch user the model.

use std::path::Path;

use tch::{nn, Device, Kind, Tensor};

use crate::error::{invalid, Error, Result};
pub use crate::registry::{Arch, Shape};

/// One stage of a model's forward pass. [`Model::forward`] and the traced forward pass of
/// DP-SGD ([`crate::dpsgd`]) both run this one list, so they cannot disagree.
pub enum Layer {
	/// Fully connected layer on flattened inputs.
	Linear(nn::Linear),
	/// 2-D convolution with a square stride and zero padding.
	Conv {
		/// Weights and bias.
		conv: nn::Conv2D,
		/// Stride.
		stride: i64,
		/// Zero padding on each side.
		padding: i64,
	},
	/// ReLU.
	Relu,
	/// Tanh.
	Tanh,
	/// Max-pooling with a square kernel and stride.
	MaxPool {
		/// Kernel side.
		kernel: i64,
		/// Stride.
		stride: i64,
	},
	/// Reshape to `N x C x H x W`.
	Image(i64, i64, i64),
	/// Flatten to `N x features`.
	Flatten,
	/// The fixed scattering transform ([`crate::scatter`]); no parameters.
	Scatter(Box<crate::scatter::Scattering>),
	/// Group normalisation without parameters (each sample alone, so DP-SGD's per-sample
	/// gradients stay per sample).
	GroupNorm(i64),
}

impl Layer {
	/// Apply this stage.
	pub fn apply(&self, xs: &Tensor) -> Tensor {
		match self {
			Layer::Linear(l) => xs.linear(&l.ws, l.bs.as_ref()),
			Layer::Conv {
				conv,
				stride,
				padding,
			} => xs.conv2d(
				&conv.ws,
				conv.bs.as_ref(),
				[*stride, *stride],
				[*padding, *padding],
				[1, 1],
				1,
			),
			Layer::Relu => xs.relu(),
			Layer::Tanh => xs.tanh(),
			Layer::MaxPool { kernel, stride } => xs.max_pool2d(
				[*kernel, *kernel],
				[*stride, *stride],
				[0, 0],
				[1, 1],
				false,
			),
			Layer::Image(c, h, w) => xs.view([-1, *c, *h, *w]),
			Layer::Flatten => xs.flatten(1, -1),
			Layer::Scatter(s) => s.apply(xs),
			Layer::GroupNorm(groups) => {
				xs.group_norm(*groups, None::<Tensor>, None::<Tensor>, 1e-5, false)
			}
		}
	}
}

/// A model with its variables.
pub struct Model {
	/// Architecture.
	pub arch: Arch,
	/// Input shape.
	pub shape: Shape,
	vs: nn::VarStore,
	layers: Vec<Layer>,
	/// Variables in the documented order with their shapes (fixed once built).
	layout: Vec<(String, Vec<i64>)>,
	params: usize,
}

impl Model {
	/// A freshly initialised model on `device`. Initialisation draws from ChaCha8 seeded by
	/// `seed` (PyTorch's default scheme: uniform in `+-1/sqrt(fan_in)` for weights and
	/// biases), so it is the same on every machine and device and safe across threads.
	pub fn new(arch: Arch, shape: Shape, device: Device, seed: i64) -> Result<Model> {
		if shape.channels <= 0 || shape.height < 12 || shape.width < 12 || shape.classes < 2 {
			return Err(invalid(format!("unsupported input shape {shape:?}")));
		}
		let vs = nn::VarStore::new(device);
		let root = vs.root();
		let (c, h, w) = (shape.channels, shape.height, shape.width);
		let linear = |name: &str, i: i64, o: i64| {
			Layer::Linear(nn::linear(&root / name, i, o, Default::default()))
		};
		let conv = |name: &str, i: i64, o: i64, k: i64, stride: i64, padding: i64| {
			let config = nn::ConvConfig {
				stride,
				padding,
				..Default::default()
			};
			Layer::Conv {
				conv: nn::conv2d(&root / name, i, o, k, config),
				stride,
				padding,
			}
		};
		let pool = |kernel: i64, stride: i64| Layer::MaxPool { kernel, stride };
		let layers = match arch {
			Arch::Mlp { hidden } => {
				if hidden <= 0 {
					return Err(invalid("MLP needs hidden units"));
				}
				vec![
					Layer::Image(c, h, w),
					Layer::Flatten,
					linear("fc1", c * h * w, hidden),
					Layer::Relu,
					linear("fc2", hidden, shape.classes),
				]
			}
			Arch::Cnn => vec![
				Layer::Image(c, h, w),
				conv("conv1", c, 32, 5, 1, 0),
				Layer::Relu,
				pool(2, 2),
				conv("conv2", 32, 64, 5, 1, 0),
				Layer::Relu,
				pool(2, 2),
				Layer::Flatten,
				linear("fc1", crate::registry::cnn_features(shape), 128),
				Layer::Relu,
				linear("fc2", 128, shape.classes),
			],
			Arch::DpCnn => vec![
				Layer::Image(c, h, w),
				conv("conv1", c, 16, 8, 2, 3),
				Layer::Tanh,
				pool(2, 1),
				conv("conv2", 16, 32, 4, 2, 0),
				Layer::Tanh,
				pool(2, 1),
				Layer::Flatten,
				linear("fc1", crate::registry::dp_cnn_features(shape), 32),
				Layer::Tanh,
				linear("fc2", 32, shape.classes),
			],
			Arch::SimpleCnn => vec![
				Layer::Image(c, h, w),
				conv("conv1", c, 6, 5, 1, 0),
				Layer::Relu,
				pool(2, 2),
				conv("conv2", 6, 16, 5, 1, 0),
				Layer::Relu,
				pool(2, 2),
				Layer::Flatten,
				linear("fc1", crate::registry::simple_cnn_features(shape), 120),
				Layer::Relu,
				linear("fc2", 120, 84),
				Layer::Relu,
				linear("fc3", 84, shape.classes),
			],
			Arch::ScatterLinear => vec![
				Layer::Image(c, h, w),
				Layer::Scatter(Box::new(crate::scatter::Scattering::new(h, w, 2, 8)?)),
				Layer::GroupNorm(27),
				Layer::Flatten,
				linear(
					"fc1",
					crate::registry::scatter_features(shape),
					shape.classes,
				),
			],
		};
		let mut layout: Vec<(String, Vec<i64>)> = vs
			.variables()
			.into_iter()
			.map(|(name, t)| (name, t.size()))
			.collect();
		layout.sort_by(|a, b| a.0.cmp(&b.0));
		let params = layout
			.iter()
			.map(|(_, s)| s.iter().product::<i64>() as usize)
			.sum();
		let mut model = Model {
			arch,
			shape,
			vs,
			layers,
			layout,
			params,
		};
		model.initialise(seed as u64)?;
		Ok(model)
	}

	fn initialise(&mut self, seed: u64) -> Result<()> {
		use rand::{Rng, SeedableRng};
		let layout = self.layout();
		let fan_in = |layer: &str| {
			layout
				.iter()
				.find(|(n, _)| n == &format!("{layer}.weight"))
				.map(|(_, s)| s.iter().skip(1).product::<i64>().max(1))
				.unwrap_or(1)
		};
		let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
		let mut values = Vec::with_capacity(self.param_count());
		for (name, shape) in layout.iter() {
			let layer = name.rsplit_once('.').map(|(l, _)| l).unwrap_or(name);
			let bound = 1.0 / (fan_in(layer) as f32).sqrt();
			let n = shape.iter().product::<i64>() as usize;
			values.extend((0..n).map(|_| rng.gen_range(-bound..bound)));
		}
		self.load_flat(&values)
	}

	/// The device the variables live on.
	pub fn device(&self) -> Device {
		self.vs.device()
	}

	/// Logits for a batch (`train` is accepted for symmetry: no layer behaves differently
	/// in training).
	pub fn forward(&self, xs: &Tensor, _train: bool) -> Tensor {
		self.layers
			.iter()
			.fold(xs.shallow_clone(), |x, l| l.apply(&x))
	}

	/// The stages of the forward pass.
	pub fn layers(&self) -> &[Layer] {
		&self.layers
	}

	/// The variable store (for optimisers).
	pub fn var_store(&self) -> &nn::VarStore {
		&self.vs
	}

	/// The variable store, mutably (to change the parameters' kind, e.g. for tests in f64).
	pub fn var_store_mut(&mut self) -> &mut nn::VarStore {
		&mut self.vs
	}

	/// Variables in the documented order, with their shapes.
	pub fn layout(&self) -> &[(String, Vec<i64>)] {
		&self.layout
	}

	/// Number of parameters.
	pub fn param_count(&self) -> usize {
		self.params
	}

	/// All parameters as one vector, in the documented order.
	pub fn flatten(&self) -> Result<Vec<f32>> {
		let vars = self.vs.variables();
		let mut out = Vec::with_capacity(self.param_count());
		for (name, _) in &self.layout {
			let t = vars
				.get(name)
				.ok_or_else(|| invalid(format!("variable {name} vanished")))?;
			let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
			out.extend(Vec::<f32>::try_from(&flat).map_err(Error::from)?);
		}
		Ok(out)
	}

	/// This model's parameters minus `global` (a local update), in the documented order.
	pub fn delta_from(&self, global: &[f32]) -> Result<Vec<f32>> {
		let flat = self.flatten()?;
		if flat.len() != global.len() {
			return Err(invalid(format!(
				"{} parameters against a global model of {}",
				flat.len(),
				global.len()
			)));
		}
		Ok(flat.iter().zip(global).map(|(l, g)| l - g).collect())
	}

	/// Overwrite all parameters from one vector in the documented order.
	pub fn load_flat(&mut self, values: &[f32]) -> Result<()> {
		if values.len() != self.param_count() {
			return Err(invalid(format!(
				"{} values for {} parameters",
				values.len(),
				self.param_count()
			)));
		}
		if let Some(i) = values.iter().position(|v| !v.is_finite()) {
			return Err(invalid(format!("parameter {i} is not finite")));
		}
		let vars = self.vs.variables();
		let device = self.device();
		let mut offset = 0usize;
		tch::no_grad(|| -> Result<()> {
			for (name, shape) in &self.layout {
				let n = shape.iter().product::<i64>() as usize;
				let src = Tensor::from_slice(&values[offset..offset + n])
					.view(shape.as_slice())
					.to_device(device);
				let mut dst = vars
					.get(name)
					.ok_or_else(|| invalid(format!("variable {name} vanished")))?
					.shallow_clone();
				dst.copy_(&src);
				offset += n;
			}
			Ok(())
		})
	}

	/// Save as safetensors (names as in the module docs).
	pub fn save_safetensors(&self, path: &Path) -> Result<()> {
		if path.extension().and_then(|e| e.to_str()) != Some("safetensors") {
			return Err(invalid("the file name must end in .safetensors"));
		}
		self.vs.save(path).map_err(Error::from)
	}

	/// Load from safetensors written by [`Model::save_safetensors`] (or by PyTorch with the
	/// same names and shapes).
	pub fn load_safetensors(&mut self, path: &Path) -> Result<()> {
		self.vs.load(path).map_err(Error::from)
	}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
	use super::*;

	const FMNIST: Shape = crate::registry::GRAY_28;
	const CIFAR: Shape = Shape {
		channels: 3,
		height: 32,
		width: 32,
		classes: 10,
	};

	#[test]
	fn layouts_and_counts() {
		let mlp = Model::new(Arch::Mlp { hidden: 128 }, FMNIST, Device::Cpu, 0).unwrap();
		assert_eq!(mlp.param_count(), 784 * 128 + 128 + 128 * 10 + 10);
		let names: Vec<&str> = mlp.layout().iter().map(|(n, _)| n.as_str()).collect();
		assert_eq!(names, ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]);
		for shape in [FMNIST, CIFAR] {
			let cnn = Model::new(Arch::Cnn, shape, Device::Cpu, 0).unwrap();
			let x = Tensor::zeros(
				[2, shape.channels, shape.height, shape.width],
				(Kind::Float, Device::Cpu),
			);
			assert_eq!(cnn.forward(&x, false).size(), vec![2, 10]);
		}
		// The registry's formula (used by `publish-task` without libtorch) agrees with
		// the built models for every registered model and data set.
		for model_id in 1..=6 {
			for dataset_id in 1..=3 {
				let arch = crate::registry::model(model_id).unwrap();
				let shape = crate::registry::shape(dataset_id).unwrap();
				let built = Model::new(arch, shape, Device::Cpu, 0).unwrap();
				assert_eq!(
					crate::registry::param_count(model_id, dataset_id).unwrap() as usize,
					built.param_count(),
					"model {model_id} on data set {dataset_id}"
				);
				let x = Tensor::rand(
					[2, shape.channels, shape.height, shape.width],
					(Kind::Float, Device::Cpu),
				);
				assert_eq!(built.forward(&x, false).size(), vec![2, shape.classes]);
			}
		}
	}

	#[test]
	fn flatten_round_trips_and_seeds_reproduce() {
		let a = Model::new(Arch::Cnn, FMNIST, Device::Cpu, 7).unwrap();
		let b = Model::new(Arch::Cnn, FMNIST, Device::Cpu, 7).unwrap();
		let flat = a.flatten().unwrap();
		assert_eq!(flat, b.flatten().unwrap());
		let mut c = Model::new(Arch::Cnn, FMNIST, Device::Cpu, 8).unwrap();
		assert_ne!(flat, c.flatten().unwrap());
		c.load_flat(&flat).unwrap();
		assert_eq!(c.flatten().unwrap(), flat);
		assert!(c.load_flat(&flat[1..]).is_err());
		let mut nan = flat.clone();
		nan[3] = f32::NAN;
		assert!(c.load_flat(&nan).is_err());
	}

	#[test]
	fn safetensors_round_trip() {
		let dir = tempfile::tempdir().unwrap();
		let path = dir.path().join("model.safetensors");
		let a = Model::new(Arch::Mlp { hidden: 32 }, FMNIST, Device::Cpu, 1).unwrap();
		a.save_safetensors(&path).unwrap();
		let mut b = Model::new(Arch::Mlp { hidden: 32 }, FMNIST, Device::Cpu, 2).unwrap();
		b.load_safetensors(&path).unwrap();
		assert_eq!(a.flatten().unwrap(), b.flatten().unwrap());
		assert!(a.save_safetensors(&dir.path().join("model.pt")).is_err());
	}

	/// A PyTorch user loads the file with `safetensors.torch.load_file` into plain
	/// `nn.Linear` / `nn.Conv2d` modules (strict names and shapes) and gets the same
	/// logits as libtorch here (PyTorch 2.13.0 from the venv `scripts/setup` makes).
	#[test]
	fn pytorch_loads_the_safetensors_and_agrees() {
		let python = std::env::var("BLADE_VENV")
			.map(|v| format!("{v}/bin/python"))
			.unwrap_or_else(|_| "python3".into());
		let script =
			std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/check_safetensors.py");
		let dir = tempfile::tempdir().unwrap();
		for (arch, kind, shape) in [
			(Arch::Mlp { hidden: 32 }, "mlp", FMNIST),
			(Arch::Cnn, "cnn", FMNIST),
			(Arch::Cnn, "cnn", CIFAR),
			(Arch::DpCnn, "dp-cnn", FMNIST),
			(Arch::DpCnn, "dp-cnn", CIFAR),
			(Arch::SimpleCnn, "simple-cnn", FMNIST),
			(Arch::SimpleCnn, "simple-cnn", CIFAR),
		] {
			let model = Model::new(arch, shape, Device::Cpu, 5).unwrap();
			let path = dir
				.path()
				.join(format!("{kind}-{}.safetensors", shape.channels));
			model.save_safetensors(&path).unwrap();
			let n = (2 * shape.channels * shape.height * shape.width) as usize;
			let x: Vec<f32> = (0..n)
				.map(|i| ((0.001 * i as f64).sin() * 0.5 + 0.5) as f32)
				.collect();
			let input = Tensor::from_slice(&x).view([2, shape.channels, shape.height, shape.width]);
			let ours = Vec::<f32>::try_from(model.forward(&input, false).flatten(0, -1)).unwrap();
			let out = std::process::Command::new(&python)
				.arg(&script)
				.arg(&path)
				.arg(kind)
				.args([shape.channels, shape.height, shape.width].map(|v| v.to_string()))
				.output()
				.expect("python (scripts/setup installs torch and safetensors into BLADE_VENV)");
			assert!(
				out.status.success(),
				"{}",
				String::from_utf8_lossy(&out.stderr)
			);
			let theirs: Vec<f32> = serde_json::from_slice(&out.stdout).unwrap();
			assert_eq!(theirs.len(), ours.len());
			let diff = ours
				.iter()
				.zip(&theirs)
				.map(|(a, b)| (a - b).abs())
				.fold(0f32, f32::max);
			assert!(diff < 1e-4, "{kind}: max |difference| {diff}");
		}
	}
}
