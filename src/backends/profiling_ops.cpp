// backends/profiling_ops.cpp — ProfilingOps: forwards each op to the wrapped backend and adds its wall
// time to a per-kind total; the report divides by the number of forward passes of each batch size.
#include "backends/profiling_ops.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "quant/ggml_type.h"

namespace kvant {
namespace {

using Clock = std::chrono::steady_clock;

struct OpTotal {
  double seconds = 0.0;
  int64_t calls = 0;
  double bytes = 0.0;  // weight bytes read (matmul)
};

// "n_out x n_in type" of a weight.
std::string shape_name(const WeightView& w) {
  std::string name = std::to_string(w.n_out);
  name.append("x");
  name.append(std::to_string(w.n_in));
  name.append(" ");
  name.append(ggml_type_name(w.type));
  return name;
}

class ProfilingOps final : public Ops {
 public:
  explicit ProfilingOps(std::unique_ptr<Ops> inner) : inner_(std::move(inner)) {}
  ~ProfilingOps() override { report(); }

  const char* name() const override { return inner_->name(); }
  float* alloc_activations(size_t n) override { return inner_->alloc_activations(n); }
  float* begin_forward(const ForwardBatch& batch) override {
    batch_rows_ = batch.n;
    ++passes_[batch_rows_ == 1 ? 1 : 0];
    return inner_->begin_forward(batch);
  }
  void end_forward() override { inner_->end_forward(); }
  int kernels_per_token() const override { return inner_->kernels_per_token(); }
  bool keeps_kv_on_device() const override { return inner_->keeps_kv_on_device(); }
  Status download_kv(KvCache& cache, KvCache& host) override { return inner_->download_kv(cache, host); }
  Status upload_kv(KvCache& cache, const KvCache& host) override { return inner_->upload_kv(cache, host); }
  float* host_logit_buffer(size_t n) override { return inner_->host_logit_buffer(n); }

  void embed(const WeightView& table, const int32_t* tokens, int n, float* out) override {
    timed("embed", 0, [&] { inner_->embed(table, tokens, n, out); });
  }
  void rmsnorm(const float* x, const WeightView& weight, int n_rows, int dim, float eps, float* out) override {
    timed("rmsnorm", 0, [&] { inner_->rmsnorm(x, weight, n_rows, dim, eps, out); });
  }
  void matmul(const WeightView& w, const float* x, int n_rows, float* y) override {
    timed("matmul " + shape_name(w), double(w.row_bytes) * double(w.n_out), [&] { inner_->matmul(w, x, n_rows, y); });
  }
  void matmul_same_input(const WeightView* const* w, float* const* y, int n, const float* x, int n_rows) override {
    std::string key = "matmul";
    double bytes = 0.0;
    for (int k = 0; k < n; ++k) {
      key.append(k == 0 ? " " : "+");
      key.append(shape_name(*w[k]));
      bytes += double(w[k]->row_bytes) * double(w[k]->n_out);
    }
    timed(key, bytes, [&] { inner_->matmul_same_input(w, y, n, x, n_rows); });
  }
  void rope(float* x, int n_rows, int n_heads, const int32_t* positions, const RopeConfig& cfg) override {
    timed("rope", 0, [&] { inner_->rope(x, n_rows, n_heads, positions, cfg); });
  }
  void kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                const int32_t* positions) override {
    timed("kv_write", 0, [&] { inner_->kv_write(cache, layer, k, v, n_rows, positions); });
  }
  void attention(const KvCache& cache, int layer, const float* q, int n_rows, int n_heads, const int32_t* positions,
                 float* out) override {
    timed("attention", 0, [&] { inner_->attention(cache, layer, q, n_rows, n_heads, positions, out); });
  }
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override {
    timed("swiglu", 0, [&] { inner_->swiglu(gate, up, n, out); });
  }
  void add(float* x, const float* y, int64_t n) override {
    timed("add", 0, [&] { inner_->add(x, y, n); });
  }

 private:
  template <typename Fn>
  void timed(const std::string& key, double bytes, Fn&& fn) {
    const auto start = Clock::now();
    fn();
    OpTotal& t = totals_[batch_rows_ == 1 ? 1 : 0][key];
    t.seconds += std::chrono::duration<double>(Clock::now() - start).count();
    ++t.calls;
    t.bytes += bytes;
  }

  void report() const {
    static const char* kPhase[2] = {"batched passes (prefill)", "single-token passes (decode)"};
    for (int phase = 1; phase >= 0; --phase) {
      if (passes_[phase] == 0) continue;
      const double passes = double(passes_[phase]);
      double total = 0.0;
      for (const auto& [key, t] : totals_[phase]) total += t.seconds;
      std::vector<std::pair<std::string, OpTotal>> rows(totals_[phase].begin(), totals_[phase].end());
      std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
      std::fprintf(stderr, "KVANT_PROFILE %s (%s backend): %lld passes, %.3f ms of ops per pass\n", kPhase[phase],
                   inner_->name(), static_cast<long long>(passes_[phase]), 1e3 * total / passes);
      std::fprintf(stderr, "  %-34s %9s %11s %7s %9s\n", "op", "calls/pass", "ms/pass", "share", "GB/s");
      for (const auto& [key, t] : rows) {
        const double gbps = t.bytes > 0 && t.seconds > 0 ? t.bytes / t.seconds / 1e9 : 0.0;
        std::fprintf(stderr, "  %-34s %9.1f %11.4f %6.1f%% %9.1f\n", key.c_str(), double(t.calls) / passes,
                     1e3 * t.seconds / passes, 100.0 * t.seconds / std::max(total, 1e-12), gbps);
      }
    }
  }

  std::unique_ptr<Ops> inner_;
  int batch_rows_ = 0;
  int64_t passes_[2] = {0, 0};
  std::map<std::string, OpTotal> totals_[2];
};

}  // namespace

std::unique_ptr<Ops> make_profiling_ops(std::unique_ptr<Ops> inner) {
  return std::make_unique<ProfilingOps>(std::move(inner));
}

}  // namespace kvant
