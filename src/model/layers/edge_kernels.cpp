// Fused CPU kernels for the sparse graph layers' per-edge work, with their own backward passes.
//
// The eager form of an edge dot product or an aggregation materialises [E, D] tensors (two
// gathers, a product, a scatter) in the forward pass and as many in the backward; at Beauty's
// density each is a full memory pass for a few FLOPs. These kernels read the node tables in
// place: no [E, D] tensor exists in either direction. Edge lists must be sorted by row (ours
// are: row-major per graph, graphs concatenated). Every output element is computed by one
// thread in a fixed order, so results do not depend on the thread count.
//
// Exposed to Rust as extern "C" functions over tch's tensor handles (`torch::Tensor *`); an
// error returns a malloc'ed message instead of throwing across the boundary.

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/torch.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

namespace {

// Rows per parallel task: a row holds ~3-15 edges of 128 floats.
constexpr int64_t kRowGrain = 32;
// Edges per partial sum of a relation vector's gradient: fixed, so the sum's order does not
// depend on the thread count.
constexpr int64_t kEdgeBlock = 2048;

// CSR offsets of a row-sorted edge list (checked by `check_edges`): edges of row r are
// [ptr[r], ptr[r + 1]).
std::vector<int64_t> row_offsets(const int64_t *rows, int64_t edges, int64_t num_rows) {
  std::vector<int64_t> ptr(num_rows + 1, 0);
  for (int64_t e = 0; e < edges; ++e) ptr[rows[e] + 1] += 1;
  for (int64_t r = 0; r < num_rows; ++r) ptr[r + 1] += ptr[r];
  return ptr;
}

// Edges grouped by column, stable (a counting sort): the edges into column c are
// order[ptr[c] .. ptr[c + 1]), in edge order.
void column_order(const int64_t *cols, int64_t edges, int64_t num_cols, std::vector<int64_t> &ptr,
                  std::vector<int64_t> &order) {
  ptr.assign(num_cols + 1, 0);
  for (int64_t e = 0; e < edges; ++e) ptr[cols[e] + 1] += 1;
  for (int64_t c = 0; c < num_cols; ++c) ptr[c + 1] += ptr[c];
  std::vector<int64_t> next(ptr.begin(), ptr.end() - 1);
  order.resize(edges);
  for (int64_t e = 0; e < edges; ++e) order[next[cols[e]]++] = e;
}

inline float dot(const float *x, const float *y, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t d = 0; d < n; ++d) sum += x[d] * y[d];
  return sum;
}

inline float dot3(const float *x, const float *s, const float *y, int64_t n) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t d = 0; d < n; ++d) sum += x[d] * s[d] * y[d];
  return sum;
}

inline void axpy(float w, const float *x, float *out, int64_t n) {
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) out[d] += w * x[d];
}

inline void axpy3(float w, const float *x, const float *s, float *out, int64_t n) {
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) out[d] += w * x[d] * s[d];
}

void check_table(const Tensor &t, const char *name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be on the CPU");
  TORCH_CHECK(t.scalar_type() == torch::kFloat, name, " must be float32");
  TORCH_CHECK(t.dim() == 2, name, " must be [rows, D]");
}

void check_index(const Tensor &t, const char *name, int64_t edges) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kLong && t.dim() == 1, name,
              " must be a CPU int64 vector");
  TORCH_CHECK(t.size(0) == edges, name, " must have one entry per edge");
}

// out[e] = sum_d a[rows[e], d] * s[rel[e], d] * b[cols[e], d] (s = 1 when unscaled). With
// `heads` H > 1 the D columns are H heads of D / H and there is one dot product per head:
// out[e * H + h] over head h's columns (unscaled only). An autograd function takes no undefined
// inputs, so the unscaled form is its own function.
struct EdgeDotKernel {
  Tensor a, b, rows, cols, scale, relations;
  int64_t heads = 1;

  bool scaled() const { return scale.defined(); }

