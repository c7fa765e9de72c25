// quant/q4_k.cpp — Q4_K (GGUF type 12): 4-bit weights, 8 sub-blocks of 32 with 6-bit scales and mins
// (packed as in ggml's get_scale_min_k4). Its bit layout; dequantise / quantise / dot with Q8_K come
// from kquant_common.
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_common.h"

namespace kvant {
namespace {

using kquant::block_q4_K;
using kquant::QK_K;
using kquant::SuperBlock;

// Element i: nibble of qs[32*(i/64) + i%32], low for (i%64) < 32 and high otherwise. Sub-block i/32.
inline int q4_byte(int i) { return 32 * (i / 64) + i % 32; }
inline int q4_shift(int i) { return 4 * ((i % 64) / 32); }

void unpack_q4_K(const block_q4_K& b, SuperBlock* sb) {
  sb->n_sub = 8;
  sb->has_min = true;
  sb->d = fp16_to_fp32(b.d);
  sb->dmin = fp16_to_fp32(b.dmin);
  kquant::unpack_scale_min_k4(b.scales, sb);
  for (int i = 0; i < QK_K; ++i) sb->q[i] = (b.qs[q4_byte(i)] >> q4_shift(i)) & 0xF;
}

// Quants 0..15; scale and min codes 0..63 over f16 d and dmin.
void quantize_block_q4_K(const float* x, block_q4_K* b) {
  SuperBlock sb;
  kquant::quantize_superblock_with_min(x, 8, 15, 63, &b->d, &b->dmin, &sb);
  kquant::pack_scale_min_k4(sb, b->scales);
  std::memset(b->qs, 0, sizeof(b->qs));
  for (int i = 0; i < QK_K; ++i) b->qs[q4_byte(i)] |= uint8_t(sb.q[i] << q4_shift(i));
}

}  // namespace

namespace formats {
const QuantTraits kQ4_K = {GgmlType::Q4_K, QK_K, sizeof(block_q4_K), GgmlType::Q8_K,
                           kquant::dequantize_row<block_q4_K, unpack_q4_K>,
                           kquant::quantize_row<block_q4_K, quantize_block_q4_K>,
                           kquant::vec_dot_row<block_q4_K, unpack_q4_K>};
}  // namespace formats

}  // namespace kvant
