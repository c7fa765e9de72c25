// kv/kv_kernels.h — internal: the per-type kernel tables behind KvCodec (scalar references in
// kv_codec_<type>.cpp, AVX2/AVX-512 versions in kv_codec_*_avx2/_avx512.cpp) and helpers to build scalar group loops.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kv/kv_types.h"

namespace kvant::kv_internal {

// All functions take the head dimension d. Blocks of token t start at blocks + t * stride.
// score_group:      scores[h * n + t] = q[h * d .. +d] · decode(block t)          for h < g, t < n
// accumulate_group: acc[h * d + i]   += sum_t w[h * n + t] * decode(block t)[i]   for h < g
struct KvKernels {
  void (*encode)(int d, const float* x, uint8_t* dst);
  void (*decode)(int d, const uint8_t* src, float* out);
  void (*score_group)(int d, int g, const float* q, const uint8_t* blocks, size_t stride, int n,
                      float* scores);
  void (*accumulate_group)(int d, int g, const float* w, const uint8_t* blocks, size_t stride, int n,
                           float* acc);
};

// Scalar reference kernels of each type (defined in kv_codec_<type>.cpp).
extern const KvKernels kScalarF32, kScalarF16, kScalarQ8_0, kScalarQ4_0;
extern const KvKernels kScalarTurbo2, kScalarTurbo3, kScalarTurbo4, kScalarTurbo5;
// AVX2+FMA+F16C score/accumulate (encode/decode are null: the scalar ones are used). Call only
// after the CPU check.
extern const KvKernels kAvx2F32, kAvx2F16, kAvx2Q8_0, kAvx2Q4_0;
extern const KvKernels kAvx2Turbo2, kAvx2Turbo3, kAvx2Turbo4, kAvx2Turbo5;
// AVX-512 F/BW/VL/DQ score/accumulate (kv_codec_turbo_avx512.cpp); the other types use their AVX2
// kernels under KvIsa::Avx512.
extern const KvKernels kAvx512Turbo2, kAvx512Turbo3, kAvx512Turbo4, kAvx512Turbo5;

// Scalar group loops from a per-vector dot product and axpy (one head at a time: the reference).
template <float (*Dot)(int, const float*, const uint8_t*)>
void scalar_score_group(int d, int g, const float* q, const uint8_t* blocks, size_t stride, int n,
                        float* scores) {
  for (int h = 0; h < g; ++h) {
    for (int t = 0; t < n; ++t) scores[size_t(h) * size_t(n) + size_t(t)] =
        Dot(d, q + size_t(h) * size_t(d), blocks + size_t(t) * stride);
  }
}

template <void (*Axpy)(int, float, const uint8_t*, float*)>
void scalar_accumulate_group(int d, int g, const float* w, const uint8_t* blocks, size_t stride, int n,
                             float* acc) {
  for (int h = 0; h < g; ++h) {
    for (int t = 0; t < n; ++t) {
      Axpy(d, w[size_t(h) * size_t(n) + size_t(t)], blocks + size_t(t) * stride, acc + size_t(h) * size_t(d));
    }
  }
}

}  // namespace kvant::kv_internal
