//! Fused CPU kernels for the per-edge work of sparse layers (`edge_kernels.cpp`): the same
//! functions as [`ops::edge_dot`](super::ops::edge_dot) and [`ops::aggregate`](super::ops::aggregate)
//! with their own backward passes, which read the node tables in place instead of materialising
//! [E, D] gathers, products and gradients. They sum in another order than the eager operators,
//! so scores agree to rounding (tested), not to the bit; a model uses them only when its config
//! says `edge_kernels: fused`.

use std::ffi::c_char;

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};
use torch_sys::C_tensor;

use crate::native::take;

/// `model.edge_kernels`: how sparse layers compute their per-edge products and aggregations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKernels {
    /// libtorch's eager operators (gathers, products, `index_add`): every device.
    #[default]
    Eager,
    /// The fused kernels on the CPU (CUDA batches fall back to the eager operators).
    Fused,
}

impl EdgeKernels {
    pub fn is_eager(&self) -> bool {
        *self == Self::Eager
    }

    /// Whether tensors on `device` take the fused kernels.
    pub fn fused_on(&self, device: Device) -> bool {
        *self == Self::Fused && device == Device::Cpu
    }
}

extern "C" {
    fn mmsr_edge_dot(
        out: *mut *mut C_tensor,
        a: *const C_tensor,
        b: *const C_tensor,
        rows: *const C_tensor,
        cols: *const C_tensor,
        scale: *const C_tensor,
        relations: *const C_tensor,
    ) -> *mut c_char;
    fn mmsr_edge_aggregate(
        out: *mut *mut C_tensor,
        weights: *const C_tensor,
        rows: *const C_tensor,
        cols: *const C_tensor,
        values: *const C_tensor,
        num_rows: i64,
    ) -> *mut c_char;
}

/// `sum_d a[rows[e], d] * b[cols[e], d]` (times `scale[relations[e], d]` when given): [E].
/// `rows` must be sorted ascending.
pub fn edge_dot(
    a: &Tensor,
    b: &Tensor,
    rows: &Tensor,
    cols: &Tensor,
    scale: Option<(&Tensor, &Tensor)>,
) -> Tensor {
    let mut out = std::ptr::null_mut();
    let (scale, relations) = match scale {
        Some((s, r)) => (s.as_ptr(), r.as_ptr()),
        None => (std::ptr::null(), std::ptr::null()),
    };
    // SAFETY: every pointer is a live tensor handle (or null where the kernel accepts it).
    let error = unsafe {
        mmsr_edge_dot(
            &mut out,
            a.as_ptr(),
            b.as_ptr(),
            rows.as_ptr(),
            cols.as_ptr(),
            scale,
            relations,
        )
    };
    // SAFETY: what the kernel call above returned.
    unsafe { take(out, error, "edge_dot") }
}

