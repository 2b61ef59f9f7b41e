// The evaluation's target ranks on the CPU in one pass over each score row: the rule of
// `crate::eval::rank_of_target`, 1 + #{j : s_j > s_t} + #{j < t : s_j == s_t}. libtorch's form
// (two comparison tensors, two sums with type conversion) makes five or six passes over the
// [B, I] scores; the ranks are integers, so both forms give exactly the same result.

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cstring>

extern "C" {

// Returns nullptr and sets *out ([B] int64), or returns a malloc'ed error message.
char *mmsr_target_ranks(torch::Tensor **out, torch::Tensor *scores, torch::Tensor *targets) {
  try {
    TORCH_CHECK(scores->device().is_cpu() && scores->scalar_type() == torch::kFloat &&
                    scores->dim() == 2,
                "scores must be a CPU float32 [B, I] tensor");
    TORCH_CHECK(targets->device().is_cpu() && targets->scalar_type() == torch::kLong &&
                    targets->dim() == 1 && targets->size(0) == scores->size(0),
                "targets must be a CPU int64 vector, one per score row");
    const int64_t rows = scores->size(0), items = scores->size(1);
    torch::Tensor s = scores->contiguous(), t = targets->contiguous();
    for (int64_t r = 0; r < rows; ++r)
      TORCH_CHECK(t.data_ptr<int64_t>()[r] >= 0 && t.data_ptr<int64_t>()[r] < items,
                  "target ", t.data_ptr<int64_t>()[r], " is out of range");
    auto ranks = torch::empty({rows}, t.options());
    const float *ps = s.data_ptr<float>();
    const int64_t *pt = t.data_ptr<int64_t>();
    int64_t *pr = ranks.data_ptr<int64_t>();
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const float *row = ps + r * items;
        const int64_t target = pt[r];
        const float score = row[target];
        int64_t before = 0;
        for (int64_t j = 0; j < target; ++j) before += row[j] >= score;
        for (int64_t j = target + 1; j < items; ++j) before += row[j] > score;
        pr[r] = before + 1;
      }
    });
    *out = new torch::Tensor(ranks);
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}
}
