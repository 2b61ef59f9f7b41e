//! Provenance of a run: build, library versions and hardware (read through `device::probe`).

use serde::{Deserialize, Serialize};
use tch::{Cuda, Device};

use crate::device::{self, probe};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub crate_version: String,
    /// Commit the binary was built from ("-dirty" when tracked files had changes).
    pub git_commit: String,
    pub libtorch_version: String,
    pub cuda_linked: bool,
    pub cuda_available: bool,
    pub device: String,
    pub cpu_model: String,
    pub logical_cpus: usize,
    pub torch_threads: i32,
    pub gpu_model: Option<String>,
    pub os: String,
}

impl Environment {
    pub fn capture(device: Device) -> Self {
        Self {
            crate_version: env!("CARGO_PKG_VERSION").to_string(),
            git_commit: env!("MMSR_GIT_COMMIT").to_string(),
            libtorch_version: env!("MMSR_TORCH_VERSION").to_string(),
            cuda_linked: env!("MMSR_CUDA_LINKED") == "true",
            cuda_available: Cuda::is_available(),
            device: device::label(device),
            cpu_model: probe::cpu_model().unwrap_or_else(|| "unknown".to_string()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            torch_threads: tch::get_num_threads(),
            gpu_model: match device {
                Device::Cuda(index) => probe::gpu_model(index),
                _ => None,
            },
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}
