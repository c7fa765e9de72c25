// quant/q5_1.cpp — Q5_1: blocks of 32 5-bit codes with scale and min, x = d·q + m. ggml reference
// quantiser, exact dequantiser and Q5_1·Q8_1 dot product.
#include <algorithm>
#include <cfloat>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace kvant {
namespace {

constexpr int kHalf = kQK5_1 / 2;

// The 5-bit codes of one block, element order.
void unpack_q5_1(const block_q5_1& blk, int codes[kQK5_1]) {
  uint32_t qh;
  std::memcpy(&qh, blk.qh, sizeof(qh));
  for (int j = 0; j < kHalf; ++j) {
    codes[j] = int(blk.qs[j] & 0x0F) | int(((qh >> j) & 1u) << 4);
    codes[j + kHalf] = int(blk.qs[j] >> 4) | int(((qh >> (j + kHalf)) & 1u) << 4);
  }
}

void dequantize_row_q5_1(const void* src, float* dst, int64_t n) {
  const block_q5_1* blocks = static_cast<const block_q5_1*>(src);
  int codes[kQK5_1];
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    const float m = fp16_to_fp32(blocks[b].m);
    unpack_q5_1(blocks[b], codes);
    for (int j = 0; j < kQK5_1; ++j) dst[b * kQK5_1 + j] = float(codes[j]) * d + m;
  }
}

// ggml reference: d = (max−min)/31, m = min, q = trunc((x−min)/d + 0.5) (clamped to 31 for safety).
void quantize_row_q5_1(const float* src, void* dst, int64_t n) {
  block_q5_1* blocks = static_cast<block_q5_1*>(dst);
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    const float* x = src + b * kQK5_1;
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK5_1; ++j) {
      min = std::min(min, x[j]);
      max = std::max(max, x[j]);
    }
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(min);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(31, int(uint8_t((x[j] - min) * id + 0.5f)));
      const int hi = std::min(31, int(uint8_t((x[j + kHalf] - min) * id + 0.5f)));
      blocks[b].qs[j] = uint8_t((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + kHalf);
    }
    std::memcpy(blocks[b].qh, &qh, sizeof(qh));
  }
}

// Σ_blocks d_w·d_a·Σ q_w·q_a + m_w·s_a with Q8_1 activations.
float vec_dot_q5_1_q8_1(int64_t n, const void* weights, const void* activations) {
  const block_q5_1* w = static_cast<const block_q5_1*>(weights);
  const block_q8_1* a = static_cast<const block_q8_1*>(activations);
  int codes[kQK5_1];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK5_1; ++b) {
    unpack_q5_1(w[b], codes);
    int32_t isum = 0;
    for (int j = 0; j < kQK5_1; ++j) isum += codes[j] * int32_t(a[b].qs[j]);
    sum += (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d)) * float(isum) +
           fp16_to_fp32(w[b].m) * fp16_to_fp32(a[b].s);
  }
  return sum;
}

}  // namespace

const QuantTraits formats::kQ5_1 = {
    GgmlType::Q5_1, kQK5_1, sizeof(block_q5_1), GgmlType::Q8_1,
    dequantize_row_q5_1, quantize_row_q5_1, vec_dot_q5_1_q8_1,
};

}  // namespace kvant