  Tensor forward() const {
    const int64_t edges = rows.size(0), dim = a.size(1), width = dim / heads;
    auto out = torch::empty({edges * heads}, a.options());
    const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
    const int64_t *pr = rows.data_ptr<int64_t>(), *pc = cols.data_ptr<int64_t>();
    float *po = out.data_ptr<float>();
    const float *ps = scaled() ? scale.data_ptr<float>() : nullptr;
    const int64_t *prel = scaled() ? relations.data_ptr<int64_t>() : nullptr;
    at::parallel_for(0, edges, kEdgeBlock / 4, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; ++e) {
        const float *x = pa + pr[e] * dim, *y = pb + pc[e] * dim;
        if (ps) {
          po[e] = dot3(x, ps + prel[e] * dim, y, dim);
        } else {
          for (int64_t h = 0; h < heads; ++h)
            po[e * heads + h] = dot(x + h * width, y + h * width, width);
        }
      }
    });
    return out;
  }

  // Gradients of a, b and (when scaled) the scale for the upstream gradient g [E]; those not
  // needed (need[i] false) are left undefined.
  tensor_list backward(const Tensor &upstream, const std::array<bool, 3> &need) const {
    Tensor g = upstream.contiguous();
    Tensor grad_a = need[0] ? grad_row_table(g) : Tensor();
    Tensor grad_b = need[1] ? grad_column_table(g) : Tensor();
    if (!scaled()) return {grad_a, grad_b};
    return {grad_a, grad_b, need[2] ? grad_scale(g) : Tensor()};
  }

  // d a[r] = sum over the row's edges of g_e * s_e * b[c_e] (per head): one row per thread.
  Tensor grad_row_table(const Tensor &g) const {
    const int64_t edges = rows.size(0), dim = a.size(1), width = dim / heads;
    const float *pb = b.data_ptr<float>(), *pg = g.data_ptr<float>();
    const int64_t *pr = rows.data_ptr<int64_t>(), *pc = cols.data_ptr<int64_t>();
    const float *ps = scaled() ? scale.data_ptr<float>() : nullptr;
    const int64_t *prel = scaled() ? relations.data_ptr<int64_t>() : nullptr;
    auto grad = torch::zeros_like(a);
    float *pgrad = grad.data_ptr<float>();
    auto ptr = row_offsets(pr, edges, a.size(0));
    at::parallel_for(0, a.size(0), kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        float *out = pgrad + r * dim;
        for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e) {
          if (ps) {
            axpy3(pg[e], pb + pc[e] * dim, ps + prel[e] * dim, out, dim);
          } else {
            for (int64_t h = 0; h < heads; ++h)
              axpy(pg[e * heads + h], pb + pc[e] * dim + h * width, out + h * width, width);
          }
        }
      }
    });
    return grad;
  }

  // d b[c] likewise over the edges into column c, in edge order.
  Tensor grad_column_table(const Tensor &g) const {
    const int64_t edges = rows.size(0), dim = a.size(1), width = dim / heads;
    const float *pa = a.data_ptr<float>(), *pg = g.data_ptr<float>();
    const int64_t *pr = rows.data_ptr<int64_t>(), *pc = cols.data_ptr<int64_t>();
    const float *ps = scaled() ? scale.data_ptr<float>() : nullptr;
    const int64_t *prel = scaled() ? relations.data_ptr<int64_t>() : nullptr;
    auto grad = torch::zeros_like(b);
    float *pgrad = grad.data_ptr<float>();
    std::vector<int64_t> cptr, order;
    column_order(pc, edges, b.size(0), cptr, order);
    at::parallel_for(0, b.size(0), kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        float *out = pgrad + c * dim;
        for (int64_t i = cptr[c]; i < cptr[c + 1]; ++i) {
          const int64_t e = order[i];
          if (ps) {
            axpy3(pg[e], pa + pr[e] * dim, ps + prel[e] * dim, out, dim);
          } else {
            for (int64_t h = 0; h < heads; ++h)
              axpy(pg[e * heads + h], pa + pr[e] * dim + h * width, out + h * width, width);
          }
        }
      }
    });
    return grad;
  }

  // d s[k] = sum over edges of relation k of g_e * a[r_e] * b[c_e]: partial sums over fixed
  // blocks of edges, added in block order.
  Tensor grad_scale(const Tensor &g) const {
    const int64_t edges = rows.size(0), dim = a.size(1);
    const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>(), *pg = g.data_ptr<float>();
    const int64_t *pr = rows.data_ptr<int64_t>(), *pc = cols.data_ptr<int64_t>();
    const int64_t *prel = relations.data_ptr<int64_t>();
    const int64_t kinds = scale.size(0), blocks = (edges + kEdgeBlock - 1) / kEdgeBlock;
    auto partial = torch::zeros({blocks, kinds, dim}, a.options());
    float *pp = partial.data_ptr<float>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      for (int64_t k = begin; k < end; ++k) {
        float *block = pp + k * kinds * dim;
        const int64_t last = std::min(edges, (k + 1) * kEdgeBlock);
        for (int64_t e = k * kEdgeBlock; e < last; ++e)
          axpy3(pg[e], pa + pr[e] * dim, pb + pc[e] * dim, block + prel[e] * dim, dim);
      }
    });
    auto grad = torch::zeros_like(scale);
    float *out = grad.data_ptr<float>();
    for (int64_t k = 0; k < blocks; ++k)
      for (int64_t i = 0; i < kinds * dim; ++i) out[i] += pp[k * kinds * dim + i];
    return grad;
  }
};

