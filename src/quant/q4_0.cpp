// quant/q4_0.cpp — Q4_0: blocks of 32 4-bit codes, x = d·(q−8). ggml reference quantiser,
// exact dequantiser and Q4_0·Q8_0 dot product.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace kvant {
namespace {

constexpr int kHalf = kQK4_0 / 2;

void dequantize_row_q4_0(const void* src, float* dst, int64_t n) {
  const block_q4_0* blocks = static_cast<const block_q4_0*>(src);
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    float* y = dst + b * kQK4_0;
    for (int j = 0; j < kHalf; ++j) {
      y[j] = float((blocks[b].qs[j] & 0x0F) - 8) * d;
      y[j + kHalf] = float((blocks[b].qs[j] >> 4) - 8) * d;
    }
  }
}

// ggml reference: the signed value of largest magnitude maps to code 0 (d = max / −8);
// q = min(15, trunc(x/d + 8.5)).
void quantize_row_q4_0(const float* src, void* dst, int64_t n) {
  block_q4_0* blocks = static_cast<block_q4_0*>(dst);
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    const float* x = src + b * kQK4_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK4_0; ++j) {
      if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(15, int(int8_t(x[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(x[j + kHalf] * id + 8.5f)));
      blocks[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

// Σ_blocks fp16(d_w)·fp16(d_a)·Σ (q_w−8)·q_a with Q8_0 activations.
float vec_dot_q4_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const block_q4_0* w = static_cast<const block_q4_0*>(weights);
  const block_q8_0* a = static_cast<const block_q8_0*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < kHalf; ++j) {
      isum += ((w[b].qs[j] & 0x0F) - 8) * int32_t(a[b].qs[j]);
      isum += ((w[b].qs[j] >> 4) - 8) * int32_t(a[b].qs[j + kHalf]);
    }
    sum += float(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d));
  }
  return sum;
}

}  // namespace

const QuantTraits formats::kQ4_0 = {
    GgmlType::Q4_0, kQK4_0, sizeof(block_q4_0), GgmlType::Q8_0,
    dequantize_row_q4_0, quantize_row_q4_0, vec_dot_q4_0_q8_0,
};

}  // namespace kvant
