// quant/blocks.h — ggml block layouts of the legacy (non-K) formats, byte-compatible with GGUF:
// Q8_0, Q8_1, Q4_0, Q4_1, Q5_0, Q5_1. Half-precision fields are raw IEEE fp16 bits.
#pragma once

#include <cstdint>

namespace kvant {

inline constexpr int kQK8_0 = 32;
inline constexpr int kQK8_1 = 32;
inline constexpr int kQK4_0 = 32;
inline constexpr int kQK4_1 = 32;
inline constexpr int kQK5_0 = 32;
inline constexpr int kQK5_1 = 32;

// x = d * q
struct block_q8_0 {
  uint16_t d;
  int8_t qs[kQK8_0];
};
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must be 34 bytes");

// x = d * q; s = d * sum(q) (used for the min term of Q4_1/Q5_1 dot products)
struct block_q8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[kQK8_1];
};
static_assert(sizeof(block_q8_1) == 36, "block_q8_1 must be 36 bytes");

// x = d * (q - 8); low nibbles hold elements 0..15, high nibbles 16..31
struct block_q4_0 {
  uint16_t d;
  uint8_t qs[kQK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must be 18 bytes");

// x = d * q + m
struct block_q4_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qs[kQK4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 20, "block_q4_1 must be 20 bytes");

// x = d * (q - 16); bit j of the little-endian u32 qh is the 5th bit of element j
struct block_q5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 22, "block_q5_0 must be 22 bytes");

// x = d * q + m, 5-bit q split as in block_q5_0
struct block_q5_1 {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[kQK5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 24, "block_q5_1 must be 24 bytes");

}  // namespace kvant
