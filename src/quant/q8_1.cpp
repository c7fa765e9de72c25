// quant/q8_1.cpp — Q8_1: the activation type of Q4_1/Q5_1 dot products (Q8_0 plus s = d·Σq).
// Activation-only: no vec_dot; the reference quantiser and AVX2-semantics activation path are
// q8_block.h's, shared with Q8_0.
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/q8_block.h"

namespace kvant {
namespace {

static_assert(kQK8_1 == q8_block::kElems);

using BlockQuantizer = float (*)(const float* x, int8_t* qs, int32_t* qsum);

// d = f16(d), s = f16(d·Σq) with d the f32 scale the block quantiser returns.
void quantize_q8_1_blocks(BlockQuantizer quantize_block, const float* src, void* dst, int64_t n) {
  block_q8_1* blocks = static_cast<block_q8_1*>(dst);
  for (int64_t b = 0; b < n / kQK8_1; ++b) {
    int32_t qsum;
    const float d = quantize_block(src + b * kQK8_1, blocks[b].qs, &qsum);
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].s = fp32_to_fp16(d * float(qsum));
  }
}

void quantize_row_q8_1(const float* src, void* dst, int64_t n) {
  quantize_q8_1_blocks(q8_block::quantize_reference, src, dst, n);
}

}  // namespace

void formats::quantize_activations_q8_1(const float* src, void* dst, int64_t n) {
  quantize_q8_1_blocks(q8_block::quantize_activation, src, dst, n);
}

const QuantTraits formats::kQ8_1 = {
    GgmlType::Q8_1, kQK8_1, sizeof(block_q8_1), GgmlType::Q8_1,
    q8_block::dequantize_row<block_q8_1>, quantize_row_q8_1, nullptr,
};

}  // namespace kvant