/// `out[r] = sum over edges (r, c) of weights[e] * values[c]`: [num_rows, D]. `rows` must be
/// sorted ascending; weights are one per edge.
pub fn aggregate(
    weights: &Tensor,
    rows: &Tensor,
    cols: &Tensor,
    values: &Tensor,
    num_rows: i64,
) -> Tensor {
    let mut out = std::ptr::null_mut();
    // SAFETY: every pointer is a live tensor handle.
    let error = unsafe {
        mmsr_edge_aggregate(
            &mut out,
            weights.as_ptr(),
            rows.as_ptr(),
            cols.as_ptr(),
            values.as_ptr(),
            num_rows,
        )
    };
    // SAFETY: what the kernel call above returned.
    unsafe { take(out, error, "edge_aggregate") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::ops;
    use tch::Kind;

    /// A random row-sorted edge list over `n` nodes, every node with a self-loop.
    fn edges(n: i64, extra: i64) -> (Tensor, Tensor) {
        let rows = Tensor::cat(
            &[
                Tensor::arange(n, (Kind::Int64, Device::Cpu)),
                Tensor::randint(n, [extra], (Kind::Int64, Device::Cpu)),
            ],
            0,
        );
        let cols = Tensor::cat(
            &[
                Tensor::arange(n, (Kind::Int64, Device::Cpu)),
                Tensor::randint(n, [extra], (Kind::Int64, Device::Cpu)),
            ],
            0,
        );
        let order = rows.argsort_stable(true, 0, false);
        (rows.index_select(0, &order), cols.index_select(0, &order))
    }

    fn max_difference(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    fn leaf(shape: &[i64]) -> Tensor {
        Tensor::randn(shape, (Kind::Float, Device::Cpu)).set_requires_grad(true)
    }

    #[test]
    fn edge_dot_and_its_gradients_equal_the_eager_operators() {
        tch::manual_seed(3);
        let (n, d) = (50, 16);
        let (rows, cols) = edges(n, 300);
        let relations = Tensor::randint(4, [rows.size()[0]], (Kind::Int64, Device::Cpu));
        for scaled in [false, true] {
            let (a, b, s) = (leaf(&[n, d]), leaf(&[n, d]), leaf(&[4, d]));
            let upstream = Tensor::randn([rows.size()[0]], (Kind::Float, Device::Cpu));
            let fused = edge_dot(&a, &b, &rows, &cols, scaled.then_some((&s, &relations)));
            let eager = if scaled {
                ops::scaled_edge_dot(&a, &b, &rows, &cols, &s, &relations)
            } else {
                ops::edge_dot(&a, &b, &rows, &cols)
            };
            assert!(max_difference(&fused, &eager) < 1e-5);
            let inputs = [&a, &b, &s];
            let fused_grads = Tensor::run_backward(
                &[(&fused * &upstream).sum(Kind::Float)],
                &inputs,
                false,
                false,
            );
            let eager_grads = Tensor::run_backward(
                &[(&eager * &upstream).sum(Kind::Float)],
                &inputs,
                false,
                false,
            );
            for (i, (f, e)) in fused_grads.iter().zip(&eager_grads).enumerate() {
                if i == 2 && !scaled {
                    continue;
                }
                assert!(max_difference(f, e) < 1e-4, "gradient {i}, scaled {scaled}");
            }
        }
    }

    #[test]
    fn aggregate_and_its_gradients_equal_the_eager_operators() {
        tch::manual_seed(4);
        let (n, d) = (40, 8);
        let (rows, cols) = edges(n, 200);
        let (w, v) = (leaf(&[rows.size()[0]]), leaf(&[n, d]));
        let upstream = Tensor::randn([n, d], (Kind::Float, Device::Cpu));
        let fused = aggregate(&w, &rows, &cols, &v, n);
        let eager = ops::aggregate(&w, &rows, &cols, &v, n);
        assert!(max_difference(&fused, &eager) < 1e-5);
        let grads = |out: &Tensor| {
            Tensor::run_backward(
                &[(out * &upstream).sum(Kind::Float)],
                &[&w, &v],
                false,
                false,
            )
        };
        for (f, e) in grads(&fused).iter().zip(&grads(&eager)) {
            assert!(max_difference(f, e) < 1e-4);
        }
    }

    #[test]
    fn same_numbers_with_one_thread_and_two() {
        tch::manual_seed(5);
        let (n, d) = (3000, 32);
        let (rows, cols) = edges(n, 20_000);
        let relations = Tensor::randint(4, [rows.size()[0]], (Kind::Int64, Device::Cpu));
        let run = || {
            let (a, s) = (leaf(&[n, d]), leaf(&[4, d]));
            let logits = edge_dot(&a, &a, &rows, &cols, Some((&s, &relations)));
            let out = aggregate(&logits, &rows, &cols, &a, n);
            let grads = Tensor::run_backward(&[out.sum(Kind::Float)], &[&a, &s], false, false);
            (out, grads)
        };
        let threads = tch::get_num_threads();
        tch::manual_seed(6);
        tch::set_num_threads(1);
        let one = run();
        tch::manual_seed(6);
        tch::set_num_threads(2);
        let two = run();
        tch::set_num_threads(threads);
        assert!(one.0.equal(&two.0));
        assert!(one.1.iter().zip(&two.1).all(|(x, y)| x.equal(y)));
    }

    #[test]
    #[should_panic(expected = "edge column index 3 is out of range")]
    fn an_index_outside_the_table_is_refused_before_any_read() {
        let t = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
        let rows = Tensor::from_slice(&[0i64, 1]);
        let _ = edge_dot(&t, &t, &rows, &Tensor::from_slice(&[0i64, 3]), None);
    }

    #[test]
    #[should_panic(expected = "sorted ascending")]
    fn unsorted_rows_are_refused() {
        let v = Tensor::ones([3, 2], (Kind::Float, Device::Cpu));
        let w = Tensor::ones([2], (Kind::Float, Device::Cpu));
        let _ = aggregate(
            &w,
            &Tensor::from_slice(&[2i64, 0]),
            &Tensor::from_slice(&[0i64, 1]),
            &v,
            3,
        );
    }
}
