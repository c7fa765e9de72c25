// quant/q2_k.cpp — Q2_K (GGUF type 10): 2-bit weights, 16 sub-blocks of 16 with 4-bit scale and min
// each. Exact dequantisation, a least-squares quantiser and the dot product with Q8_K activations.
#include <cassert>
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_blocks.h"

namespace kvant {
namespace {

using kquant::block_q2_K;
using kquant::block_q8_K;
using kquant::QK_K;

// Element i of a block: byte qs[32*(i/128) + i%32], bits 2*((i%128)/32). Sub-block (scale) is i/16.
inline int q2_byte(int i) { return 32 * (i / 128) + i % 32; }
inline int q2_shift(int i) { return 2 * ((i % 128) / 32); }
inline int q2_value(const block_q2_K& b, int i) { return (b.qs[q2_byte(i)] >> q2_shift(i)) & 3; }

void dequantize_row_q2_K(const void* src, float* dst, int64_t n) {
  assert(n % QK_K == 0);
  const auto* blocks = static_cast<const block_q2_K*>(src);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const block_q2_K& b = blocks[ib];
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    float* y = dst + ib * QK_K;
    for (int sub = 0; sub < 16; ++sub) {
      const float dl = d * float(b.scales[sub] & 0xF);
      const float ml = dmin * float(b.scales[sub] >> 4);
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) y[i] = dl * float(q2_value(b, i)) - ml;
    }
  }
}

void quantize_row_q2_K(const float* src, void* dst, int64_t n) {
  assert(n % QK_K == 0);
  auto* blocks = static_cast<block_q2_K*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const float* x = src + ib * QK_K;
    block_q2_K& b = blocks[ib];
    float scales[16], offsets[16];
    for (int sub = 0; sub < 16; ++sub) scales[sub] = kquant::fit_asymmetric(x + 16 * sub, 16, 3, &offsets[sub]);
    uint8_t sc_codes[16], min_codes[16];
    const float d = kquant::quantize_unsigned_scales(scales, 16, 15, sc_codes, &b.d);
    const float dmin = kquant::quantize_unsigned_scales(offsets, 16, 15, min_codes, &b.dmin);
    std::memset(b.qs, 0, sizeof(b.qs));
    for (int sub = 0; sub < 16; ++sub) {
      b.scales[sub] = uint8_t(sc_codes[sub] | (min_codes[sub] << 4));
      const float step = d * float(sc_codes[sub]);
      const float offset = dmin * float(min_codes[sub]);
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) {
        const int q = step > 0.0f ? std::clamp(kquant::nearest_int((x[i] + offset) / step), 0, 3) : 0;
        b.qs[q2_byte(i)] |= uint8_t(q << q2_shift(i));
      }
    }
  }
}

// Σ_blocks d_a * (d * Σ_sub scale * Σ q_w q_a - dmin * Σ_sub min * bsum_sub): integer sums per sub-block.
float vec_dot_q2_K(int64_t n, const void* weights, const void* activations) {
  assert(n % QK_K == 0);
  const auto* w = static_cast<const block_q2_K*>(weights);
  const auto* a = static_cast<const block_q8_K*>(activations);
  float sum = 0.0f;
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    int32_t scaled = 0, mins = 0;
    for (int sub = 0; sub < 16; ++sub) {
      int32_t dot = 0;
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) dot += q2_value(w[ib], i) * a[ib].qs[i];
      scaled += (w[ib].scales[sub] & 0xF) * dot;
      mins += (w[ib].scales[sub] >> 4) * a[ib].bsums[sub];
    }
    const float dall = a[ib].d * fp16_to_fp32(w[ib].d);
    const float dmin = a[ib].d * fp16_to_fp32(w[ib].dmin);
    sum += dall * float(scaled) - dmin * float(mins);
  }
  return sum;
}

}  // namespace

namespace formats {
const QuantTraits kQ2_K = {GgmlType::Q2_K, QK_K, sizeof(block_q2_K), GgmlType::Q8_K,
                           dequantize_row_q2_K, quantize_row_q2_K, vec_dot_q2_K};
}  // namespace formats

}  // namespace kvant
