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
    /// libgomp's wait policy (`crate::openmp`): changes speed beside other processes, never
    /// numbers, so it is provenance, not identity. Absent in results made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_policy: Option<String>,
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
            wait_policy: Some(crate::openmp::wait_policy()),
            gpu_model: match device {
                Device::Cuda(index) => probe::gpu_model(index),
                _ => None,
            },
            os: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

/// The committed leaderboard folder `results_dir` lies in, if any: a folder below a directory
/// named `leaderboard` that sits beside a `Cargo.toml` (this repository's layout).
pub fn committed_leaderboard(results_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    let absolute = std::path::absolute(results_dir).ok()?;
    absolute
        .ancestors()
        .skip(1)
        .find(|dir| {
            dir.file_name().is_some_and(|n| n == "leaderboard")
                && dir.parent().is_some_and(|p| p.join("Cargo.toml").is_file())
        })
        .map(|_| absolute.clone())
}

/// Results written into a committed leaderboard folder must come from committed code: refused
/// when the binary was built from a dirty tree (`commit` ends in `-dirty`) unless `allow_dirty`,
/// in which case the `-dirty` label in every result file records it (and `check` warns).
pub fn refuse_dirty_results(
    results_dir: &std::path::Path,
    commit: &str,
    allow_dirty: bool,
) -> Result<(), String> {
    match committed_leaderboard(results_dir) {
        Some(folder) if commit.ends_with("-dirty") && !allow_dirty => Err(format!(
            "{} is a committed leaderboard folder, and this binary was built from a working tree with uncommitted changes ({commit}): commit first and rebuild, so that the results can be traced to code anyone can check out, or pass --allow-dirty (the results then carry the -dirty label and `check` warns about them)",
            folder.display()
        )),
        _ => Ok(()),
    }
}

/// The commit label of this binary (`-dirty` when built with uncommitted changes).
pub fn build_commit() -> &'static str {
    env!("MMSR_GIT_COMMIT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dirty_builds_may_not_write_into_committed_leaderboards() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::write(repo.path().join("Cargo.toml"), "").unwrap();
        let inside = repo.path().join("leaderboard/main-cpu-2core");
        let outside = repo.path().join("results");
        assert!(committed_leaderboard(&inside).is_some());
        assert!(committed_leaderboard(&repo.path().join("leaderboard")).is_none());
        assert!(committed_leaderboard(&outside).is_none());
        let e = refuse_dirty_results(&inside, "abc123-dirty", false).unwrap_err();
        assert!(
            e.contains("--allow-dirty") && e.contains("abc123-dirty"),
            "{e}"
        );
        assert!(refuse_dirty_results(&inside, "abc123-dirty", true).is_ok());
        assert!(refuse_dirty_results(&inside, "abc123", false).is_ok());
        assert!(refuse_dirty_results(&outside, "abc123-dirty", false).is_ok());
        // A folder called leaderboard that is not beside a Cargo.toml is not ours.
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(committed_leaderboard(&elsewhere.path().join("leaderboard/x")).is_none());
    }
}
