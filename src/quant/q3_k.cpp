// quant/q3_k.cpp — Q3_K (GGUF type 11): 3-bit signed weights (2 low bits in qs, high bit in hmask),
// 16 sub-blocks of 16 with 6-bit signed scales packed in 12 bytes. Its bit layout; dequantise /
// quantise / dot with Q8_K come from kquant_common.
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"
#include "quant/kquant_common.h"

namespace kvant {
namespace {

using kquant::block_q3_K;
using kquant::QK_K;
using kquant::SuperBlock;

// Element i: low bits in qs[32*(i/128) + i%32] at 2*((i%128)/32); high bit in hmask[i%32] bit i/32.
// A set high bit means value = low bits, a clear one means low bits - 4 (range -4..3).
inline int q3_byte(int i) { return 32 * (i / 128) + i % 32; }
inline int q3_shift(int i) { return 2 * ((i % 128) / 32); }

// Scale j (stored biased by 32): low 4 bits are the low nibble of byte j (j < 8) or the high nibble of
// byte j-8; the top 2 bits sit in byte 8 + j%4 at bit 2*(j/4).
inline int q3_scale(const uint8_t* s, int j) {
  const int low = j < 8 ? (s[j] & 0xF) : (s[j - 8] >> 4);
  const int high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (low | (high << 4)) - 32;
}

void pack_q3_scales(const int* scales, uint8_t* s) {
  std::memset(s, 0, kquant::K_SCALE_SIZE);
  for (int j = 0; j < 16; ++j) {
    const int biased = scales[j] + 32;  // 0..63
    s[j % 8] |= uint8_t((biased & 0xF) << (j < 8 ? 0 : 4));
    s[8 + j % 4] |= uint8_t((biased >> 4) << (2 * (j / 4)));
  }
}

void unpack_q3_K(const block_q3_K& b, SuperBlock* sb) {
  sb->n_sub = 16;
  sb->has_min = false;
  sb->d = fp16_to_fp32(b.d);
  for (int sub = 0; sub < 16; ++sub) sb->scale[sub] = q3_scale(b.scales, sub);
  for (int i = 0; i < QK_K; ++i) {
    const int low = (b.qs[q3_byte(i)] >> q3_shift(i)) & 3;
    sb->q[i] = ((b.hmask[i % 32] >> (i / 32)) & 1) ? low : low - 4;
  }
}

// Quants -4..3; scale codes -32..31 over f16 d.
void quantize_block_q3_K(const float* x, block_q3_K* b) {
  SuperBlock sb;
  kquant::quantize_superblock_symmetric(x, -4, 3, 32, &b->d, &sb);
  pack_q3_scales(sb.scale, b->scales);
  std::memset(b->qs, 0, sizeof(b->qs));
  std::memset(b->hmask, 0, sizeof(b->hmask));
  for (int i = 0; i < QK_K; ++i) {
    const int stored = sb.q[i] + 4;  // 0..7: bit 2 -> hmask, bits 0-1 -> qs
    b->qs[q3_byte(i)] |= uint8_t((stored & 3) << q3_shift(i));
    if (stored & 4) b->hmask[i % 32] |= uint8_t(1 << (i / 32));
  }
}

}  // namespace

namespace formats {
const QuantTraits kQ3_K = {GgmlType::Q3_K, QK_K, sizeof(block_q3_K), GgmlType::Q8_K,
                           kquant::dequantize_row<block_q3_K, unpack_q3_K>,
                           kquant::quantize_row<block_q3_K, quantize_block_q3_K>,
                           kquant::vec_dot_row<block_q3_K, unpack_q3_K>};
}  // namespace formats

}  // namespace kvant
