//! libtorch reports failures (running out of memory above all) as Rust panics in tch's
//! infallible API. Runs execute their model work inside [`guarded`], which turns such a panic
//! into an error that says what happened and which knob to turn, instead of a panic trace.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// Installs a panic hook that stays silent inside [`guarded`] (the caller reports) and behaves
/// as the default hook everywhere else. Call once, at start-up.
pub fn install_hook() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !GUARDED.with(Cell::get) {
            default(info);
        }
    }));
}

/// Runs `f`; a panic comes back as `Err(message)`.
pub fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(previous));
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".to_string())
    })
}

/// Whether a libtorch message is an allocation failure (CPU or CUDA).
pub fn is_out_of_memory(message: &str) -> bool {
    let m = message.to_lowercase();
    m.contains("can't allocate memory") || m.contains("out of memory")
}

/// The useful line of a libtorch message: without the `Torch("...")` wrapping, the C++
/// backtrace (escaped or not) and the `[enforce fail at ...]` prefix.
pub fn first_line(message: &str) -> String {
    let m = message.trim_start_matches("called `Result::unwrap()` on an `Err` value: ");
    let m = m.trim_start_matches("Torch(\"");
    let line = m.split("\\n").next().unwrap_or(m);
    let line = line.split('\n').next().unwrap_or(line);
    let start = ["DefaultCPUAllocator", "CUDA out of memory"]
        .iter()
        .find_map(|needle| line.find(needle))
        .unwrap_or(0);
    line[start..].trim().trim_end_matches("\")").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_allocation_failures_are_recognised() {
        assert_eq!(guarded(|| 3), Ok(3));
        let message = guarded(|| -> () {
            panic!("DefaultCPUAllocator: can't allocate memory: you tried to allocate 4 TB")
        })
        .unwrap_err();
        assert!(is_out_of_memory(&message));
        assert!(!is_out_of_memory("index out of range in self"));
        let huge = guarded(|| {
            tch::Tensor::zeros([1 << 40, 1 << 10], (tch::Kind::Float, tch::Device::Cpu))
        })
        .unwrap_err();
        assert!(is_out_of_memory(&huge), "{huge}");
        let line = first_line(&huge);
        assert!(
            line.starts_with("DefaultCPUAllocator: can't allocate memory"),
            "{line}"
        );
        assert!(!line.contains("frame #"), "{line}");
    }
}
