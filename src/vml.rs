//! libtorch computes some element-wise functions (`sqrt`, `exp`, `log`, `tanh`, ...) with MKL's
//! vector math library, called from inside its own parallel loops: with two threads each thread
//! calls MKL on its half of the tensor. When both threads make a function's first call in the
//! process at once, one of them sometimes computes its half on another path, about 12 bits
//! accurate instead of 24; later calls are right. (MKL is closed: that it resolves the
//! implementation lazily and races there is our reading of the measurements below, not of its
//! code.)
//!
//! Measured on the 2-core Intel Xeon (family 6 model 207): in about 3 % of two-thread processes
//! the first Adam step (whose `sqrt` is the process's first) gave the second half of SASRec's
//! item table a different update, every such process the same different one, so the run's
//! numbers had two possible values; the same happens in plain PyTorch 2.11 on that host (a
//! first `x.sqrt()` with two threads, 1 process in 150). Making every such function's first
//! call here, on one thread, before any parallel work, settles the choice before it can race.
//! The calls compute on one-element tensors and draw no random numbers, so no result changes
//! except those the race had changed.

use tch::{Kind, Tensor};

/// Calls each element-wise function that libtorch hands to MKL's vector math library once, in
/// single and double precision, on this thread (one element: too small to run in parallel).
pub fn initialise_on_one_thread() {
    let _no_grad = tch::no_grad_guard();
    for kind in [Kind::Float, Kind::Double] {
        let x = Tensor::from_slice(&[0.5f64]).to_kind(kind);
        for function in FUNCTIONS {
            let _ = function(&x);
        }
    }
}

/// libtorch 2.11's list (ATen `vml.h`, `IMPLEMENT_VML_MKL`).
const FUNCTIONS: [fn(&Tensor) -> Tensor; 16] = [
    Tensor::acos,
    Tensor::asin,
    Tensor::atan,
    Tensor::cos,
    Tensor::erf,
    Tensor::erfc,
    Tensor::erfinv,
    Tensor::exp,
    Tensor::log,
    Tensor::log10,
    Tensor::log2,
    Tensor::sin,
    Tensor::sqrt,
    Tensor::tan,
    Tensor::tanh,
    Tensor::trunc,
];
