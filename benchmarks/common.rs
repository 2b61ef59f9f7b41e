//! What the Beauty benches share (`scaling`, `floors`): the process set-up a run has, the
//! device, CUDA-aware timing, and the prepared `beauty-offline` dataset.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mmsr_bench::dataset::synthetic::SyntheticConfig;
use mmsr_bench::dataset::{registry, PreparedDataset};
use mmsr_bench::train::trainer::synchronize;
use tch::Device;

/// As the binary sets itself up: the allocator's settings (page faults would otherwise
/// dominate small steps) and MKL's vector functions initialised on one thread.
pub fn set_up_as_a_run() {
    mmsr_bench::allocator::tune();
    mmsr_bench::vml::initialise_on_one_thread();
}

/// `MMSR_BENCH_DEVICE=cuda` runs the benches on a GPU; the CPU otherwise.
pub fn device() -> Device {
    match std::env::var("MMSR_BENCH_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    }
}

/// `iters` calls of `f`, timed after the device has finished them.
pub fn timed(device: Device, iters: u64, mut f: impl FnMut()) -> Duration {
    synchronize(device);
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    synchronize(device);
    start.elapsed()
}

/// `beauty-offline` as prepared under `MMSR_DATA_DIR` (default `data/`), or why not.
pub fn load_beauty() -> Result<PreparedDataset, String> {
    let data_dir = std::env::var_os("MMSR_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"));
    registry::load(
        "beauty-offline",
        &data_dir,
        &SyntheticConfig::default(),
        None,
    )
    .map_err(|e| e.to_string())
}
