// quant/kquant_common.h — the format-independent half of the K-quant scalar kernels: a super-block
// unpacked to integers (SuperBlock), its dequantisation, its dot with Q8_K, and the quantisers.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>

#include "quant/kquant_blocks.h"

namespace kvant::kquant {

// One super-block of QK_K weights as integers: element i of sub-block s = i / sub_len() is
//   d * scale[s] * q[i] - dmin * min[s]        (has_min: Q2_K, Q4_K, Q5_K; q >= 0)
//   d * scale[s] * q[i]                        (otherwise: Q3_K, Q6_K; q and scale signed)
// Each format file converts its packed block to and from this form; d and dmin are the f32 values
// of the stored f16 fields.
struct SuperBlock {
  int n_sub = 16;  // 8 sub-blocks of 32 or 16 of 16
  bool has_min = false;
  float d = 0.0f, dmin = 0.0f;
  int scale[16] = {};
  int min[16] = {};
  int q[QK_K] = {};

  int sub_len() const { return QK_K / n_sub; }
};

// Writes the QK_K floats of sb (ggml's order of operations: (d * scale) * q - dmin * min).
void dequantize_superblock(const SuperBlock& sb, float* y);

// This super-block's term of a dot product with Q8_K activations a: integer sums per sub-block,
// mins through a's per-16 sums.
float dot_superblock(const SuperBlock& sb, const block_q8_K& a);

// Quantises x[0..QK_K) with sb.n_sub sub-blocks as scale * q - offset, q in [0, qmax]: least-squares
// fit per sub-block, then scales and offsets to codes in [0, code_max] over the f16 super-scales
// *d_f16 / *dmin_f16. Fills sb (has_min set, scale/min = codes, q = quants).
void quantize_superblock_with_min(const float* x, int n_sub, int qmax, int code_max, uint16_t* d_f16,
                                  uint16_t* dmin_f16, SuperBlock* sb);

// Quantises x[0..QK_K) in 16 sub-blocks of 16 as scale * q, q in [qmin, qmax]; scales become codes
// in [-code_levels, code_levels - 1] over the f16 super-scale *d_f16. Fills sb (no min).
void quantize_superblock_symmetric(const float* x, int qmin, int qmax, int code_levels, uint16_t* d_f16,
                                   SuperBlock* sb);

// Q4_K/Q5_K: sb's 8 scales and mins (0..63) to and from the 12-byte packing of kquant_blocks.h.
void pack_scale_min_k4(const SuperBlock& sb, uint8_t* packed);
void unpack_scale_min_k4(const uint8_t* packed, SuperBlock* sb);

// The same 8 scales and 8 mins as bytes (sub-block s in byte s of *scales / *mins), decoded from the 12
// packed bytes with 32-bit word operations (the SIMD kernels' form of unpack_scale_min_k4).
inline void unpack_scales_mins_k4_bytes(const uint8_t* q, uint64_t* scales, uint64_t* mins) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, q, 4);
  std::memcpy(&w1, q + 4, 4);
  std::memcpy(&w2, q + 8, 4);
  const uint32_t low6 = 0x3F3F3F3F, low4 = 0x0F0F0F0F, low2 = 0x03030303;
  const uint32_t sc_hi = (w2 & low4) | (((w0 >> 6) & low2) << 4);         // scales 4..7
  const uint32_t mn_hi = ((w2 >> 4) & low4) | (((w1 >> 6) & low2) << 4);  // mins 4..7
  *scales = uint64_t(w0 & low6) | (uint64_t(sc_hi) << 32);
  *mins = uint64_t(w1 & low6) | (uint64_t(mn_hi) << 32);
}

// Row kernels of the QuantTraits table, built from a format's two block converters:
//   void Unpack(const Block&, SuperBlock*)     — packed block to integers
//   void QuantizeBlock(const float*, Block*)   — QK_K floats to a packed block
template <class Block, void (*Unpack)(const Block&, SuperBlock*)>
void dequantize_row(const void* src, float* dst, int64_t n) {
  assert(n % QK_K == 0);
  const auto* blocks = static_cast<const Block*>(src);
  SuperBlock sb;
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    Unpack(blocks[ib], &sb);
    dequantize_superblock(sb, dst + ib * QK_K);
  }
}

template <class Block, void (*QuantizeBlock)(const float*, Block*)>
void quantize_row(const float* src, void* dst, int64_t n) {
  assert(n % QK_K == 0);
  auto* blocks = static_cast<Block*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) QuantizeBlock(src + ib * QK_K, &blocks[ib]);
}

template <class Block, void (*Unpack)(const Block&, SuperBlock*)>
float vec_dot_row(int64_t n, const void* weights, const void* activations) {
  assert(n % QK_K == 0);
  const auto* w = static_cast<const Block*>(weights);
  const auto* a = static_cast<const block_q8_K*>(activations);
  SuperBlock sb;
  float sum = 0.0f;
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    Unpack(w[ib], &sb);
    sum += dot_superblock(sb, a[ib]);
  }
  return sum;
}

}  // namespace kvant::kquant
