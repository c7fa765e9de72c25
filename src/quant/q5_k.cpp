// quant/q5_k.cpp — Q5_K (GGUF type 13): 5-bit weights (low nibble in qs, high bit in qh), 8 sub-blocks
// of 32 with 6-bit scales and mins packed as Q4_K's. Its bit layout; dequantise / quantise / dot with
// Q8_K come from kquant_common.
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_common.h"

namespace kvant {
namespace {

using kquant::block_q5_K;
using kquant::QK_K;
using kquant::SuperBlock;

// Element i: low 4 bits are a nibble of qs[32*(i/64) + i%32] (low for (i%64) < 32, else high); the
// 5th bit is bit i/32 of qh[i%32]. Sub-block i/32.
inline int q5_byte(int i) { return 32 * (i / 64) + i % 32; }
inline int q5_shift(int i) { return 4 * ((i % 64) / 32); }

void unpack_q5_K(const block_q5_K& b, SuperBlock* sb) {
  sb->n_sub = 8;
  sb->has_min = true;
  sb->d = fp16_to_fp32(b.d);
  sb->dmin = fp16_to_fp32(b.dmin);
  kquant::unpack_scale_min_k4(b.scales, sb);
  for (int i = 0; i < QK_K; ++i) {
    sb->q[i] = ((b.qs[q5_byte(i)] >> q5_shift(i)) & 0xF) | (((b.qh[i % 32] >> (i / 32)) & 1) << 4);
  }
}

// Quants 0..31; scale and min codes 0..63 over f16 d and dmin.
void quantize_block_q5_K(const float* x, block_q5_K* b) {
  SuperBlock sb;
  kquant::quantize_superblock_with_min(x, 8, 31, 63, &b->d, &b->dmin, &sb);
  kquant::pack_scale_min_k4(sb, b->scales);
  std::memset(b->qs, 0, sizeof(b->qs));
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int i = 0; i < QK_K; ++i) {
    b->qs[q5_byte(i)] |= uint8_t((sb.q[i] & 0xF) << q5_shift(i));
    if (sb.q[i] & 16) b->qh[i % 32] |= uint8_t(1 << (i / 32));
  }
}

}  // namespace

namespace formats {
const QuantTraits kQ5_K = {GgmlType::Q5_K, QK_K, sizeof(block_q5_K), GgmlType::Q8_K,
                           kquant::dequantize_row<block_q5_K, unpack_q5_K>,
                           kquant::quantize_row<block_q5_K, quantize_block_q5_K>,
                           kquant::vec_dot_row<block_q5_K, unpack_q5_K>};
}  // namespace formats

}  // namespace kvant
