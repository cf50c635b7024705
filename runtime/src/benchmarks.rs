//! The pallets whose frame-benchmarking v2 benchmarks the `Benchmark` runtime API runs
//! (with `frame-omni-bencher v1 benchmark pallet --runtime <wasm>`).

frame_benchmarking::define_benchmarks!(
	[frame_system, SystemBench::<Runtime>]
	[pallet_difficulty, Difficulty]
	[pallet_fl_tasks, FlTasks]
);

impl frame_system_benchmarking::Config for super::Runtime {}
