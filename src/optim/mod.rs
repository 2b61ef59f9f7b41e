//! Adam as the trainer runs it: libtorch's `torch::optim::Adam` (tch's `nn::Adam`, betas 0.9
//! and 0.999, eps 1e-8, weight decay added to the gradient) to the last bit, with each
//! parameter's step in one pass over memory (`adam.cpp`) instead of eight operator passes.
//! Gradients are dropped between steps as libtorch's `zero_grad` drops them, so a parameter a
//! batch does not reach is not stepped and its step count stays, as there.

use tch::{nn, Tensor};

extern "C" {
    fn mmsr_adam_step(
        param: *mut torch_sys::C_tensor,
        exp_avg: *mut torch_sys::C_tensor,
        exp_avg_sq: *mut torch_sys::C_tensor,
        step: *mut i64,
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        fused: *mut std::ffi::c_int,
    ) -> *mut std::ffi::c_char;
    fn mmsr_clear_grad(param: *mut torch_sys::C_tensor);
}

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// One parameter and its moments.
struct Slot {
    param: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    step: i64,
}

/// How a step updated a parameter (for tests and benches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The one-pass kernel.
    OnePass,
    /// libtorch's operators (a tensor whose element-wise loops end in a scalar tail, or not
    /// on the CPU).
    Operators,
    /// No gradient: not stepped.
    Skipped,
}

pub struct Adam {
    slots: Vec<Slot>,
    learning_rate: f64,
    weight_decay: f64,
}

impl Adam {
    /// Adam over `vs`'s trainable variables. Moments start at zero, as libtorch creates them
    /// at a parameter's first step.
    pub fn new(vs: &nn::VarStore, learning_rate: f64, weight_decay: f64) -> Self {
        let slots = vs
            .trainable_variables()
            .into_iter()
            .map(|param| Slot {
                exp_avg: param.zeros_like(),
                exp_avg_sq: param.zeros_like(),
                param,
                step: 0,
            })
            .collect();
        Self {
            slots,
            learning_rate,
            weight_decay,
        }
    }

    pub fn set_lr(&mut self, learning_rate: f64) {
        self.learning_rate = learning_rate;
    }

    pub fn zero_grad(&mut self) {
        for slot in &mut self.slots {
            // SAFETY: a live tensor handle.
            unsafe { mmsr_clear_grad(slot.param.as_mut_ptr()) };
        }
    }

    /// Drops the gradients, back-propagates `loss` and steps.
    pub fn backward_step(&mut self, loss: &Tensor) {
        self.zero_grad();
        loss.backward();
        self.step();
    }

    /// Steps every parameter that has a gradient; returns how each was updated, in the
    /// variable store's order.
    pub fn step(&mut self) -> Vec<Update> {
        self.slots
            .iter_mut()
            .map(|slot| step_one(slot, self.learning_rate, self.weight_decay))
            .collect()
    }
}

