//! The runtime's FL parameters a trainer acts on.

use super::*;

/// The governed FL parameters the trainer's verdicts use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlParams {
	/// `Fl.LazyZScore`, hundredths of a standard deviation.
	pub lazy_z_score: u32,
	/// `Fl.WatermarkTolerance`, hundredths of a dB.
	pub watermark_tolerance: u32,
}

impl FlParams {
	/// The stored values at `at`, or the runtime's defaults.
	pub fn read(client: &Client, at: Option<H256>) -> Result<FlParams> {
		use blade_fl_runtime::dynamic_params::fl;
		Ok(FlParams {
			lazy_z_score: fl_parameter(
				client,
				at,
				fl::ParametersKey::LazyZScore(fl::LazyZScore),
				|v| match v {
					fl::ParametersValue::LazyZScore(z) => Some(z),
					_ => None,
				},
				<fl::LazyZScore as frame_support::traits::Get<u32>>::get,
			)?,
			watermark_tolerance: fl_parameter(
				client,
				at,
				fl::ParametersKey::WatermarkTolerance(fl::WatermarkTolerance),
				|v| match v {
					fl::ParametersValue::WatermarkTolerance(t) => Some(t),
					_ => None,
				},
				<fl::WatermarkTolerance as frame_support::traits::Get<u32>>::get,
			)?,
		})
	}
}

/// A governed `Fl` parameter: the stored value at `at`, or the runtime's default.
fn fl_parameter<V>(
	client: &Client,
	at: Option<H256>,
	key: blade_fl_runtime::dynamic_params::fl::ParametersKey,
	value: impl Fn(blade_fl_runtime::dynamic_params::fl::ParametersValue) -> Option<V>,
	default: impl FnOnce() -> V,
) -> Result<V> {
	use ::codec::Decode;
	use blade_fl_runtime::configs::{RuntimeParametersKey, RuntimeParametersValue};
	let storage_key = pallet_parameters::Parameters::<blade_fl_runtime::Runtime>::hashed_key_for(
		RuntimeParametersKey::Fl(key),
	);
	if let Some(raw) = client.storage(&storage_key, at)? {
		if let Ok(RuntimeParametersValue::Fl(stored)) = Decode::decode(&mut &raw[..]) {
			if let Some(v) = value(stored) {
				return Ok(v);
			}
		}
	}
	Ok(sp_io::TestExternalities::default().execute_with(default))
}
