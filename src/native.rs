//! The calling convention of the project's C++ kernels (`*.cpp` beside the modules that use
//! them, compiled by `build.rs` against libtorch's headers): a kernel stores a new tensor handle
//! and returns null, or returns an error message it allocated; no C++ exception crosses into
//! Rust.

use std::ffi::{c_char, CStr};

use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn mmsr_free_error(message: *mut c_char);
}

/// The kernel's result, or a panic with its message: callers pass tensors they built and
/// checked, so a failure here is a bug, as in tch's own panicking operators.
///
/// # Safety
/// `out` and `error` must be what one kernel call just returned: a null error and a new tensor
/// handle, or a message from `strdup`.
pub(crate) unsafe fn take(out: *mut C_tensor, error: *mut c_char, kernel: &str) -> Tensor {
    // SAFETY: passed on from the caller's contract.
    unsafe { check(error, kernel) };
    // SAFETY: on success the kernel stored a new heap-allocated tensor handle, owned from here.
    unsafe { Tensor::from_ptr(out) }
}

/// Panics with a kernel's error message, if it returned one (see [`take`]).
///
/// # Safety
/// `error` must be what one kernel call just returned: null, or a message from `strdup`.
pub(crate) unsafe fn check(error: *mut c_char, kernel: &str) {
    if !error.is_null() {
        // SAFETY: a non-null return is a NUL-terminated string from strdup, freed once here.
        let message = unsafe { CStr::from_ptr(error) }
            .to_string_lossy()
            .into_owned();
        unsafe { mmsr_free_error(error) };
        panic!("{kernel}: {message}");
    }
}
