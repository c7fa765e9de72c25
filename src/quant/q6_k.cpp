// quant/q6_k.cpp — Q6_K (GGUF type 14): 6-bit signed weights (low nibble in ql, 2 high bits in qh),
// 16 sub-blocks of 16 with int8 scales. Exact dequantisation, a quantiser and the dot with Q8_K.
#include <cassert>
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_blocks.h"

namespace kvant {
namespace {

using kquant::block_q6_K;
using kquant::block_q8_K;
using kquant::QK_K;

// Element i, with half h = i/128, quarter k = (i%128)/32, lane l = i%32: the low nibble is in
// ql[64h + l + 32*(k&1)] (low nibble for k < 2, high for k >= 2); the high 2 bits are in qh[32h + l]
// at bit 2k. Stored value 0..63 means value - 32. Sub-block (scale) is i/16.
inline int q6_low_byte(int i) { return 64 * (i / 128) + i % 32 + 32 * (((i % 128) / 32) & 1); }
inline int q6_low_shift(int i) { return 4 * ((i % 128) / 64); }
inline int q6_high_byte(int i) { return 32 * (i / 128) + i % 32; }
inline int q6_high_shift(int i) { return 2 * ((i % 128) / 32); }
inline int q6_value(const block_q6_K& b, int i) {
  const int low = (b.ql[q6_low_byte(i)] >> q6_low_shift(i)) & 0xF;
  const int high = (b.qh[q6_high_byte(i)] >> q6_high_shift(i)) & 3;
  return (low | (high << 4)) - 32;
}

void dequantize_row_q6_K(const void* src, float* dst, int64_t n) {
  assert(n % QK_K == 0);
  const auto* blocks = static_cast<const block_q6_K*>(src);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const block_q6_K& b = blocks[ib];
    const float d = fp16_to_fp32(b.d);
    float* y = dst + ib * QK_K;
    // ggml evaluates (d * scale) * q in f32, left to right.
    for (int i = 0; i < QK_K; ++i) y[i] = d * float(b.scales[i / 16]) * float(q6_value(b, i));
  }
}

void quantize_row_q6_K(const float* src, void* dst, int64_t n) {
  assert(n % QK_K == 0);
  auto* blocks = static_cast<block_q6_K*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const float* x = src + ib * QK_K;
    block_q6_K& b = blocks[ib];
    float scales[16];
    int8_t unused[16];
    for (int sub = 0; sub < 16; ++sub) scales[sub] = kquant::fit_symmetric(x + 16 * sub, 16, -32, 31, unused);
    const float d = kquant::quantize_signed_scales(scales, 16, 128, b.scales, &b.d);
    std::memset(b.ql, 0, sizeof(b.ql));
    std::memset(b.qh, 0, sizeof(b.qh));
    for (int i = 0; i < QK_K; ++i) {
      const float step = d * float(b.scales[i / 16]);
      const int q = step != 0.0f ? std::clamp(kquant::nearest_int(x[i] / step), -32, 31) : 0;
      const int stored = q + 32;  // 0..63
      b.ql[q6_low_byte(i)] |= uint8_t((stored & 0xF) << q6_low_shift(i));
      b.qh[q6_high_byte(i)] |= uint8_t((stored >> 4) << q6_high_shift(i));
    }
  }
}

// Σ_blocks d * d_a * Σ_sub scale * Σ q_w q_a (q_w already centred on 0).
float vec_dot_q6_K(int64_t n, const void* weights, const void* activations) {
  assert(n % QK_K == 0);
  const auto* w = static_cast<const block_q6_K*>(weights);
  const auto* a = static_cast<const block_q8_K*>(activations);
  float sum = 0.0f;
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    int32_t scaled = 0;
    for (int sub = 0; sub < 16; ++sub) {
      int32_t dot = 0;
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) dot += q6_value(w[ib], i) * a[ib].qs[i];
      scaled += w[ib].scales[sub] * dot;
    }
    sum += fp16_to_fp32(w[ib].d) * a[ib].d * float(scaled);
  }
  return sum;
}

}  // namespace

namespace formats {
const QuantTraits kQ6_K = {GgmlType::Q6_K, QK_K, sizeof(block_q6_K), GgmlType::Q8_K,
                           dequantize_row_q6_K, quantize_row_q6_K, vec_dot_q6_K};
}  // namespace formats

}  // namespace kvant
