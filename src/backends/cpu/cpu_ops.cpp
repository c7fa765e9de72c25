// backends/cpu/cpu_ops.cpp — CPU Ops: embedding, RMSNorm, matmul over any weight format (activations
// converted once to the format's dot type), RoPE, SwiGLU, residual add. KV write and attention are in
// cpu_attention.cpp.
#include "backends/cpu/cpu_ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "backends/cpu/act_quant.h"
#include "backends/cpu/dot_kernels.h"
#include "backends/cpu/gemm.h"
#include "quant/quant.h"

namespace kvant {

CpuOps::CpuOps(unsigned n_threads) : pool_(n_threads == 0 ? ThreadPool::default_threads() : n_threads) {}

void CpuOps::embed(const WeightView& table, const int32_t* tokens, int n, float* out) {
  const QuantTraits* traits = quant_traits(table.type);
  for (int t = 0; t < n; ++t) {
    traits->dequantize_row(table.row(tokens[t]), out + size_t(t) * table.n_in, table.n_in);
  }
}

void CpuOps::rmsnorm(const float* x, const WeightView& weight, int n_rows, int dim, float eps, float* out) {
  const float* w = static_cast<const float*>(weight.data);
  pool_.parallel_for(n_rows, [&](int64_t begin, int64_t end, unsigned) {
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = x + size_t(r) * dim;
      float* o = out + size_t(r) * dim;
      double sum = 0.0;  // ggml accumulates the sum of squares in double (ggml_float)
      for (int i = 0; i < dim; ++i) sum += double(xr[i]) * double(xr[i]);
      const float scale = 1.0f / std::sqrt(float(sum / dim) + eps);
      for (int i = 0; i < dim; ++i) o[i] = (xr[i] * scale) * w[i];
    }
  }, std::max<int64_t>(1, kMinWorkPerThread / dim));
}

void CpuOps::matmul(const WeightView& w, const float* x, int n_rows, float* y) {
  if (n_rows >= kAmxMinRows && gemm::amx::available(w.type)) {
    // Prefill on AMX tiles: activations packed once (16-row tiles, in parallel), then 16-column weight
    // tiles handed out from an atomic counter; each decodes its weight rows once for all row tiles.
    const size_t packed_bytes = gemm::amx::packed_bytes(w.type, w.n_in, n_rows);
    if (activations_.size() < packed_bytes) activations_.resize(packed_bytes);
    uint8_t* packed = activations_.data();
    const int n_row_tiles = (n_rows + 15) / 16;
    pool_.parallel_for(n_row_tiles, [&](int64_t begin, int64_t end, unsigned) {
      gemm::amx::pack_row_tiles(w.type, x, w.n_in, n_rows, int(begin), int(end), packed);
    }, std::max<int64_t>(1, kMinWorkPerThread / (16 * w.n_in)));
    pool_.parallel_chunks((w.n_out + 15) / 16, 1, [&](int64_t t, int64_t, unsigned) {
      gemm::amx::compute_column_tile(w.type, w.row(0), w.row_bytes, w.n_in, w.n_out, t * 16, packed, n_rows, y,
                                     w.n_out);
    });
    return;
  }
  if (n_rows >= 4 && gemm::available(w.type)) {
    // Prefill: activations packed once, then kActTile x kOutTile tiles of y handed out from an atomic
    // counter (activation-tile major, so all threads share one activation tile in cache).
    const size_t packed_bytes = gemm::packed_row_bytes(w.type, w.n_in);
    if (activations_.size() < packed_bytes * size_t(n_rows)) activations_.resize(packed_bytes * size_t(n_rows));
    uint8_t* packed = activations_.data();
    pool_.parallel_for(n_rows, [&](int64_t begin, int64_t end, unsigned) {
      for (int64_t r = begin; r < end; ++r) {
        gemm::pack_row(w.type, x + size_t(r) * w.n_in, w.n_in, packed + size_t(r) * packed_bytes);
      }
    }, std::max<int64_t>(1, kMinWorkPerThread / w.n_in));
    constexpr int kActTile = 64;
    constexpr int64_t kOutTile = 16;
    const int64_t n_act_tiles = (n_rows + kActTile - 1) / kActTile;
    const int64_t n_out_tiles = (w.n_out + kOutTile - 1) / kOutTile;
    pool_.parallel_chunks(n_act_tiles * n_out_tiles, 1, [&](int64_t t, int64_t, unsigned) {
      const int r0 = int(t / n_out_tiles) * kActTile, r1 = std::min(n_rows, r0 + kActTile);
      const int64_t j0 = (t % n_out_tiles) * kOutTile, j1 = std::min(w.n_out, j0 + kOutTile);
      gemm::compute_tile(w.type, w.row(0), w.row_bytes, w.n_in, packed, packed_bytes, r0, r1, j0, j1, y, w.n_out);
    });
    return;
  }
  const uint8_t* act = quantize_rows(w, x, n_rows);
  const int64_t chunk = row_chunk(w, n_rows);
  pool_.parallel_chunks(w.n_out, chunk, [&](int64_t begin, int64_t end, unsigned) {
    dot_rows(w, act, n_rows, begin, end, y, w.n_out);
  });
}

