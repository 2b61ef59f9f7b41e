// Counts the matrix products a stretch of libtorch work runs, as they run: every dispatched
// aten::mm, addmm, bmm, baddbmm, mv, addmv and dot (forward and backward alike, since autograd
// calls the same operators), with their floating-point operations (2 per multiply-add) and the
// wall time spent inside them. libtorch's RecordFunction observers see each operator's inputs
// at entry; composite operators (matmul, linear, einsum) are not counted themselves, only the
// products they dispatch to, so nothing is counted twice.
//
// Exposed to Rust as extern "C" functions; errors come back as strdup'ed messages (free them
// with mmsr_free_error), as for the other kernels (src/native.rs).

// libtorch is built with NDEBUG, and RecordFunction's layout depends on it (a debug-only
// member): without it this file would read the library's objects at the wrong offsets.
#ifndef NDEBUG
#define NDEBUG
#endif

#include <ATen/record_function.h>
#include <ATen/core/ivalue.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>

namespace {

std::atomic<int64_t> counted_flops{0};
std::atomic<int64_t> counted_nanos{0};
std::atomic<int64_t> counted_calls{0};
std::atomic<int64_t> unreadable_calls{0};
at::CallbackHandle handle = 0;

struct Started : at::ObserverContext {
  std::chrono::steady_clock::time_point at;
};

// The size of dimension `dim` of input `index`, or -1 where that input is not a tensor.
int64_t size_of(c10::ArrayRef<const c10::IValue> inputs, size_t index, int64_t dim) {
  if (index >= inputs.size() || !inputs[index].isTensor()) return -1;
  const auto &tensor = inputs[index].toTensor();
  if (dim < 0) dim += tensor.dim();
  if (dim < 0 || dim >= tensor.dim()) return -1;
  return tensor.size(dim);
}

// 2·m·n·k of a product whose left factor is input `a` ([.., m, k]) and right factor input `b`
// ([.., k, n]), times the batch of `a` where `batched`; -1 where the shapes are not readable.
int64_t product_flops(c10::ArrayRef<const c10::IValue> inputs, size_t a, size_t b, bool batched) {
  int64_t m = size_of(inputs, a, -2), k = size_of(inputs, a, -1), n = size_of(inputs, b, -1);
  int64_t batch = batched ? size_of(inputs, a, 0) : 1;
  if (m < 0 || k < 0 || n < 0 || batch < 0) return -1;
  return 2 * batch * m * k * n;
}

// Floating-point operations of one call of a counted product; 0 for any other operator.
int64_t flops_of(const at::RecordFunction &fn) {
  const char *name = fn.name();
  if (std::strncmp(name, "aten::", 6) != 0) return 0;
  name += 6;
  auto inputs = fn.inputs();
  if (!std::strcmp(name, "mm")) return product_flops(inputs, 0, 1, false);
  if (!std::strcmp(name, "addmm")) return product_flops(inputs, 1, 2, false);
  if (!std::strcmp(name, "bmm")) return product_flops(inputs, 0, 1, true);
  if (!std::strcmp(name, "baddbmm")) return product_flops(inputs, 1, 2, true);
  if (!std::strcmp(name, "mv") || !std::strcmp(name, "addmv")) {
    size_t matrix = name[0] == 'a' ? 1 : 0;
    int64_t m = size_of(inputs, matrix, 0), k = size_of(inputs, matrix, 1);
    return m < 0 || k < 0 ? -1 : 2 * m * k;
  }
  if (!std::strcmp(name, "dot") || !std::strcmp(name, "vdot")) {
    int64_t k = size_of(inputs, 0, 0);
    return k < 0 ? -1 : 2 * k;
  }
  return 0;
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction &fn) {
  int64_t flops = flops_of(fn);
  if (flops == 0) return nullptr;
  if (flops > 0) {
    counted_flops.fetch_add(flops, std::memory_order_relaxed);
  } else {
    unreadable_calls.fetch_add(1, std::memory_order_relaxed);
  }
  counted_calls.fetch_add(1, std::memory_order_relaxed);
  auto started = std::make_unique<Started>();
  started->at = std::chrono::steady_clock::now();
  return started;
}

void on_exit(const at::RecordFunction &, at::ObserverContext *context) {
  if (context == nullptr) return;
  auto elapsed = std::chrono::steady_clock::now() - static_cast<Started *>(context)->at;
  counted_nanos.fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(),
      std::memory_order_relaxed);
}

