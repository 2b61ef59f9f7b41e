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
        heads: i64,
    ) -> *mut c_char;
    fn mmsr_edge_aggregate(
        out: *mut *mut C_tensor,
        weights: *const C_tensor,
        rows: *const C_tensor,
        cols: *const C_tensor,
        values: *const C_tensor,
        num_rows: i64,
        heads: i64,
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
    call_edge_dot(a, b, rows, cols, scale, 1)
}

/// One dot product per head: `sum_d a[rows[e], h, d] * b[cols[e], h, d]` for `a` [N, H, d] and
/// `b` [M, H, d]: [E, H]. `rows` must be sorted ascending.
pub fn edge_dot_per_head(a: &Tensor, b: &Tensor, rows: &Tensor, cols: &Tensor) -> Tensor {
    let heads = a.size()[1];
    call_edge_dot(&rows_of(a), &rows_of(b), rows, cols, None, heads).view([-1, heads])
}

/// `t` [N, ...] as [N, width] (explicit, so that an empty table reshapes too).
fn rows_of(t: &Tensor) -> Tensor {
    let shape = t.size();
    t.reshape([shape[0], shape[1..].iter().product()])
}

fn call_edge_dot(
    a: &Tensor,
    b: &Tensor,
    rows: &Tensor,
    cols: &Tensor,
    scale: Option<(&Tensor, &Tensor)>,
    heads: i64,
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
            heads,
        )
    };
    // SAFETY: what the kernel call above returned.
    unsafe { take(out, error, "edge_dot") }
}

/// `out[r] = sum over edges (r, c) of weights[e] * values[c]`: weights [E] against values
/// [N, D] give [num_rows, D]; weights [E, H] (one per head) against values [N, H, d] give
/// [num_rows, H, d]. `rows` must be sorted ascending.
pub fn aggregate(
    weights: &Tensor,
    rows: &Tensor,
    cols: &Tensor,
    values: &Tensor,
    num_rows: i64,
) -> Tensor {
    let heads = if weights.dim() == 2 {
        weights.size()[1]
    } else {
        1
    };
    let flat = rows_of(values);
    let mut out = std::ptr::null_mut();
    // SAFETY: every pointer is a live tensor handle.
    let error = unsafe {
        mmsr_edge_aggregate(
            &mut out,
            weights.as_ptr(),
            rows.as_ptr(),
            cols.as_ptr(),
            flat.as_ptr(),
            num_rows,
            heads,
        )
    };
    // SAFETY: what the kernel call above returned.
    let out = unsafe { take(out, error, "edge_aggregate") };
    let mut shape = values.size();
    shape[0] = num_rows;
    out.view(shape.as_slice())
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
    fn per_head_products_and_aggregations_equal_the_eager_operators() {
        tch::manual_seed(7);
        let (n, m, heads, width) = (30, 45, 4, 6);
        let (rows, cols) = edges(n, 150);
        let e = rows.size()[0];
        let (a, b) = (leaf(&[n, heads, width]), leaf(&[m, heads, width]));
        let fused = edge_dot_per_head(&a, &b, &rows, &cols);
        let eager = (a.index_select(0, &rows) * b.index_select(0, &cols)).sum_dim_intlist(
            -1,
            false,
            Kind::Float,
        );
        assert_eq!(fused.size(), [e, heads]);
        assert!(max_difference(&fused, &eager) < 1e-5);
        let w = leaf(&[e, heads]);
        let aggregated = aggregate(&w, &rows, &cols, &b, n);
        let reference = ops::aggregate(&w, &rows, &cols, &b, n);
        assert_eq!(aggregated.size(), [n, heads, width]);
        assert!(max_difference(&aggregated, &reference) < 1e-5);
        let (up_dot, up_agg) = (
            Tensor::randn([e, heads], (Kind::Float, Device::Cpu)),
            Tensor::randn([n, heads, width], (Kind::Float, Device::Cpu)),
        );
        let grads = |dot: &Tensor, agg: &Tensor| {
            let loss = (dot * &up_dot).sum(Kind::Float) + (agg * &up_agg).sum(Kind::Float);
            Tensor::run_backward(&[loss], &[&a, &b, &w], false, false)
        };
        let pairs = grads(&fused, &aggregated)
            .into_iter()
            .zip(grads(&eager, &reference));
        for (i, (f, r)) in pairs.enumerate() {
            assert!(max_difference(&f, &r) < 1e-4, "gradient {i}");
        }
        // One head over the whole width is the one-weight kernel, bit for bit.
        let (w1, v) = (leaf(&[e]), leaf(&[m, heads * width]));
        let single = aggregate(&w1, &rows, &cols, &v, n);
        let as_one_head = aggregate(&w1.unsqueeze(1), &rows, &cols, &v.unsqueeze(1), n);
        assert!(single.equal(&as_one_head.squeeze_dim(1)));
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
            // Four heads of eight columns.
            let split = a.view([n, 4, d / 4]);
            let per_head = edge_dot_per_head(&split, &split, &rows, &cols);
            let out = out + aggregate(&per_head, &rows, &cols, &split, n).view([n, d]);
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
