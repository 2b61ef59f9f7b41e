//! The matrix products a stretch of work runs, counted as libtorch dispatches them
//! (`products.cpp`): their floating-point operations and the time spent in them. A model's
//! FLOP floor is what its products would take at the machine's peak rate; the counted time
//! says how far the products themselves are from that rate, and the rest of a step is
//! everything that is not a product (element-wise operators, indexing, the optimiser).
//!
//! Counted: `mm`, `addmm`, `bmm`, `baddbmm`, `mv`, `addmv`, `dot`, forward and backward (autograd
//! calls the same operators). Not counted: the project's own C++ kernels (the fused edge
//! kernels' dot products and aggregations run no libtorch product), which are small beside
//! the products (docs/performance.md). On CUDA the operations are right but the time is the
//! launch time.

use std::ffi::{c_char, CStr};
use std::sync::Mutex;

extern "C" {
    fn mmsr_products_start(profile_operators: bool) -> *mut c_char;
    fn mmsr_products_stop(flops: *mut i64, nanos: *mut i64, calls: *mut i64, unreadable: *mut i64);
    fn mmsr_products_profile() -> *mut c_char;
    fn mmsr_products_free(text: *mut c_char);
}

/// What [`count`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Products {
    /// Floating-point operations, two per multiply-add.
    pub flops: u64,
    /// Wall time inside the products (they run with libtorch's threads).
    pub seconds: f64,
    /// Product calls.
    pub calls: u64,
    /// Calls whose shapes could not be read (not in `flops`); 0 for every model here.
    pub unreadable: u64,
}

impl Products {
    /// The time these operations take at `flops_per_second`: the FLOP floor at that rate.
    pub fn floor_seconds(&self, flops_per_second: f64) -> f64 {
        self.flops as f64 / flops_per_second
    }

    /// The rate the products ran at, operations per second (0 when nothing was counted).
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.flops as f64 / self.seconds
        } else {
            0.0
        }
    }
}

fn stop() -> Products {
    let (mut flops, mut nanos, mut calls, mut unreadable) = (0, 0, 0, 0);
    // SAFETY: four valid out-pointers; stopping without a started count is harmless.
    unsafe { mmsr_products_stop(&mut flops, &mut nanos, &mut calls, &mut unreadable) };
    Products {
        flops: flops as u64,
        seconds: nanos as f64 * 1e-9,
        calls: calls as u64,
        unreadable: unreadable as u64,
    }
}

/// The wall time of one operator name among the outermost operators of a profiled stretch:
/// those the caller dispatched and autograd's backward nodes (`MmBackward0`), each including
/// the operators it calls.
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorTime {
    pub name: String,
    pub calls: u64,
    pub seconds: f64,
}

/// One count at a time: the C++ counters are per process.
static COUNTING: Mutex<()> = Mutex::new(());

/// Runs `work` on this thread and counts the matrix products it dispatches. The counting
/// observer slows every operator down: time the work separately.
pub fn count<T>(work: impl FnOnce() -> T) -> (T, Products) {
    let (result, products, _) = observe(work, false);
    (result, products)
}

/// [`count`], and the time of every outermost operator, longest first. The observers' own
/// cost falls between the operators, so the times are the operators' and their sum is less
/// than the stretch's wall time; what is not in any operator is the caller's own work (batch
/// assembly, the project's kernels called directly, the optimiser's one pass) and overhead.
pub fn profile<T>(work: impl FnOnce() -> T) -> (T, Products, Vec<OperatorTime>) {
    observe(work, true)
}

fn observe<T>(work: impl FnOnce() -> T, operators: bool) -> (T, Products, Vec<OperatorTime>) {
    let _one = COUNTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // SAFETY: returns null or a strdup'ed message, as every kernel (src/native.rs).
    unsafe { crate::native::check(mmsr_products_start(operators), "counting products") };
    /// Removes the observer should `work` panic.
    struct StopOnUnwind;
    impl Drop for StopOnUnwind {
        fn drop(&mut self) {
            stop();
        }
    }
    let unwinding = StopOnUnwind;
    let result = work();
    std::mem::forget(unwinding);
    let products = stop();
    (result, products, operator_times())
}

