// quant/q4_1.cpp — Q4_1: blocks of 32 4-bit codes with scale and min, x = d·q + m. ggml reference
// quantiser, exact dequantiser and Q4_1·Q8_1 dot product.
#include <algorithm>
#include <cfloat>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace kvant {
namespace {

constexpr int kHalf = kQK4_1 / 2;

void dequantize_row_q4_1(const void* src, float* dst, int64_t n) {
  const block_q4_1* blocks = static_cast<const block_q4_1*>(src);
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    const float m = fp16_to_fp32(blocks[b].m);
    float* y = dst + b * kQK4_1;
    for (int j = 0; j < kHalf; ++j) {
      y[j] = float(blocks[b].qs[j] & 0x0F) * d + m;
      y[j + kHalf] = float(blocks[b].qs[j] >> 4) * d + m;
    }
  }
}

// ggml reference: d = (max−min)/15, m = min, q = min(15, trunc((x−min)/d + 0.5)).
void quantize_row_q4_1(const float* src, void* dst, int64_t n) {
  block_q4_1* blocks = static_cast<block_q4_1*>(dst);
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    const float* x = src + b * kQK4_1;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK4_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(15, int(int8_t((x[j] - min) * id + 0.5f)));
      const int hi = std::min(15, int(int8_t((x[j + kHalf] - min) * id + 0.5f)));
      blocks[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

// Σ_blocks d_w·d_a·Σ q_w·q_a + m_w·s_a with Q8_1 activations.
float vec_dot_q4_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const block_q4_1* w = static_cast<const block_q4_1*>(weights);
  const block_q8_1* a = static_cast<const block_q8_1*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK4_1; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < kHalf; ++j) {
      isum += (w[b].qs[j] & 0x0F) * int32_t(a[b].qs[j]);
      isum += (w[b].qs[j] >> 4) * int32_t(a[b].qs[j + kHalf]);
    }
    sum += (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d)) * float(isum) +
           fp16_to_fp32(w[b].m) * fp16_to_fp32(a[b].s);
  }
  return sum;
}

}  // namespace

const QuantTraits formats::kQ4_1 = {
    GgmlType::Q4_1, kQK4_1, sizeof(block_q4_1), GgmlType::Q8_1,
    dequantize_row_q4_1, quantize_row_q4_1, vec_dot_q4_1_q8_1,
};

}  // namespace kvant
