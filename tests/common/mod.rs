//! Helpers shared by the integration tests: torch's generator lock, paths to the shared real
//! data and the binary, the small run-all matrix, a local HTTP server (`http_server`), raw Beauty
//! fixtures (`raw_beauty`) and one-batch model builds for the zoo tests (`zoo`).
#![allow(dead_code)]

pub mod http_server;
pub mod raw_beauty;
pub mod webdriver;
pub mod zoo;

use std::cell::Cell;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

static TORCH_RNG: Mutex<()> = Mutex::new(());

thread_local! {
    static TORCH_RNG_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Held while a test owns torch's process-global generator.
pub struct TorchRngGuard {
    _lock: Option<MutexGuard<'static, ()>>,
}

impl Drop for TorchRngGuard {
    fn drop(&mut self) {
        TORCH_RNG_DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Torch's generator is process-global and the suite's tests run on parallel threads: a test
/// that seeds it or draws from it (builds a model, trains with dropout, calls `randn`) holds
/// this for its whole body, so that its draws are its own and a seed means what it says.
/// Re-entrant on one thread (`common::zoo::build` takes it too).
pub fn torch_rng() -> TorchRngGuard {
    let lock = (TORCH_RNG_DEPTH.get() == 0).then(|| {
        TORCH_RNG
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    });
    TORCH_RNG_DEPTH.with(|d| d.set(d.get() + 1));
    TorchRngGuard { _lock: lock }
}

/// A file under the shared real-data folder (`../shared/data` next to the repository, or
/// `$MMSR_SHARED_DATA`). The data is part of the test fixtures: a missing file is a failure.
pub fn shared_data(relative: &str) -> PathBuf {
    let root = std::env::var_os("MMSR_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let path = root.join(relative);
    assert!(
        path.exists(),
        "real test data {} is missing: the tests read ../shared/data (or set MMSR_SHARED_DATA)",
        path.display()
    );
    path
}

/// The flags after `run-all` of a small graph matrix: `pop` and HAN-GNN at width 16 on 300 users,
/// two seeds, two epochs (under a second of training).
pub const SMALL_GRAPH_MATRIX: &[&str] = &[
    "--models",
    "pop,han-gnn",
    "--seeds",
    "1,2",
    "--device",
    "cpu",
    "--set",
    "model.han-gnn.dim=16",
    "--set",
    "model.han-gnn.init_codes_from_centres=false",
    "--set",
    "train.max_epochs=2",
    "--set",
    "synthetic.users=300",
    "--set",
    "synthetic.items=120",
];

/// The mmsr-bench binary with `args` inside `dir`, with one libtorch (OpenMP) thread: the
/// suite's tests run side by side, and OpenMP threads of several processes on few cores spin
/// against each other (before the binary shortened libgomp's spin, two `check --rerun` of 6.6 s
/// each took 36 s together with two threads each; a test that took 30 s alone took 232 s in
/// the suite). The wait policy comes from `.cargo/config.toml`, so the binary need not
/// re-execute itself to set it.
pub fn mmsr_command(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mmsr-bench"));
    command
        .args(args)
        .current_dir(dir)
        .env("OMP_NUM_THREADS", "1")
        .env_remove("MMSR_DATA_DIR")
        .env_remove("MMSR_RESULTS_DIR");
    command
}

/// Runs the mmsr-bench binary with `args` inside `dir` (see [`mmsr_command`]).
pub fn mmsr(dir: &std::path::Path, args: &[&str]) -> Output {
    mmsr_command(dir, args).output().expect("the binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes into `dir` a copy of the committed `beauty.yaml` registry entry with every size and
/// checksum blanked, so hand-made raw files are accepted.
pub fn blank_registry(dir: &std::path::Path) {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/beauty.yaml"),
    )
    .unwrap();
    let blank: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("size:") {
                "    size: null".to_string()
            } else if t.starts_with("sha256:") {
                "    sha256: null".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(dir.join("beauty.yaml"), blank + "\n").unwrap();
}