/// The last count's operator profile, longest first.
fn operator_times() -> Vec<OperatorTime> {
    // SAFETY: a strdup'ed NUL-terminated string, freed once below.
    let text = unsafe { mmsr_products_profile() };
    let lines = unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned();
    unsafe { mmsr_products_free(text) };
    let mut times: Vec<OperatorTime> = lines
        .lines()
        .filter_map(|line| {
            let mut fields = line.rsplitn(3, '\t');
            let nanos: f64 = fields.next()?.parse().ok()?;
            let calls = fields.next()?.parse().ok()?;
            let name = fields.next()?;
            Some(OperatorTime {
                // Autograd names its nodes' ranges "autograd::engine::evaluate_function: X".
                name: name.rsplit(": ").next().unwrap_or(name).to_string(),
                calls,
                seconds: nanos * 1e-9,
            })
        })
        .collect();
    times.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    times
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device, Kind, Tensor};

    /// Constant tensors: the counts depend on shapes only, and drawing from torch's global
    /// generator would disturb the seeded streams of tests running beside these.
    fn randn(shape: &[i64]) -> Tensor {
        Tensor::full(shape, 0.01, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn a_product_counts_two_operations_per_multiply_add() {
        let (a, b) = (randn(&[3, 4]), randn(&[4, 5]));
        let (_, counted) = count(|| a.matmul(&b));
        assert_eq!(counted.flops, 2 * 3 * 4 * 5);
        assert_eq!((counted.calls, counted.unreadable), (1, 0));
        let (_, counted) = count(|| randn(&[2, 3, 4]).matmul(&randn(&[2, 4, 5])));
        assert_eq!(counted.flops, 2 * 2 * 3 * 4 * 5);
        let (_, counted) = count(|| randn(&[7, 4]).mv(&randn(&[4])));
        assert_eq!(counted.flops, 2 * 7 * 4);
    }

    #[test]
    fn a_backward_pass_counts_its_two_products() {
        let a = randn(&[6, 8]).set_requires_grad(true);
        let b = randn(&[8, 3]).set_requires_grad(true);
        let (_, counted) = count(|| a.matmul(&b).sum(Kind::Float).backward());
        assert_eq!(counted.flops, 3 * 2 * 6 * 8 * 3);
        assert_eq!(counted.calls, 3);
    }

    #[test]
    fn composite_operators_count_their_products_once() {
        let vs = nn::VarStore::new(Device::Cpu);
        let constant = nn::LinearConfig {
            ws_init: nn::Init::Const(0.01),
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let linear = nn::linear(vs.root(), 4, 6, constant);
        let x = randn(&[2, 3, 4]);
        let (_, counted) = count(|| x.apply(&linear));
        assert_eq!(counted.flops, 2 * (2 * 3) * 4 * 6);
        assert_eq!(counted.calls, 1);
        // A GRU's products: the input and hidden projections at every step, whatever the
        // order libtorch takes them in.
        let (batch, steps, input, hidden) = (2, 3, 4, 5);
        let params = [
            randn(&[3 * hidden, input]),
            randn(&[3 * hidden, hidden]),
            randn(&[3 * hidden]),
            randn(&[3 * hidden]),
        ];
        let sequence = randn(&[batch, steps, input]);
        let start = randn(&[1, batch, hidden]);
        let (_, counted) =
            count(|| sequence.gru(&start, &params, true, 1, 0.0, false, false, true));
        let per_step = 2 * batch * 3 * hidden * (input + hidden);
        assert_eq!(counted.flops, (steps * per_step) as u64);
    }

    #[test]
    fn other_operators_and_other_threads_count_nothing() {
        let a = randn(&[50, 50]);
        let (_, counted) = count(|| {
            let busy = std::thread::spawn(|| randn(&[40, 40]).matmul(&randn(&[40, 40])));
            let _ = (&a * 2.0).exp().sum(Kind::Float);
            busy.join().unwrap()
        });
        assert_eq!(counted, Products::default());
    }

    #[test]
    fn a_profile_times_the_outermost_operators_and_backward_nodes() {
        let a = randn(&[30, 40]).set_requires_grad(true);
        let b = randn(&[40, 20]);
        let ((), counted, operators) = profile(|| {
            // matmul dispatches mm inside: only matmul is outermost.
            let loss = a.matmul(&b).exp().sum(Kind::Float);
            loss.backward();
        });
        assert_eq!(counted.flops, 2 * 2 * 30 * 40 * 20);
        let calls = |name: &str| operators.iter().find(|o| o.name == name).map(|o| o.calls);
        assert_eq!(calls("aten::matmul"), Some(1));
        assert_eq!(calls("aten::exp"), Some(1));
        assert_eq!(
            calls("aten::mm"),
            None,
            "mm runs inside matmul and MmBackward0"
        );
        assert_eq!(calls("MmBackward0"), Some(1));
        assert_eq!(calls("ExpBackward0"), Some(1));
        assert!(operators.windows(2).all(|w| w[0].seconds >= w[1].seconds));
        // A plain count leaves no profile behind.
        let (_, _, operators) = observe(|| a.matmul(&b), false);
        assert!(operators.is_empty());
    }

    #[test]
    fn a_count_after_a_panicking_one_starts_afresh() {
        let a = randn(&[2, 2]);
        let panicked = std::panic::catch_unwind(|| {
            count(|| {
                let _ = a.matmul(&a);
                panic!("work failed");
            })
        });
        assert!(panicked.is_err());
        let (_, counted) = count(|| a.matmul(&a));
        assert_eq!(counted.flops, 2 * 2 * 2 * 2);
    }
}
