// One step of Adam for one parameter, giving exactly the numbers of libtorch's
// torch::optim::Adam (what tch's nn::Adam runs) in one pass over memory instead of its eight
// operator passes (mul_, add_, mul_, addcmul_, sqrt, div, add_, addcdiv_).
//
// Exactness rests on libtorch's element-wise CPU kernels computing each element by the same
// formula whatever the tensor's length, except in the scalar tail each parallel chunk ends
// with (chunk lengths not a multiple of two vector widths), where the compiler may have
// contracted other multiply-adds. The one-pass path therefore runs only for tensors whose
// chunks have no tail (tested bit for bit against tch's Adam, sizes with and without tails,
// one and two threads); any other tensor, and every non-CPU or non-float tensor, takes
// libtorch's own operator sequence. The square root is MKL's, called as libtorch calls it: its
// high-accuracy mode is not correctly rounded for 0.6 % of floats, so a hardware square root
// would change numbers.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>

extern "C" void vmsSqrt(int n, const float *a, float *r, long long mode);

namespace {

// libtorch's mode for MKL vector math (ATen/cpu/vml.h): VML_HA | VML_FTZDAZ_OFF |
// VML_ERRMODE_IGNORE.
constexpr long long kVmlMode = 0x00000002 | 0x00140000 | 0x00000100;
// libtorch's TensorIterator splits element-wise loops at this many elements
// (at::internal::GRAIN_SIZE) ...
constexpr int64_t kGrain = 32768;
// ... and each chunk's loop runs in steps of two vectors (16 floats with AVX2, 32 with
// AVX-512); a chunk that is a multiple of 32 has no scalar tail either way.
constexpr int64_t kNoTail = 32;
// Elements per block of the one-pass loop: its four arrays stay in the core's cache between
// the moment update and the parameter update.
constexpr int64_t kBlock = 2048;

struct Hyper {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, bias2_root, eps, neg_step_size,
      weight_decay;
  bool decay;
};

// Whether libtorch's loops over `n` contiguous elements with `threads` threads end every chunk
// on a whole vector pair (at::parallel_for: min(threads, ceil(n / grain)) chunks of
// ceil(n / chunks) elements).
bool chunks_have_no_tail(int64_t n, int64_t threads) {
  if (n < kGrain || threads <= 1) return n % kNoTail == 0;
  const int64_t chunks = std::min(threads, (n + kGrain - 1) / kGrain);
  const int64_t size = (n + chunks - 1) / chunks;
  const int64_t last = n - (chunks - 1) * size;
  return size % kNoTail == 0 && last > 0 && last % kNoTail == 0;
}

// libtorch's step, operator by operator (torch/csrc/api/src/optim/adam.cpp, amsgrad off).
void reference_step(torch::Tensor &p, const torch::Tensor &grad_in, torch::Tensor &exp_avg,
                    torch::Tensor &exp_avg_sq, double lr, double beta1, double beta2, double eps,
                    double weight_decay, double bias_correction1, double bias_correction2) {
  torch::NoGradGuard no_grad;
  torch::Tensor grad = grad_in;
  if (weight_decay != 0) grad = grad.add(p, weight_decay);
  exp_avg.mul_(beta1).add_(grad, 1 - beta1);
  exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
  torch::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bias_correction2)).add_(eps);
  p.addcdiv_(exp_avg, denom, -(lr / bias_correction1));
}

// The same arithmetic per element as libtorch's vectorised kernels: `add_` with alpha is a
// fused multiply-add, `addcmul_` and `addcdiv_` round every product, quotient and sum.
// build.rs compiles this file with -ffp-contract=off: no fused multiply-adds but the written.
__attribute__((target("avx2,fma"))) void moments_avx2(int64_t n, float *m, float *v,
                                                      const float *g, const float *p,
                                                      const Hyper &h) {
  for (int64_t i = 0; i < n; ++i) {
    float grad = h.decay ? std::fma(p[i], h.weight_decay, g[i]) : g[i];
    m[i] = std::fma(grad, h.one_minus_beta1, m[i] * h.beta1);
    v[i] = std::fma(h.one_minus_beta2 * grad, grad, v[i] * h.beta2);
  }
}

