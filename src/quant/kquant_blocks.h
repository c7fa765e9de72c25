// quant/kquant_blocks.h — GGUF/ggml-compatible block layouts of the K-quant formats (256-element
// super-blocks) and the Q4_K/Q5_K 6-bit scale/min packing (also read by the AVX2 dot kernels).
#pragma once

#include <cstdint>

namespace kvant::kquant {

inline constexpr int QK_K = 256;
inline constexpr int K_SCALE_SIZE = 12;  // packed 6-bit scales/mins of Q4_K/Q5_K (and Q3_K's 6-bit scales)

// Q2_K: 16 sub-blocks of 16; 2-bit quants; per sub-block 4-bit scale (low nibble) and min (high nibble).
struct block_q2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d;     // f16 super-block scale of the scales
  uint16_t dmin;  // f16 super-block scale of the mins
};
static_assert(sizeof(block_q2_K) == 84, "block_q2_K must be 84 bytes");

// Q3_K: 16 sub-blocks of 16; 3-bit quants (2 low bits in qs, high bit in hmask); 6-bit signed scales.
struct block_q3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[K_SCALE_SIZE];
  uint16_t d;
};
static_assert(sizeof(block_q3_K) == 110, "block_q3_K must be 110 bytes");

// Q4_K: 8 sub-blocks of 32; 4-bit quants; 6-bit scales and mins packed into 12 bytes.
struct block_q4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144, "block_q4_K must be 144 bytes");

// Q5_K: as Q4_K plus one high bit per quant in qh.
struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176, "block_q5_K must be 176 bytes");

// Q6_K: 16 sub-blocks of 16; 6-bit quants (4 low bits in ql, 2 high bits in qh); int8 scales.
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210, "block_q6_K must be 210 bytes");

// Q8_K: activation type of the K-quant dot products; f32 scale, int8 quants, sums per 16.
struct block_q8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};
static_assert(sizeof(block_q8_K) == 292, "block_q8_K must be 292 bytes");

// Q4_K/Q5_K packing of 8 six-bit scales and 8 six-bit mins in 12 bytes (ggml's get_scale_min_k4):
// j < 4: scale = low 6 bits of byte j, min = low 6 bits of byte j+4; j >= 4: low 4 bits come from
// byte j+4 (scale: low nibble, min: high nibble) and the top 2 bits from the spare top bits of bytes
// j-4 (scale) and j (min).
inline void scale_min_k4(int j, const uint8_t* q, int* scale, int* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *min = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Inverse of scale_min_k4 for scales/mins in 0..63.
inline void pack_scale_min_k4(const uint8_t* scales, const uint8_t* mins, uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = uint8_t((scales[j] & 63) | ((scales[j + 4] >> 4) << 6));
    q[j + 4] = uint8_t((mins[j] & 63) | ((mins[j + 4] >> 4) << 6));
    q[j + 8] = uint8_t((scales[j + 4] & 0xF) | ((mins[j + 4] & 0xF) << 4));
  }
}

}  // namespace kvant::kquant
