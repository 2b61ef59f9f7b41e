//! Crash injection for the kill tests (`tests/crash.rs`).
//!
//! The code that writes files, trains and downloads passes named crash points. With the
//! environment variable `MMSR_KILL_AT=N` the process sends itself SIGKILL at the N-th point it
//! passes (no destructor, no flush, no cleanup: what a power cut or the OOM killer does), so a
//! test can enumerate every point of a command and check that resuming loses nothing. With
//! `MMSR_KILL_AT=list` each point is printed to stderr as `crash point N: label`. Unset, as in
//! every normal run, a point costs one load of an initialised `OnceLock`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The environment variable that arms the crash points.
pub const KILL_AT: &str = "MMSR_KILL_AT";

enum Mode {
    Off,
    List,
    KillAt(u64),
}

fn mode() -> &'static Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    MODE.get_or_init(|| match std::env::var(KILL_AT).ok().as_deref() {
        None | Some("") => Mode::Off,
        Some("list") => Mode::List,
        Some(n) => n.parse().map(Mode::KillAt).unwrap_or_else(|_| {
            eprintln!("warning: {KILL_AT}={n:?} is neither a number nor `list`; ignored");
            Mode::Off
        }),
    })
}

/// A crash point: the process may be killed here (see the module docs).
pub fn point(label: impl FnOnce() -> String) {
    static PASSED: AtomicU64 = AtomicU64::new(0);
    match mode() {
        Mode::Off => {}
        Mode::List => {
            let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
            eprintln!("crash point {n}: {}", label());
        }
        Mode::KillAt(at) => {
            let n = PASSED.fetch_add(1, Ordering::SeqCst) + 1;
            if n == *at {
                eprintln!("crash point {n}: {}: SIGKILL", label());
                // SAFETY: kill(2) on our own pid with a constant signal has no memory effects.
                unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                }
            }
        }
    }
}

/// The file name of `path` for crash-point labels.
pub fn name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