struct EdgeDot : public torch::autograd::Function<EdgeDot> {
  static Tensor forward(AutogradContext *ctx, Tensor a, Tensor b, Tensor rows, Tensor cols,
                        int64_t heads) {
    EdgeDotKernel k{a.contiguous(), b.contiguous(), rows.contiguous(), cols.contiguous(), {}, {},
                    heads};
    ctx->save_for_backward({k.a, k.b, k.rows, k.cols});
    ctx->saved_data["heads"] = heads;
    return k.forward();
  }

  static tensor_list backward(AutogradContext *ctx, tensor_list grads) {
    auto s = ctx->get_saved_variables();
    const int64_t heads = ctx->saved_data["heads"].toInt();
    auto g = EdgeDotKernel{s[0], s[1], s[2], s[3], {}, {}, heads}.backward(
        grads[0], {ctx->needs_input_grad(0), ctx->needs_input_grad(1), false});
    return {g[0], g[1], Tensor(), Tensor(), Tensor()};
  }
};

struct ScaledEdgeDot : public torch::autograd::Function<ScaledEdgeDot> {
  static Tensor forward(AutogradContext *ctx, Tensor a, Tensor b, Tensor rows, Tensor cols,
                        Tensor scale, Tensor relations) {
    EdgeDotKernel k{a.contiguous(),    b.contiguous(),     rows.contiguous(),
                    cols.contiguous(), scale.contiguous(), relations.contiguous()};
    ctx->save_for_backward({k.a, k.b, k.rows, k.cols, k.scale, k.relations});
    return k.forward();
  }

  static tensor_list backward(AutogradContext *ctx, tensor_list grads) {
    auto s = ctx->get_saved_variables();
    auto g = EdgeDotKernel{s[0], s[1], s[2], s[3], s[4], s[5]}.backward(
        grads[0], {ctx->needs_input_grad(0), ctx->needs_input_grad(1), ctx->needs_input_grad(4)});
    return {g[0], g[1], Tensor(), Tensor(), g[2], Tensor()};
  }
};

// out[r] = sum over edges (r, c) of w[e] * values[c]: [num_rows, D]. With `heads` H > 1 the D
// columns are H heads of D / H, each weighted by its own w[e * H + h].
struct EdgeAggregate : public torch::autograd::Function<EdgeAggregate> {
  static Tensor forward(AutogradContext *ctx, Tensor weights, Tensor rows, Tensor cols,
                        Tensor values, int64_t num_rows, int64_t heads) {
    weights = weights.contiguous();
    rows = rows.contiguous();
    cols = cols.contiguous();
    values = values.contiguous();
    const int64_t edges = rows.size(0), dim = values.size(1), width = dim / heads;
    auto out = torch::zeros({num_rows, dim}, values.options());
    const float *pw = weights.data_ptr<float>(), *pv = values.data_ptr<float>();
    const int64_t *pr = rows.data_ptr<int64_t>(), *pc = cols.data_ptr<int64_t>();
    float *po = out.data_ptr<float>();
    auto ptr = row_offsets(pr, edges, num_rows);
    at::parallel_for(0, num_rows, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        for (int64_t e = ptr[r]; e < ptr[r + 1]; ++e)
          for (int64_t h = 0; h < heads; ++h)
            axpy(pw[e * heads + h], pv + pc[e] * dim + h * width, po + r * dim + h * width, width);
    });
    ctx->save_for_backward({weights, rows, cols, values});
    ctx->saved_data["heads"] = heads;
    return out;
  }

  static tensor_list backward(AutogradContext *ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    Tensor weights = saved[0], rows = saved[1], cols = saved[2], values = saved[3];
    const int64_t heads = ctx->saved_data["heads"].toInt();
    Tensor g = grads[0].contiguous();
    const int64_t edges = rows.size(0), dim = values.size(1), width = dim / heads;
    const float *pw = weights.data_ptr<float>(), *pv = values.data_ptr<float>(),
                *pg = g.data_ptr<float>();
    const int64_t *pr = rows.data_ptr<int64_t>(), *pc = cols.data_ptr<int64_t>();

    // d w[e] = g[r_e] . values[c_e] (per head).
    Tensor grad_w, grad_v;
    if (ctx->needs_input_grad(0)) {
      grad_w = torch::empty_like(weights);
      float *pgw = grad_w.data_ptr<float>();
      at::parallel_for(0, edges, kEdgeBlock / 4, [&](int64_t begin, int64_t end) {
        for (int64_t e = begin; e < end; ++e)
          for (int64_t h = 0; h < heads; ++h)
            pgw[e * heads + h] =
                dot(pg + pr[e] * dim + h * width, pv + pc[e] * dim + h * width, width);
      });
    }
    if (!ctx->needs_input_grad(3)) return {grad_w, Tensor(), Tensor(), grad_v, Tensor(), Tensor()};

    // d values[c] = sum over the edges into c of w_e * g[r_e], in edge order.
    grad_v = torch::zeros_like(values);
    float *pgv = grad_v.data_ptr<float>();
    std::vector<int64_t> cptr, order;
    column_order(pc, edges, values.size(0), cptr, order);
    at::parallel_for(0, values.size(0), kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c)
        for (int64_t i = cptr[c]; i < cptr[c + 1]; ++i) {
          const int64_t e = order[i];
          for (int64_t h = 0; h < heads; ++h)
            axpy(pw[e * heads + h], pg + pr[e] * dim + h * width, pgv + c * dim + h * width, width);
        }
    });
    return {grad_w, Tensor(), Tensor(), grad_v, Tensor(), Tensor()};
  }
};

