// backends/cpu/cpu_ops.h — the CPU implementation of Ops over one persistent thread pool.
#pragma once

#include <memory>
#include <vector>

#include "backends/ops.h"
#include "core/thread_pool.h"

namespace kvant {

// Multiply-adds below which an op is not worth splitting across threads (a wake-up costs ~µs).
inline constexpr int64_t kMinWorkPerThread = 1 << 16;
// Activation rows from which a matmul runs on AMX tiles (one full 16-row tile) when the CPU has them.
inline constexpr int kAmxMinRows = 16;

class CpuOps final : public Ops {
 public:
  explicit CpuOps(unsigned n_threads);

  void embed(const WeightView& table, const int32_t* tokens, int n, float* out) override;
  void rmsnorm(const float* x, const WeightView& weight, int n_rows, int dim, float eps, float* out) override;
  void matmul(const WeightView& w, const float* x, int n_rows, float* y) override;
  void matmul_same_input(const WeightView* const* w, float* const* y, int n, const float* x, int n_rows) override;
  void rope(float* x, int n_rows, int n_heads, const int32_t* positions, const RopeConfig& cfg) override;
  void kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                const int32_t* positions) override;
  void attention(const KvCache& cache, int layer, const float* q, int n_rows, int n_heads,
                 const int32_t* positions, float* out) override;
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override;
  void add(float* x, const float* y, int64_t n) override;

  ThreadPool& pool() { return pool_; }

 private:
  // Bytes of one activation row in w's dot type.
  static size_t act_row_bytes(const WeightView& w);
  // x converted to w's dot type (n_rows rows) in activations_.
  const uint8_t* quantize_rows(const WeightView& w, const float* x, int n_rows);
  // Output rows per hand-out of a matmul without GEMM tiles.
  int64_t row_chunk(const WeightView& w, int n_rows) const;
  // y[r * ldy + j] = dot(weight row j, activation row r) for j in [begin, end), every r < n_rows.
  void dot_rows(const WeightView& w, const uint8_t* act, int n_rows, int64_t begin, int64_t end, float* y,
                int64_t ldy) const;

  ThreadPool pool_;
  std::vector<uint8_t> activations_;  // activations converted to the weight's dot type
};

}  // namespace kvant