__attribute__((target("avx2,fma"))) void update_avx2(int64_t n, float *p, const float *m,
                                                     const float *root, const Hyper &h) {
  for (int64_t i = 0; i < n; ++i) {
    float denom = root[i] / h.bias2_root + h.eps;
    p[i] = p[i] + (h.neg_step_size * m[i]) / denom;
  }
}

void fused_step(torch::Tensor &p, const torch::Tensor &grad, torch::Tensor &exp_avg,
                torch::Tensor &exp_avg_sq, const Hyper &h) {
  const int64_t n = p.numel();
  float *pp = p.data_ptr<float>(), *pm = exp_avg.data_ptr<float>(),
        *pv = exp_avg_sq.data_ptr<float>();
  const float *pg = grad.data_ptr<float>();
  at::parallel_for(0, (n + kBlock - 1) / kBlock, 1, [&](int64_t begin, int64_t end) {
    alignas(64) float root[kBlock];
    for (int64_t b = begin; b < end; ++b) {
      const int64_t at = b * kBlock, len = std::min(kBlock, n - at);
      moments_avx2(len, pm + at, pv + at, pg + at, pp + at, h);
      vmsSqrt(static_cast<int>(len), pv + at, root, kVmlMode);
      update_avx2(len, pp + at, pm + at, root, h);
    }
  });
}

bool contiguous_cpu_float(const torch::Tensor &t) {
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
}

}  // namespace

extern "C" {

// Steps one parameter if it has a gradient: increments *step, then updates `exp_avg`,
// `exp_avg_sq` and the parameter in place. Sets *fused to 1 when the one-pass path ran, 0 when
// libtorch's operators did, -1 when there was no gradient (nothing changed). Returns nullptr,
// or a malloc'ed error message.
char *mmsr_adam_step(torch::Tensor *param, torch::Tensor *exp_avg, torch::Tensor *exp_avg_sq,
                     int64_t *step, double lr, double beta1, double beta2, double eps,
                     double weight_decay, int *fused) {
  try {
    torch::Tensor &p = *param;
    const torch::Tensor &grad = p.grad();
    if (!grad.defined()) {
      *fused = -1;
      return nullptr;
    }
    TORCH_CHECK(!grad.is_sparse(), "Adam does not take sparse gradients");
    TORCH_CHECK(exp_avg->sizes() == p.sizes() && exp_avg_sq->sizes() == p.sizes(),
                "the moment buffers must have the parameter's shape");
    *step += 1;
    // As libtorch: powers of the betas in double at the step count, converted once.
    const double bias_correction1 = 1 - std::pow(beta1, static_cast<double>(*step));
    const double bias_correction2 = 1 - std::pow(beta2, static_cast<double>(*step));
    const bool one_pass = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && contiguous_cpu_float(p) &&
                          contiguous_cpu_float(grad) && contiguous_cpu_float(*exp_avg) &&
                          contiguous_cpu_float(*exp_avg_sq) &&
                          chunks_have_no_tail(p.numel(), at::get_num_threads());
    if (!one_pass) {
      reference_step(p, grad, *exp_avg, *exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
                     bias_correction1, bias_correction2);
      *fused = 0;
      return nullptr;
    }
    // Each scalar converted to float as libtorch's kernels convert their Scalar arguments.
    const Hyper h{static_cast<float>(beta1),
                  static_cast<float>(1 - beta1),
                  static_cast<float>(beta2),
                  static_cast<float>(1 - beta2),
                  static_cast<float>(std::sqrt(bias_correction2)),
                  static_cast<float>(eps),
                  static_cast<float>(-(lr / bias_correction1)),
                  static_cast<float>(weight_decay),
                  weight_decay != 0};
    fused_step(p, grad, *exp_avg, *exp_avg_sq, h);
    *fused = 1;
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

// Drops a parameter's gradient (libtorch's zero_grad with set_to_none, tch's default), so
// that a parameter the next backward pass does not reach keeps no gradient and is not stepped.
void mmsr_clear_grad(torch::Tensor *param) { param->mutable_grad().reset(); }
}
