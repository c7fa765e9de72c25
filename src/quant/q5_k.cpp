// quant/q5_k.cpp — Q5_K (GGUF type 13): 5-bit weights (low nibble in qs, high bit in qh), 8 sub-blocks
// of 32 with 6-bit scales and mins packed as Q4_K's. Exact dequantisation, a quantiser, dot with Q8_K.
#include <cassert>
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_blocks.h"

namespace kvant {
namespace {

using kquant::block_q5_K;
using kquant::block_q8_K;
using kquant::QK_K;

// Element i: low 4 bits are a nibble of qs[32*(i/64) + i%32] (low for (i%64) < 32, else high); the
// 5th bit is bit i/32 of qh[i%32]. Sub-block i/32.
inline int q5_byte(int i) { return 32 * (i / 64) + i % 32; }
inline int q5_shift(int i) { return 4 * ((i % 64) / 32); }
inline int q5_value(const block_q5_K& b, int i) {
  return ((b.qs[q5_byte(i)] >> q5_shift(i)) & 0xF) | (((b.qh[i % 32] >> (i / 32)) & 1) << 4);
}

void dequantize_row_q5_K(const void* src, float* dst, int64_t n) {
  assert(n % QK_K == 0);
  const auto* blocks = static_cast<const block_q5_K*>(src);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const block_q5_K& b = blocks[ib];
    const float d = fp16_to_fp32(b.d);
    const float dmin = fp16_to_fp32(b.dmin);
    float* y = dst + ib * QK_K;
    for (int sub = 0; sub < 8; ++sub) {
      int sc, m;
      kquant::scale_min_k4(sub, b.scales, &sc, &m);
      const float dl = d * float(sc);
      const float ml = dmin * float(m);
      for (int i = 32 * sub; i < 32 * sub + 32; ++i) y[i] = dl * float(q5_value(b, i)) - ml;
    }
  }
}

void quantize_row_q5_K(const float* src, void* dst, int64_t n) {
  assert(n % QK_K == 0);
  auto* blocks = static_cast<block_q5_K*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const float* x = src + ib * QK_K;
    block_q5_K& b = blocks[ib];
    float scales[8], offsets[8];
    for (int sub = 0; sub < 8; ++sub) scales[sub] = kquant::fit_asymmetric(x + 32 * sub, 32, 31, &offsets[sub]);
    uint8_t sc_codes[8], min_codes[8];
    const float d = kquant::quantize_unsigned_scales(scales, 8, 63, sc_codes, &b.d);
    const float dmin = kquant::quantize_unsigned_scales(offsets, 8, 63, min_codes, &b.dmin);
    kquant::pack_scale_min_k4(sc_codes, min_codes, b.scales);
    std::memset(b.qs, 0, sizeof(b.qs));
    std::memset(b.qh, 0, sizeof(b.qh));
    for (int sub = 0; sub < 8; ++sub) {
      const float step = d * float(sc_codes[sub]);
      const float offset = dmin * float(min_codes[sub]);
      for (int i = 32 * sub; i < 32 * sub + 32; ++i) {
        const int q = step > 0.0f ? std::clamp(kquant::nearest_int((x[i] + offset) / step), 0, 31) : 0;
        b.qs[q5_byte(i)] |= uint8_t((q & 0xF) << q5_shift(i));
        if (q & 16) b.qh[i % 32] |= uint8_t(1 << (i / 32));
      }
    }
  }
}

// Σ_blocks d_a * (d * Σ_sub scale * Σ q_w q_a - dmin * Σ_sub min * (bsum_2sub + bsum_2sub+1)).
float vec_dot_q5_K(int64_t n, const void* weights, const void* activations) {
  assert(n % QK_K == 0);
  const auto* w = static_cast<const block_q5_K*>(weights);
  const auto* a = static_cast<const block_q8_K*>(activations);
  float sum = 0.0f;
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    int32_t scaled = 0, mins = 0;
    for (int sub = 0; sub < 8; ++sub) {
      int sc, m;
      kquant::scale_min_k4(sub, w[ib].scales, &sc, &m);
      int32_t dot = 0;
      for (int i = 32 * sub; i < 32 * sub + 32; ++i) dot += q5_value(w[ib], i) * a[ib].qs[i];
      scaled += sc * dot;
      mins += m * (a[ib].bsums[2 * sub] + a[ib].bsums[2 * sub + 1]);
    }
    const float dall = a[ib].d * fp16_to_fp32(w[ib].d);
    const float dmin = a[ib].d * fp16_to_fp32(w[ib].dmin);
    sum += dall * float(scaled) - dmin * float(mins);
  }
  return sum;
}

}  // namespace

namespace formats {
const QuantTraits kQ5_K = {GgmlType::Q5_K, QK_K, sizeof(block_q5_K), GgmlType::Q8_K,
                           dequantize_row_q5_K, quantize_row_q5_K, vec_dot_q5_K};
}  // namespace formats

}  // namespace kvant
