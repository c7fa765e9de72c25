// quant/q5_0.cpp — Q5_0: blocks of 32 5-bit codes (4 low bits in qs, 5th bits in qh), x = d·(q−16).
// ggml reference quantiser, exact dequantiser and Q5_0·Q8_0 dot product.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace kvant {
namespace {

constexpr int kHalf = kQK5_0 / 2;

// The 5-bit codes of one block, element order.
void unpack_q5_0(const block_q5_0& blk, int codes[kQK5_0]) {
  uint32_t qh;
  std::memcpy(&qh, blk.qh, sizeof(qh));
  for (int j = 0; j < kHalf; ++j) {
    codes[j] = int(blk.qs[j] & 0x0F) | int(((qh >> j) & 1u) << 4);
    codes[j + kHalf] = int(blk.qs[j] >> 4) | int(((qh >> (j + kHalf)) & 1u) << 4);
  }
}

void dequantize_row_q5_0(const void* src, float* dst, int64_t n) {
  const block_q5_0* blocks = static_cast<const block_q5_0*>(src);
  int codes[kQK5_0];
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    unpack_q5_0(blocks[b], codes);
    for (int j = 0; j < kQK5_0; ++j) dst[b * kQK5_0 + j] = float(codes[j] - 16) * d;
  }
}

// ggml reference: d = max / −16 (max = signed value of largest magnitude),
// q = min(31, trunc(x/d + 16.5)).
void quantize_row_q5_0(const float* src, void* dst, int64_t n) {
  block_q5_0* blocks = static_cast<block_q5_0*>(dst);
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    const float* x = src + b * kQK5_0;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK5_0; ++j) {
      if (amax < std::fabs(x[j])) { amax = std::fabs(x[j]); max = x[j]; }
    }
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kHalf; ++j) {
      const int lo = std::min(31, int(int8_t(x[j] * id + 16.5f)));
      const int hi = std::min(31, int(int8_t(x[j + kHalf] * id + 16.5f)));
      blocks[b].qs[j] = uint8_t((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= uint32_t((lo >> 4) & 1) << j;
      qh |= uint32_t((hi >> 4) & 1) << (j + kHalf);
    }
    std::memcpy(blocks[b].qh, &qh, sizeof(qh));
  }
}

// Σ_blocks fp16(d_w)·fp16(d_a)·Σ (q_w−16)·q_a with Q8_0 activations.
float vec_dot_q5_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const block_q5_0* w = static_cast<const block_q5_0*>(weights);
  const block_q8_0* a = static_cast<const block_q8_0*>(activations);
  int codes[kQK5_0];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK5_0; ++b) {
    unpack_q5_0(w[b], codes);
    int32_t isum = 0;
    for (int j = 0; j < kQK5_0; ++j) isum += (codes[j] - 16) * int32_t(a[b].qs[j]);
    sum += float(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d));
  }
  return sum;
}

}  // namespace

const QuantTraits formats::kQ5_0 = {
    GgmlType::Q5_0, kQK5_0, sizeof(block_q5_0), GgmlType::Q8_0,
    dequantize_row_q5_0, quantize_row_q5_0, vec_dot_q5_0_q8_0,
};

}  // namespace kvant
