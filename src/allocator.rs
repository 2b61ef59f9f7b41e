//! glibc allocator settings for a process that allocates and frees tensors of a few MB
//! thousands of times a second. By default glibc serves such blocks with fresh `mmap`s and
//! returns freed heap tops to the system, so every batch pays page faults for zeroed pages
//! again. With these settings freed memory stays with the process for reuse (per-run peaks are
//! measured after `malloc_trim`, `device::probe`); the cost is a larger heap. The measurements
//! (page faults, system time, peak RSS) are in docs/performance.md.

/// Blocks up to this size come from the heap (glibc's largest allowed threshold on 64-bit).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap is kept up to this size instead of being trimmed.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Applies the settings; call once at start, before libtorch allocates. A no-op off glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
