//! Provenance of a run: build, library versions and hardware.

use serde::{Deserialize, Serialize};
use tch::{Cuda, Device};

use crate::device;

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
            cpu_model: cpu_model().unwrap_or_else(|| "unknown".to_string()),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            torch_threads: tch::get_num_threads(),
            gpu_model: match device {
                Device::Cuda(index) => gpu_model(index),
                _ => None,
            },
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// tch exposes no device-name query, so ask the driver's tool when it is there.
pub fn gpu_model(index: usize) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name",
            "--format=csv,noheader",
            &format!("--id={index}"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Resets this process's peak resident memory (Linux 4.0+: writing 5 to clear_refs), so that a
/// run inside a longer process (`run-all`) reports its own peak. Best effort: elsewhere the
/// peak stays the process's.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since start or the last reset (Linux VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory of this process now (Linux VmRSS), in bytes.
pub fn current_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Hands the allocator's free pages back to the system and resets the peak, so that the next
/// measurement's peak is its own (as far as glibc allows: memory still in use stays counted).
pub fn release_and_reset_peak_rss() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
    reset_peak_rss();
}
