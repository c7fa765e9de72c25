// quant/q6_k.cpp — Q6_K (GGUF type 14): 6-bit signed weights (low nibble in ql, 2 high bits in qh),
// 16 sub-blocks of 16 with int8 scales. Its bit layout; dequantise / quantise / dot with Q8_K come
// from kquant_common.
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_common.h"

namespace kvant {
namespace {

using kquant::block_q6_K;
using kquant::QK_K;
using kquant::SuperBlock;

// Element i, with half h = i/128, quarter k = (i%128)/32, lane l = i%32: the low nibble is in
// ql[64h + l + 32*(k&1)] (low nibble for k < 2, high for k >= 2); the high 2 bits are in qh[32h + l]
// at bit 2k. Stored value 0..63 means value - 32. Sub-block (scale) is i/16.
inline int q6_low_byte(int i) { return 64 * (i / 128) + i % 32 + 32 * (((i % 128) / 32) & 1); }
inline int q6_low_shift(int i) { return 4 * ((i % 128) / 64); }
inline int q6_high_byte(int i) { return 32 * (i / 128) + i % 32; }
inline int q6_high_shift(int i) { return 2 * ((i % 128) / 32); }

void unpack_q6_K(const block_q6_K& b, SuperBlock* sb) {
  sb->n_sub = 16;
  sb->has_min = false;
  sb->d = fp16_to_fp32(b.d);
  for (int sub = 0; sub < 16; ++sub) sb->scale[sub] = b.scales[sub];
  for (int i = 0; i < QK_K; ++i) {
    const int low = (b.ql[q6_low_byte(i)] >> q6_low_shift(i)) & 0xF;
    const int high = (b.qh[q6_high_byte(i)] >> q6_high_shift(i)) & 3;
    sb->q[i] = (low | (high << 4)) - 32;
  }
}

// Quants -32..31; int8 scale codes -128..127 over f16 d.
void quantize_block_q6_K(const float* x, block_q6_K* b) {
  SuperBlock sb;
  kquant::quantize_superblock_symmetric(x, -32, 31, 128, &b->d, &sb);
  for (int sub = 0; sub < 16; ++sub) b->scales[sub] = int8_t(sb.scale[sub]);
  std::memset(b->ql, 0, sizeof(b->ql));
  std::memset(b->qh, 0, sizeof(b->qh));
  for (int i = 0; i < QK_K; ++i) {
    const int stored = sb.q[i] + 32;  // 0..63
    b->ql[q6_low_byte(i)] |= uint8_t((stored & 0xF) << q6_low_shift(i));
    b->qh[q6_high_byte(i)] |= uint8_t((stored >> 4) << q6_high_shift(i));
  }
}

}  // namespace

namespace formats {
const QuantTraits kQ6_K = {GgmlType::Q6_K, QK_K, sizeof(block_q6_K), GgmlType::Q8_K,
                           kquant::dequantize_row<block_q6_K, unpack_q6_K>,
                           kquant::quantize_row<block_q6_K, quantize_block_q6_K>,
                           kquant::vec_dot_row<block_q6_K, unpack_q6_K>};
}  // namespace formats

}  // namespace kvant