// Indices must lie in [0, size): the kernels read memory at them.
void check_range(const Tensor &index, int64_t size, const char *what) {
  const int64_t *p = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i)
    TORCH_CHECK(p[i] >= 0 && p[i] < size, what, " index ", p[i], " is out of range");
}

// The edge list every kernel relies on, checked once where it enters (one pass, no tensor
// reductions): rows sorted ascending and below num_rows, columns below num_cols.
void check_edges(const Tensor &rows, const Tensor &cols, int64_t num_rows, int64_t num_cols) {
  check_range(rows, num_rows, "an edge row");
  check_range(cols, num_cols, "an edge column");
  const int64_t *p = rows.data_ptr<int64_t>();
  for (int64_t e = 1; e < rows.numel(); ++e)
    TORCH_CHECK(p[e - 1] <= p[e], "edge rows must be sorted ascending");
}

void check_heads(int64_t heads, int64_t width) {
  TORCH_CHECK(heads >= 1 && width % heads == 0, "heads (", heads, ") must divide the width (",
              width, ")");
}

char *error_message(const std::exception &e) { return strdup(e.what()); }

}  // namespace

extern "C" {

// Returns nullptr and sets *out, or returns an error message (free it with mmsr_free_error).
// `heads` >= 1 dot products per edge over equal column blocks ([E * heads]); a scale allows
// one head only.
char *mmsr_edge_dot(torch::Tensor **out, torch::Tensor *a, torch::Tensor *b, torch::Tensor *rows,
                    torch::Tensor *cols, torch::Tensor *scale, torch::Tensor *relations,
                    int64_t heads) {
  try {
    check_table(*a, "a");
    check_table(*b, "b");
    TORCH_CHECK(a->size(1) == b->size(1), "a and b differ in width");
    check_heads(heads, a->size(1));
    check_index(*rows, "rows", rows->size(0));
    check_index(*cols, "cols", rows->size(0));
    check_edges(rows->contiguous(), cols->contiguous(), a->size(0), b->size(0));
    if (scale == nullptr) {
      *out = new torch::Tensor(EdgeDot::apply(*a, *b, *rows, *cols, heads));
      return nullptr;
    }
    TORCH_CHECK(heads == 1, "a relation scale takes one head");
    check_table(*scale, "scale");
    TORCH_CHECK(scale->size(1) == a->size(1), "scale differs in width");
    check_index(*relations, "relations", rows->size(0));
    check_range(relations->contiguous(), scale->size(0), "a relation");
    *out = new torch::Tensor(ScaledEdgeDot::apply(*a, *b, *rows, *cols, *scale, *relations));
    return nullptr;
  } catch (const std::exception &e) {
    return error_message(e);
  }
}

// Weights [E] (heads = 1) or [E, heads], each head weighting its block of the value columns.
char *mmsr_edge_aggregate(torch::Tensor **out, torch::Tensor *weights, torch::Tensor *rows,
                          torch::Tensor *cols, torch::Tensor *values, int64_t num_rows,
                          int64_t heads) {
  try {
    check_table(*values, "values");
    check_heads(heads, values->size(1));
    TORCH_CHECK(weights->device().is_cpu() && weights->scalar_type() == torch::kFloat &&
                    ((weights->dim() == 1 && heads == 1) ||
                     (weights->dim() == 2 && weights->size(1) == heads)),
                "weights must be a CPU float32 [E] vector, or [E, heads]");
    check_index(*rows, "rows", weights->size(0));
    check_index(*cols, "cols", weights->size(0));
    check_edges(rows->contiguous(), cols->contiguous(), num_rows, values->size(0));
    *out = new torch::Tensor(
        EdgeAggregate::apply(*weights, *rows, *cols, *values, num_rows, heads));
    return nullptr;
  } catch (const std::exception &e) {
    return error_message(e);
  }
}

void mmsr_free_error(char *message) { free(message); }
}
