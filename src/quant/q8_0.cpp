// quant/q8_0.cpp — Q8_0: blocks of 32 int8 with an fp16 scale. Reference weight quantiser (ggml's
// quantize_row_q8_0_ref) and AVX2-semantics activation converter (both via q8_block.h), dequantiser
// and Q8_0·Q8_0 dot.
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/q8_block.h"

namespace kvant {
namespace {

static_assert(kQK8_0 == q8_block::kElems);

void quantize_row_q8_0(const float* src, void* dst, int64_t n) {
  block_q8_0* blocks = static_cast<block_q8_0*>(dst);
  int32_t qsum;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    blocks[b].d = fp32_to_fp16(q8_block::quantize_reference(src + b * kQK8_0, blocks[b].qs, &qsum));
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

void formats::quantize_activations_q8_0(const float* src, void* dst, int64_t n) {
  block_q8_0* blocks = static_cast<block_q8_0*>(dst);
  int32_t qsum;
  for (int64_t b = 0; b < n / kQK8_0; ++b) {
    blocks[b].d = fp32_to_fp16(q8_block::quantize_activation(src + b * kQK8_0, blocks[b].qs, &qsum));
  }
}

const QuantTraits formats::kQ8_0 = {
    GgmlType::Q8_0, kQK8_0, sizeof(block_q8_0), GgmlType::Q8_0,
    q8_block::dequantize_row<block_q8_0>, quantize_row_q8_0, vec_dot_q8_0_q8_0,
};

}  // namespace kvant
