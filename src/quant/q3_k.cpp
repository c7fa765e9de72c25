// quant/q3_k.cpp — Q3_K (GGUF type 11): 3-bit signed weights (2 low bits in qs, high bit in hmask),
// 16 sub-blocks of 16 with 6-bit signed scales packed in 12 bytes. Dequantise, quantise, dot with Q8_K.
#include <cassert>
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_blocks.h"

namespace kvant {
namespace {

using kquant::block_q3_K;
using kquant::block_q8_K;
using kquant::QK_K;

// Element i: low bits in qs[32*(i/128) + i%32] at 2*((i%128)/32); high bit in hmask[i%32] bit i/32.
// A set high bit means value = low bits, a clear one means low bits - 4 (range -4..3).
inline int q3_byte(int i) { return 32 * (i / 128) + i % 32; }
inline int q3_shift(int i) { return 2 * ((i % 128) / 32); }
inline int q3_value(const block_q3_K& b, int i) {
  const int low = (b.qs[q3_byte(i)] >> q3_shift(i)) & 3;
  return ((b.hmask[i % 32] >> (i / 32)) & 1) ? low : low - 4;
}

// Scale j (stored biased by 32): low 4 bits are the low nibble of byte j (j < 8) or the high nibble of
// byte j-8; the top 2 bits sit in byte 8 + j%4 at bit 2*(j/4).
inline int q3_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void pack_q3_scales(const int8_t* scales, uint8_t* s) {
  std::memset(s, 0, kquant::K_SCALE_SIZE);
  for (int j = 0; j < 16; ++j) {
    const int biased = scales[j] + 32;  // 0..63
    s[j % 8] |= uint8_t((biased & 0xF) << (j < 8 ? 0 : 4));
    s[8 + j % 4] |= uint8_t((biased >> 4) << (2 * (j / 4)));
  }
}

void dequantize_row_q3_K(const void* src, float* dst, int64_t n) {
  assert(n % QK_K == 0);
  const auto* blocks = static_cast<const block_q3_K*>(src);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const block_q3_K& b = blocks[ib];
    const float d = fp16_to_fp32(b.d);
    float* y = dst + ib * QK_K;
    for (int sub = 0; sub < 16; ++sub) {
      const float dl = d * float(q3_scale(b.scales, sub));
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) y[i] = dl * float(q3_value(b, i));
    }
  }
}

void quantize_row_q3_K(const float* src, void* dst, int64_t n) {
  assert(n % QK_K == 0);
  auto* blocks = static_cast<block_q3_K*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const float* x = src + ib * QK_K;
    block_q3_K& b = blocks[ib];
    float scales[16];
    int8_t unused[16];
    for (int sub = 0; sub < 16; ++sub) scales[sub] = kquant::fit_symmetric(x + 16 * sub, 16, -4, 3, unused);
    int8_t codes[16];
    const float d = kquant::quantize_signed_scales(scales, 16, 32, codes, &b.d);
    pack_q3_scales(codes, b.scales);
    std::memset(b.qs, 0, sizeof(b.qs));
    std::memset(b.hmask, 0, sizeof(b.hmask));
    for (int sub = 0; sub < 16; ++sub) {
      const float step = d * float(codes[sub]);
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) {
        const int q = step != 0.0f ? std::clamp(kquant::nearest_int(x[i] / step), -4, 3) : 0;
        const int stored = q + 4;  // 0..7: bit 2 -> hmask, bits 0-1 -> qs
        b.qs[q3_byte(i)] |= uint8_t((stored & 3) << q3_shift(i));
        if (stored & 4) b.hmask[i % 32] |= uint8_t(1 << (i / 32));
      }
    }
  }
}

// Σ_blocks d * d_a * Σ_sub scale * Σ q_w q_a.
float vec_dot_q3_K(int64_t n, const void* weights, const void* activations) {
  assert(n % QK_K == 0);
  const auto* w = static_cast<const block_q3_K*>(weights);
  const auto* a = static_cast<const block_q8_K*>(activations);
  float sum = 0.0f;
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    int32_t scaled = 0;
    for (int sub = 0; sub < 16; ++sub) {
      int32_t dot = 0;
      for (int i = 16 * sub; i < 16 * sub + 16; ++i) dot += q3_value(w[ib], i) * a[ib].qs[i];
      scaled += q3_scale(w[ib].scales, sub) * dot;
    }
    sum += fp16_to_fp32(w[ib].d) * a[ib].d * float(scaled);
  }
  return sum;
}

}  // namespace

namespace formats {
const QuantTraits kQ3_K = {GgmlType::Q3_K, QK_K, sizeof(block_q3_K), GgmlType::Q8_K,
                           dequantize_row_q3_K, quantize_row_q3_K, vec_dot_q3_K};
}  // namespace formats

}  // namespace kvant