void CpuOps::matmul_same_input(const WeightView* const* w, float* const* y, int n, const float* x, int n_rows) {
  bool one_op = n_rows < kAmxMinRows && !(n_rows >= 4 && gemm::available(w[0]->type));
  for (int k = 1; k < n && one_op; ++k) {
    one_op = w[k]->n_in == w[0]->n_in && act_row_bytes(*w[k]) == act_row_bytes(*w[0]) &&
             quant_traits(w[k]->type)->vec_dot_type == quant_traits(w[0]->type)->vec_dot_type;
  }
  if (!one_op) {  // prefill (GEMM tiles make the barrier count irrelevant) or mixed activation formats
    for (int k = 0; k < n; ++k) matmul(*w[k], x, n_rows, y[k]);
    return;
  }
  // Decode: activations converted once, then the chunks of all n weights in one hand-out (one barrier).
  const uint8_t* act = quantize_rows(*w[0], x, n_rows);
  std::vector<int64_t> first_chunk(size_t(n) + 1, 0), chunk(size_t(n), 0);
  for (int k = 0; k < n; ++k) {
    chunk[k] = row_chunk(*w[k], n_rows);
    first_chunk[k + 1] = first_chunk[k] + (w[k]->n_out + chunk[k] - 1) / chunk[k];
  }
  pool_.parallel_chunks(first_chunk[n], 1, [&](int64_t c, int64_t, unsigned) {
    int k = 0;
    while (c >= first_chunk[k + 1]) ++k;
    const int64_t begin = (c - first_chunk[k]) * chunk[k];
    dot_rows(*w[k], act, n_rows, begin, std::min(w[k]->n_out, begin + chunk[k]), y[k], w[k]->n_out);
  });
}

size_t CpuOps::act_row_bytes(const WeightView& w) {
  const QuantTraits* act_traits = quant_traits(quant_traits(w.type)->vec_dot_type);
  return size_t(w.n_in / act_traits->block_elems) * act_traits->block_bytes;
}

const uint8_t* CpuOps::quantize_rows(const WeightView& w, const float* x, int n_rows) {
  const GgmlType act_type = quant_traits(w.type)->vec_dot_type;
  const size_t row_bytes = act_row_bytes(w);
  if (activations_.size() < row_bytes * size_t(n_rows)) activations_.resize(row_bytes * size_t(n_rows));
  uint8_t* act = activations_.data();
  const ActQuantFn simd = simd_quantize_activations(act_type);  // nullptr: the scalar reference
  pool_.parallel_for(n_rows, [&](int64_t begin, int64_t end, unsigned) {
    for (int64_t r = begin; r < end; ++r) {
      const float* src = x + size_t(r) * w.n_in;
      uint8_t* dst = act + size_t(r) * row_bytes;
      if (simd) {
        simd(src, dst, w.n_in);
      } else {
        quantize_activations(act_type, src, dst, w.n_in);
      }
    }
  }, std::max<int64_t>(1, kMinWorkPerThread / w.n_in));
  return act;
}

