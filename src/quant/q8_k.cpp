// quant/q8_k.cpp — Q8_K (GGUF type 15): the 8-bit activation type of the K-quant dot products, with
// llama.cpp's conversion (signed-max scale, round half to even) and per-16 sums of the quants.
#include <cassert>
#include <cmath>
#include <cstring>

#include "quant/block_stats.h"
#include "quant/formats.h"
#include "quant/kquant_blocks.h"

namespace kvant {
namespace {

using kquant::block_q8_K;
using kquant::QK_K;

void dequantize_row_q8_K(const void* src, float* dst, int64_t n) {
  assert(n % QK_K == 0);
  const auto* blocks = static_cast<const block_q8_K*>(src);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    for (int i = 0; i < QK_K; ++i) dst[ib * QK_K + i] = blocks[ib].d * float(blocks[ib].qs[i]);
  }
}

}  // namespace

namespace formats {

// Per block of 256: `max` is the signed value of largest magnitude (the first on ties); the scale
// iscale = -127/max maps it to -127; q = min(127, rne(iscale * x)); d = 1/iscale. All-zero blocks get
// d = 0 and zero quants.
void quantize_activations_q8_k(const float* src, void* dst, int64_t n) {
  assert(n % QK_K == 0);
  auto* blocks = static_cast<block_q8_K*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const float* x = src + ib * QK_K;
    block_q8_K& b = blocks[ib];
    const float max = quant_stats::signed_absmax(x, QK_K);
    if (max == 0.0f) {
      b.d = 0.0f;
      std::memset(b.qs, 0, sizeof(b.qs));
      std::memset(b.bsums, 0, sizeof(b.bsums));
      continue;
    }
    const float iscale = -127.0f / max;
    for (int i = 0; i < QK_K; ++i) {
      const int v = int(std::nearbyint(iscale * x[i]));
      b.qs[i] = int8_t(v < 127 ? v : 127);
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) sum += b.qs[i];
      b.bsums[g] = int16_t(sum);
    }
    b.d = 1.0f / iscale;
  }
}

const QuantTraits kQ8_K = {GgmlType::Q8_K, QK_K, sizeof(block_q8_K), GgmlType::Q8_K,
                           dequantize_row_q8_K, quantize_activations_q8_k, nullptr};

}  // namespace formats

}  // namespace kvant
