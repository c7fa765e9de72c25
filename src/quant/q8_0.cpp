// quant/q8_0.cpp — Q8_0: blocks of 32 int8 with an fp16 scale. Reference weight quantiser (ggml's
// quantize_row_q8_0_ref), AVX2-semantics activation converter, dequantiser and Q8_0·Q8_0 dot.
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

void dequantize_row_q8_0(const void* src, float* dst, int64_t n) {
  const block_q8_0* blocks = static_cast<const block_q8_0*>(src);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    for (int j = 0; j < kQK8_0; ++j) dst[b * kQK8_0 + j] = float(blocks[b].qs[j]) * d;
  }
}

// ggml reference: d = amax/127, q = roundf(x * (1/d)) (round half away from zero).
void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  block_q8_0* blocks = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* x = src + b * kQK8_0;
    const float d = block_amax(x, kQK8_0) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK8_0; ++j) blocks[b].qs[j] = int8_t(std::roundf(x[j] * id));
  }
}

// Σ_blocks fp16(d_w)·fp16(d_a)·Σ q_w·q_a, integer inner sums, float accumulation.
float vec_dot_q8_0_q8_0(int64_t n, const void* weights, const void* activations) {
  const block_q8_0* w = static_cast<const block_q8_0*>(weights);
  const block_q8_0* a = static_cast<const block_q8_0*>(activations);
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    int32_t isum = 0;
    for (int j = 0; j < kQK8_0; ++j) isum += int32_t(w[b].qs[j]) * int32_t(a[b].qs[j]);
    sum += float(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d));
  }
  return sum;
}

}  // namespace

// llama.cpp x86 (AVX2) activation path: d = f16(amax/127), q = round_half_even(x * (127/amax)).
void formats::quantize_activations_q8_0(const float* src, void* dst, int64_t n) {
  block_q8_0* blocks = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    const float* x = src + b * kQK8_0;
    const float amax = block_amax(x, kQK8_0);
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    blocks[b].d = fp32_to_fp16(amax / 127.0f);
    for (int j = 0; j < kQK8_0; ++j) blocks[b].qs[j] = int8_t(std::nearbyint(x[j] * id));
  }
}

const QuantTraits formats::kQ8_0 = {
    GgmlType::Q8_0, kQK8_0, sizeof(block_q8_0), GgmlType::Q8_0,
    dequantize_row_q8_0, quantize_row_q8_0, vec_dot_q8_0_q8_0,
};

}  // namespace kvant
