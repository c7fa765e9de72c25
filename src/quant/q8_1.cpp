// quant/q8_1.cpp — Q8_1: the activation type of Q4_1/Q5_1 dot products (Q8_0 plus s = d·Σq).
// Activation-only: no vec_dot; the quantiser is ggml's reference, the activation path AVX2 semantics.
#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"

namespace kvant {
namespace {

float block_amax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

void dequantize_row_q8_1(const void* src, float* dst, int64_t n) {
  const block_q8_1* blocks = static_cast<const block_q8_1*>(src);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int j = 0; j < kQK8_1; ++j) dst[b * kQK8_1 + j] = float(blocks[b].qs[j]) * d;
  }
}

// ggml reference: d = amax/127, q = roundf(x * (1/d)), s = f16(Σq · d).
void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  block_q8_1* blocks = static_cast<block_q8_1*>(dst);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    const float* x = src + b * kQK8_1;
    const float d = block_amax(x, kQK8_1) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    int32_t qsum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      blocks[b].qs[j] = int8_t(std::roundf(x[j] * id));
      qsum += blocks[b].qs[j];
    }
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].s = fp32_to_fp16(float(qsum) * d);
  }
}

}  // namespace

// llama.cpp x86 (AVX2) activation path: as Q8_0 (127/amax, round half even) plus s = f16(d_f32·Σq).
void formats::quantize_activations_q8_1(const float* src, void* dst, int64_t n) {
  block_q8_1* blocks = static_cast<block_q8_1*>(dst);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    const float* x = src + b * kQK8_1;
    const float amax = block_amax(x, kQK8_1);
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int32_t qsum = 0;
    for (int j = 0; j < kQK8_1; ++j) {
      blocks[b].qs[j] = int8_t(std::nearbyint(x[j] * id));
      qsum += blocks[b].qs[j];
    }
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].s = fp32_to_fp16(d * float(qsum));
  }
}

const QuantTraits formats::kQ8_1 = {
    GgmlType::Q8_1, kQK8_1, sizeof(block_q8_1), GgmlType::Q8_1,
    dequantize_row_q8_1, quantize_row_q8_1, nullptr,
};

}  // namespace kvant
