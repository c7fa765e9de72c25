// quant/q8_block.h — the 32-element int8 block quantisers and dequantiser shared by Q8_0 and Q8_1
// (which differ only in Q8_1's extra s = d·Σq field).
#pragma once

#include <cmath>
#include <cstdint>

#include "core/fp16.h"
#include "quant/block_stats.h"

namespace kvant::q8_block {

inline constexpr int kElems = 32;

// ggml's reference weight quantiser: d = amax/127, q = roundf(x * (1/d)) (half away from zero).
// Writes qs, *qsum = Σq; returns d (f32, before f16 storage).
inline float quantize_reference(const float* x, int8_t* qs, int32_t* qsum) {
  const float d = quant_stats::absmax(x, kElems) / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *qsum = 0;
  for (int j = 0; j < kElems; ++j) {
    qs[j] = int8_t(std::roundf(x[j] * id));
    *qsum += qs[j];
  }
  return d;
}

// llama.cpp x86 (AVX2) activation path: d = amax/127, q = round_half_even(x * (127/amax)).
// Writes qs, *qsum = Σq; returns d (f32, before f16 storage).
inline float quantize_activation(const float* x, int8_t* qs, int32_t* qsum) {
  const float amax = quant_stats::absmax(x, kElems);
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  *qsum = 0;
  for (int j = 0; j < kElems; ++j) {
    qs[j] = int8_t(std::nearbyint(x[j] * id));
    *qsum += qs[j];
  }
  return amax / 127.0f;
}

// x = q * d for a row of Block (block_q8_0 or block_q8_1: fields d and qs).
template <class Block>
void dequantize_row(const void* src, float* dst, int64_t n) {
  const Block* blocks = static_cast<const Block*>(src);
  for (int64_t b = 0; b < n / kElems; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int j = 0; j < kElems; ++j) dst[b * kElems + j] = float(blocks[b].qs[j]) * d;
  }
}

}  // namespace kvant::q8_block