int64_t CpuOps::row_chunk(const WeightView& w, int n_rows) const {
  // Output rows go out from an atomic counter in about 4 chunks per thread (at least the smallest range
  // worth a thread), so a thread slowed by a busy core or a VM steal does not stall the op. 64-row chunks
  // measured the same on the 16-core Xeon and 10-15 % slower on the 2-core EPYC (bench/RESULTS.md).
  const int64_t min_rows = std::max<int64_t>(1, kMinWorkPerThread / (w.n_in * n_rows));
  return std::max(min_rows, w.n_out / (4 * int64_t(pool_.size())));
}

void CpuOps::dot_rows(const WeightView& w, const uint8_t* act, int n_rows, int64_t begin, int64_t end, float* y,
                      int64_t ldy) const {
  const size_t row_bytes = act_row_bytes(w);
  const VecDotFn dot = best_vec_dot(w.type);
  const VecDotX4Fn dot4 = best_vec_dot_x4(w.type);  // one weight-row load serves 4 activation rows
  // Activation rows are taken kRowTile at a time so they stay in cache while the weight rows stream.
  constexpr int kRowTile = 32;
  for (int r0 = 0; r0 < n_rows; r0 += kRowTile) {
    const int r1 = std::min(n_rows, r0 + kRowTile);
    for (int64_t j = begin; j < end; ++j) {
      const uint8_t* wrow = w.row(j);
      int r = r0;
      if (dot4) {
        for (; r + 4 <= r1; r += 4) {
          float out[4];
          dot4(w.n_in, wrow, act + size_t(r) * row_bytes, row_bytes, out);
          for (int k = 0; k < 4; ++k) y[size_t(r + k) * ldy + j] = out[k];
        }
      }
      for (; r < r1; ++r) y[size_t(r) * ldy + j] = dot(w.n_in, wrow, act + size_t(r) * row_bytes);
    }
  }
}

void CpuOps::rope(float* x, int n_rows, int n_heads, const int32_t* positions, const RopeConfig& cfg) {
  const int half = cfg.rope_dim / 2;
  const float theta_scale = std::pow(cfg.freq_base, -2.0f / float(cfg.rope_dim));
  pool_.parallel_for(n_rows, [&](int64_t begin, int64_t end, unsigned) {
    std::vector<float> cos_t(half), sin_t(half);
    for (int64_t r = begin; r < end; ++r) {
      // theta_i = pos * scale * base^(-2i/rope_dim) / factor_i, built by repeated multiplication as ggml does.
      float theta = float(positions[r]) * cfg.freq_scale;
      for (int i = 0; i < half; ++i) {
        const float t = cfg.freq_factors ? theta / cfg.freq_factors[i] : theta;
        cos_t[i] = std::cos(t);
        sin_t[i] = std::sin(t);
        theta *= theta_scale;
      }
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + (size_t(r) * n_heads + h) * cfg.head_dim;
        for (int i = 0; i < half; ++i) {
          const int i0 = cfg.ordering == RopeOrdering::Normal ? 2 * i : i;
          const int i1 = cfg.ordering == RopeOrdering::Normal ? 2 * i + 1 : i + half;
          const float x0 = v[i0], x1 = v[i1];
          v[i0] = x0 * cos_t[i] - x1 * sin_t[i];
          v[i1] = x0 * sin_t[i] + x1 * cos_t[i];
        }
      }
    }
  }, std::max<int64_t>(1, kMinWorkPerThread / (int64_t(n_heads) * cfg.head_dim * 4)));
}

void CpuOps::swiglu(const float* gate, const float* up, int64_t n, float* out) {
  pool_.parallel_for(n, [&](int64_t begin, int64_t end, unsigned) {
    for (int64_t i = begin; i < end; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  }, 1024);  // an exp per value: even one decode row (n_ff values) is worth splitting
}

void CpuOps::add(float* x, const float* y, int64_t n) {
  pool_.parallel_for(n, [&](int64_t begin, int64_t end, unsigned) {
    for (int64_t i = begin; i < end; ++i) x[i] += y[i];
  }, kMinWorkPerThread);
}

}  // namespace kvant
