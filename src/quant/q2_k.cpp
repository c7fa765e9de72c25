// quant/q2_k.cpp — Q2_K (GGUF type 10): 2-bit weights, 16 sub-blocks of 16 with 4-bit scale and min
// each. Its bit layout; dequantise / quantise / dot with Q8_K come from kquant_common.
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_common.h"

namespace kvant {
namespace {

using kquant::block_q2_K;
using kquant::QK_K;
using kquant::SuperBlock;

// Element i of a block: byte qs[32*(i/128) + i%32], bits 2*((i%128)/32). Sub-block (scale) is i/16.
inline int q2_byte(int i) { return 32 * (i / 128) + i % 32; }
inline int q2_shift(int i) { return 2 * ((i % 128) / 32); }

void unpack_q2_K(const block_q2_K& b, SuperBlock* sb) {
  sb->n_sub = 16;
  sb->has_min = true;
  sb->d = fp16_to_fp32(b.d);
  sb->dmin = fp16_to_fp32(b.dmin);
  for (int sub = 0; sub < 16; ++sub) {
    sb->scale[sub] = b.scales[sub] & 0xF;
    sb->min[sub] = b.scales[sub] >> 4;
  }
  for (int i = 0; i < QK_K; ++i) sb->q[i] = (b.qs[q2_byte(i)] >> q2_shift(i)) & 3;
}

// Quants 0..3; scale and min codes 0..15 over f16 d and dmin.
void quantize_block_q2_K(const float* x, block_q2_K* b) {
  SuperBlock sb;
  kquant::quantize_superblock_with_min(x, 16, 3, 15, &b->d, &b->dmin, &sb);
  for (int sub = 0; sub < 16; ++sub) b->scales[sub] = uint8_t(sb.scale[sub] | (sb.min[sub] << 4));
  std::memset(b->qs, 0, sizeof(b->qs));
  for (int i = 0; i < QK_K; ++i) b->qs[q2_byte(i)] |= uint8_t(sb.q[i] << q2_shift(i));
}

}  // namespace

namespace formats {
const QuantTraits kQ2_K = {GgmlType::Q2_K, QK_K, sizeof(block_q2_K), GgmlType::Q8_K,
                           kquant::dequantize_row<block_q2_K, unpack_q2_K>,
                           kquant::quantize_row<block_q2_K, quantize_block_q2_K>,
                           kquant::vec_dot_row<block_q2_K, unpack_q2_K>};
}  // namespace formats

}  // namespace kvant
