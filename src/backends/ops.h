// backends/ops.h — the coarse operations a model family's forward pass calls. A backend (CPU today,
// CUDA later) implements them; the forward pass never knows which one runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kvant/status.h"
#include "quant/ggml_type.h"

namespace kvant {

class KvCache;

// A non-owning view of a 1-D or 2-D weight tensor in its stored format: n_out rows of n_in elements.
struct WeightView {
  const void* data = nullptr;
  GgmlType type = GgmlType::F32;
  int64_t n_in = 0;   // ne[0], contiguous
  int64_t n_out = 1;  // ne[1]
  size_t row_bytes = 0;
  const uint8_t* row(int64_t i) const { return static_cast<const uint8_t*>(data) + size_t(i) * row_bytes; }
};

enum class RopeOrdering { Normal, NeoX };  // adjacent pairs (2i, 2i+1) vs halves (i, i + d/2)

struct RopeConfig {
  int head_dim = 0;
  int rope_dim = 0;             // leading dims rotated (<= head_dim)
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;      // linear scaling: positions multiplied by this
  RopeOrdering ordering = RopeOrdering::Normal;
  const float* freq_factors = nullptr;  // rope_dim/2 divisors (Llama 3 rope_freqs), optional
};

// One forward pass as the model sees it: n tokens at positions, and where the caller wants the logits
// (host memory, n_logits floats).
struct ForwardBatch {
  const int32_t* tokens = nullptr;
  const int32_t* positions = nullptr;
  int n = 0;
  float* logits = nullptr;
  size_t n_logits = 0;
};

class Ops {
 public:
  virtual ~Ops() = default;

  // --- Backend hooks around a forward pass (the defaults suit a host backend: they do nothing). ---
  // "cpu", "cuda".
  virtual const char* name() const { return "cpu"; }
  // Activation memory of n floats that this backend's ops read and write (host memory by default;
  // device memory on a GPU backend). Owned by the backend, valid until it is destroyed.
  virtual float* alloc_activations(size_t n) {
    host_activations_.push_back(std::make_unique<float[]>(n));
    return host_activations_.back().get();
  }
  // Called before the ops of one forward pass; the ops then receive the same tokens and positions
  // pointers. Returns where the final projection must write the logits (batch.logits by default; a GPU
  // backend returns a device buffer and copies it to batch.logits in end_forward). A backend may
  // record the ops between begin_forward and end_forward and replay them (CUDA graphs).
  virtual float* begin_forward(const ForwardBatch& batch) { return batch.logits; }
  // Called after the last op of a forward pass; batch.logits holds the logits when it returns.
  virtual void end_forward() {}
  // Host memory of at least n floats for the logits the caller will pass as batch.logits, owned by the
  // backend and valid until the next call or its destruction; nullptr: the caller uses its own. A GPU
  // backend returns page-locked memory, which its copy writes straight into (H200: 513 KB of logits in
  // 17 µs instead of 78 µs through pageable memory, ~6 % of a 1B decode step).
  virtual float* host_logit_buffer(size_t /*n*/) { return nullptr; }
  // Kernel launches (graph nodes) one decode token costs on this backend; 0 when not applicable.
  virtual int kernels_per_token() const { return 0; }
  // Whether the KV cache lives in this backend's own memory: the session's KvCache then holds only the
  // layout and cell bookkeeping, no host copy of the vectors (KvCache::create with host_storage off).
  virtual bool keeps_kv_on_device() const { return false; }
  // Such a backend's copy of the vectors of `cache` (the session's layout-only cache) to or from `host`, a
  // cache of the same config with host storage, window ring included (Session::save_kv / load_kv).
  virtual Status download_kv(KvCache& /*cache*/, KvCache& /*host*/) {
    return Status::error("this backend keeps no KV cache of its own");
  }
  virtual Status upload_kv(KvCache& /*cache*/, const KvCache& /*host*/) {
    return Status::error("this backend keeps no KV cache of its own");
  }

  // out[t][:] = dequantised row tokens[t] of table.                        out: [n][table.n_in]
  virtual void embed(const WeightView& table, const int32_t* tokens, int n, float* out) = 0;
  // out[r] = x[r] / rms(x[r]) * weight (weight is F32 [dim]).                 x, out: [n_rows][dim]
  virtual void rmsnorm(const float* x, const WeightView& weight, int n_rows, int dim, float eps,
                       float* out) = 0;
  // y[r] = W · x[r]; activations are converted to the weight's dot type once per row.
  //                                                     x: [n_rows][w.n_in], y: [n_rows][w.n_out]
  virtual void matmul(const WeightView& w, const float* x, int n_rows, float* y) = 0;
  // y[k] = w[k] · x for k < n: several projections of the same input rows (Q/K/V, gate/up). A backend may
  // run them as one op (one activation conversion, one barrier); the default is n matmul calls.
  virtual void matmul_same_input(const WeightView* const* w, float* const* y, int n, const float* x, int n_rows) {
    for (int k = 0; k < n; ++k) matmul(*w[k], x, n_rows, y[k]);
  }
  // Rotates each head of each row in place at positions[r].            x: [n_rows][n_heads*head_dim]
  virtual void rope(float* x, int n_rows, int n_heads, const int32_t* positions, const RopeConfig& cfg) = 0;
  // Writes K and V rows into the cache at cells for positions[r] (encoding to the cache's types).
  //                                                             k, v: [n_rows][n_kv_heads*head_dim]
  virtual void kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                        const int32_t* positions) = 0;
  // Causal GQA attention of q rows over the cache (every cell with position <= positions[r]),
  // directly on the cache's stored blocks.       q, out: [n_rows][n_heads*head_dim]
  virtual void attention(const KvCache& cache, int layer, const float* q, int n_rows, int n_heads,
                         const int32_t* positions, float* out) = 0;
  // out = silu(gate) * up, elementwise over n values.
  virtual void swiglu(const float* gate, const float* up, int64_t n, float* out) = 0;
  // x += y over n values.
  virtual void add(float* x, const float* y, int64_t n) = 0;

 private:
  std::vector<std::unique_ptr<float[]>> host_activations_;
};

}  // namespace kvant