fn step_one(slot: &mut Slot, learning_rate: f64, weight_decay: f64) -> Update {
    let mut fused: std::ffi::c_int = 0;
    // SAFETY: live tensor handles and a live step counter; the kernel only writes them.
    let error = unsafe {
        mmsr_adam_step(
            slot.param.as_mut_ptr(),
            slot.exp_avg.as_mut_ptr(),
            slot.exp_avg_sq.as_mut_ptr(),
            &mut slot.step,
            learning_rate,
            BETA1,
            BETA2,
            EPS,
            weight_decay,
            &mut fused,
        )
    };
    // SAFETY: what the call above returned; no tensor comes back.
    unsafe { crate::native::check(error, "adam_step") };
    match fused {
        1 => Update::OnePass,
        0 => Update::Operators,
        _ => Update::Skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::nn::OptimizerConfig;
    use tch::{Device, Kind};

    /// Runs `steps` steps of ours and of tch's Adam from the same parameters and gradients;
    /// returns how ours updated each parameter at the last step.
    fn compare(sizes: &[i64], weight_decay: f64, steps: usize) -> Vec<Update> {
        tch::manual_seed(7);
        let ours = nn::VarStore::new(Device::Cpu);
        let theirs = nn::VarStore::new(Device::Cpu);
        for (i, &n) in sizes.iter().enumerate() {
            let init = Tensor::randn([n], (Kind::Float, Device::Cpu));
            let _ = ours.root().var_copy(&format!("p{i}"), &init);
            let _ = theirs.root().var_copy(&format!("p{i}"), &init);
        }
        let mut adam = Adam::new(&ours, 1e-3, weight_decay);
        let mut reference = nn::Adam {
            wd: weight_decay,
            ..nn::Adam::default()
        }
        .build(&theirs, 1e-3)
        .unwrap();
        let mut updates = Vec::new();
        for step in 0..steps {
            // Gradients of several magnitudes: alike ones make the moments' products and sums
            // comparable, where any other rounding shows (one formula changed fails on
            // thousands of elements); tiny and large ones exercise the square root's range. The
            // last parameter gets none at the second step.
            let scale = [1.0, 1.0, 1e-3, 1e3, 1e-6, 1.0][step % 6];
            let (a, b) = (ours.trainable_variables(), theirs.trainable_variables());
            let loss_of = |vars: &[Tensor], grads: &[Tensor]| {
                vars.iter()
                    .zip(grads)
                    .enumerate()
                    .filter(|(i, _)| step != 1 || *i + 1 < vars.len())
                    .map(|(_, (v, g))| (v * g).sum(Kind::Float))
                    .fold(Tensor::zeros([], (Kind::Float, Device::Cpu)), |s, t| s + t)
            };
            let grads: Vec<Tensor> = a.iter().map(|v| Tensor::randn_like(v) * scale).collect();
            adam.zero_grad();
            loss_of(&a, &grads).backward();
            updates = adam.step();
            reference.backward_step(&loss_of(&b, &grads));
            for (x, y) in a.iter().zip(&b) {
                if !x.equal(y) {
                    let idx = x.ne_tensor(y).nonzero().squeeze_dim(1);
                    panic!(
                        "step {step}: size {} differs at {} positions, first {:?}",
                        x.numel(),
                        idx.size()[0],
                        Vec::<i64>::try_from(idx.narrow(0, 0, idx.size()[0].min(10))).unwrap()
                    );
                }
            }
        }
        updates
    }

    const SIZES: [i64; 12] = [
        1, 7, 16, 31, 32, 128, 4099, 32_768, 40_000, 65_536, 774_464, 1_548_928,
    ];

    #[test]
    fn gives_libtorch_s_adam_bit_for_bit_with_one_and_two_threads() {
        // As every entry point does: MKL's square root settled before any parallel call.
        crate::vml::initialise_on_one_thread();
        let threads = tch::get_num_threads();
        for count in [1, 2] {
            tch::set_num_threads(count);
            for weight_decay in [0.0, 0.01] {
                let updates = compare(&SIZES, weight_decay, 6);
                // The sizes libtorch loops over without tails take the one pass.
                let one_pass: Vec<i64> = SIZES
                    .iter()
                    .zip(&updates)
                    .filter(|(_, u)| **u == Update::OnePass)
                    .map(|(n, _)| *n)
                    .collect();
                assert!(one_pass.contains(&128) && one_pass.contains(&1_548_928));
                assert!(!one_pass.contains(&31) && !one_pass.contains(&4099));
            }
        }
        tch::set_num_threads(threads);
    }

    #[test]
    fn a_parameter_without_gradient_is_not_stepped() {
        let vs = nn::VarStore::new(Device::Cpu);
        let used = vs.root().randn("used", &[64], 0.0, 1.0);
        let unused = vs.root().randn("unused", &[64], 0.0, 1.0);
        let (used_before, unused_before) = (used.copy(), unused.copy());
        let mut adam = Adam::new(&vs, 0.1, 0.0);
        adam.zero_grad();
        used.sum(Kind::Float).backward();
        let updates = adam.step();
        assert_eq!(updates.len(), 2);
        assert!(updates.contains(&Update::Skipped));
        assert!(unused.equal(&unused_before));
        assert!(!used.equal(&used_before));
    }
}