// The operator profile: wall time of the outermost operators (those the caller dispatched,
// and autograd's backward nodes), by name. Nested operators are inside their caller's time.
std::mutex profile_mutex;
std::map<std::string, std::pair<int64_t, int64_t>> profile;  // name -> (calls, nanoseconds)
thread_local int depth = 0;
at::CallbackHandle profile_handle = 0;

// Entry points that only wrap others (the whole backward pass) are not operators of their own.
bool transparent(const char *name) { return !std::strcmp(name, "aten::_backward"); }

std::unique_ptr<at::ObserverContext> on_operator_enter(const at::RecordFunction &fn) {
  if (transparent(fn.name()) || depth++ > 0) return nullptr;
  auto started = std::make_unique<Started>();
  started->at = std::chrono::steady_clock::now();
  return started;
}

void on_operator_exit(const at::RecordFunction &fn, at::ObserverContext *context) {
  if (transparent(fn.name())) return;
  --depth;
  if (context == nullptr) return;
  auto elapsed = std::chrono::steady_clock::now() - static_cast<Started *>(context)->at;
  std::lock_guard<std::mutex> lock(profile_mutex);
  auto &entry = profile[fn.name()];
  entry.first += 1;
  entry.second += std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
}

}  // namespace

extern "C" {

// Starts counting from zero the products dispatched by the calling thread (and by threads it
// hands its thread-local state to, as autograd does): installs an observer that makes every
// operator that thread dispatches slower (it copies the inputs), so counted work is not the
// work to time. One count at a time per process (the Rust side holds a lock).
// With `profile_operators`, the outermost operators are timed too (mmsr_products_profile).
char *mmsr_products_start(bool profile_operators) {
  try {
    if (handle != 0) return strdup("products are already being counted");
    counted_flops = 0;
    counted_nanos = 0;
    counted_calls = 0;
    unreadable_calls = 0;
    profile.clear();
    depth = 0;
    handle = at::addThreadLocalCallback(at::RecordFunctionCallback(on_enter, on_exit)
                                            .needsInputs(true)
                                            .scopes({at::RecordScope::FUNCTION}));
    if (profile_operators) {
      profile_handle = at::addThreadLocalCallback(
          at::RecordFunctionCallback(on_operator_enter, on_operator_exit)
              .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION}));
    }
    return nullptr;
  } catch (const std::exception &e) {
    return strdup(e.what());
  }
}

// Removes the observer and reports what it counted since the start; call it on the thread
// that started the count, once the counted work has finished.
void mmsr_products_stop(int64_t *flops, int64_t *nanos, int64_t *calls, int64_t *unreadable) {
  if (handle != 0) at::removeCallback(handle);
  if (profile_handle != 0) at::removeCallback(profile_handle);
  handle = 0;
  profile_handle = 0;
  *flops = counted_flops.load();
  *nanos = counted_nanos.load();
  *calls = counted_calls.load();
  *unreadable = unreadable_calls.load();
}

// The last count's operator profile, a line per operator name: "name\tcalls\tnanoseconds"
// (free it with mmsr_products_free); empty where it was not asked for.
char *mmsr_products_profile() {
  std::ostringstream out;
  std::lock_guard<std::mutex> lock(profile_mutex);
  for (const auto &[name, entry] : profile) {
    out << name << '\t' << entry.first << '\t' << entry.second << '\n';
  }
  return strdup(out.str().c_str());
}

void mmsr_products_free(char *text) { free(text); }

}  // extern "C"
