// quant/legacy_common.h — what Q4_0/Q4_1/Q5_0/Q5_1 share: 4-/5-bit code packing of a 32-element block,
// and row kernels (ggml reference quantisers, exact dequantisers, dots with Q8_0/Q8_1) built from a
// format's block converters. Each format file supplies its layout and picks the kernels.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/fp16.h"
#include "quant/block_stats.h"
#include "quant/blocks.h"

namespace kvant::legacy {

inline constexpr int kElems = 32;
inline constexpr int kHalf = kElems / 2;

// 4-bit codes: element j is the low nibble of qs[j], element j+16 the high nibble.
inline void unpack_nibbles(const uint8_t* qs, int* codes) {
  for (int j = 0; j < kHalf; ++j) {
    codes[j] = qs[j] & 0x0F;
    codes[j + kHalf] = qs[j] >> 4;
  }
}
inline void pack_nibbles(const int* codes, uint8_t* qs) {
  for (int j = 0; j < kHalf; ++j) qs[j] = uint8_t(codes[j] | (codes[j + kHalf] << 4));
}

// 5-bit codes: low 4 bits as 4-bit codes; bit j of the little-endian u32 qh is the 5th bit of element j.
inline void unpack_q5(const uint8_t* qs, const uint8_t* qh_bytes, int* codes) {
  uint32_t qh;
  std::memcpy(&qh, qh_bytes, sizeof(qh));
  for (int j = 0; j < kElems; ++j) {
    const int nibble = j < kHalf ? (qs[j] & 0x0F) : (qs[j - kHalf] >> 4);
    codes[j] = nibble | int(((qh >> j) & 1u) << 4);
  }
}
inline void pack_q5(const int* codes, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kHalf; ++j) qs[j] = uint8_t((codes[j] & 0x0F) | ((codes[j + kHalf] & 0x0F) << 4));
  for (int j = 0; j < kElems; ++j) qh |= uint32_t((codes[j] >> 4) & 1) << j;
  std::memcpy(qh_bytes, &qh, sizeof(qh));
}

// --- "_0" formats: x = d·(q − kZero), activations Q8_0. ---

template <class Block, void (*Unpack)(const Block&, int*), int kZero>
void dequantize_row_centered(const void* src, float* dst, int64_t n) {
  const Block* blocks = static_cast<const Block*>(src);
  int codes[kElems];
  for (int64_t b = 0; b < n / kElems; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    Unpack(blocks[b], codes);
    for (int j = 0; j < kElems; ++j) dst[b * kElems + j] = float(codes[j] - kZero) * d;
  }
}

// ggml reference: the signed value of largest magnitude maps to code 0 (d = max / −kZero);
// q = min(2·kZero − 1, trunc(x/d + kZero + 0.5)).
template <class Block, void (*Pack)(const int*, Block*), int kZero>
void quantize_row_centered(const float* src, void* dst, int64_t n) {
  Block* blocks = static_cast<Block*>(dst);
  int codes[kElems];
  for (int64_t b = 0; b < n / kElems; ++b) {
    const float* x = src + b * kElems;
    const float d = quant_stats::signed_absmax(x, kElems) / -float(kZero);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kElems; ++j) {
      codes[j] = std::min(2 * kZero - 1, int(int8_t(x[j] * id + (float(kZero) + 0.5f))));
    }
    Pack(codes, &blocks[b]);
  }
}

// Σ_blocks fp16(d_w)·fp16(d_a)·Σ (q_w − kZero)·q_a with Q8_0 activations.
template <class Block, void (*Unpack)(const Block&, int*), int kZero>
float vec_dot_centered_q8_0(int64_t n, const void* weights, const void* activations) {
  const Block* w = static_cast<const Block*>(weights);
  const block_q8_0* a = static_cast<const block_q8_0*>(activations);
  int codes[kElems];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kElems; ++b) {
    Unpack(w[b], codes);
    int32_t isum = 0;
    for (int j = 0; j < kElems; ++j) isum += (codes[j] - kZero) * int32_t(a[b].qs[j]);
    sum += float(isum) * (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d));
  }
  return sum;
}

// --- "_1" formats: x = d·q + m, activations Q8_1. ---

template <class Block, void (*Unpack)(const Block&, int*)>
void dequantize_row_with_min(const void* src, float* dst, int64_t n) {
  const Block* blocks = static_cast<const Block*>(src);
  int codes[kElems];
  for (int64_t b = 0; b < n / kElems; ++b) {
    const float d = fp16_to_fp32(blocks[b].d);
    const float m = fp16_to_fp32(blocks[b].m);
    Unpack(blocks[b], codes);
    for (int j = 0; j < kElems; ++j) dst[b * kElems + j] = float(codes[j]) * d + m;
  }
}

// ggml reference: d = (max−min)/kMaxCode, m = min, q = min(kMaxCode, trunc((x−min)/d + 0.5)), the
// truncation through Trunc (ggml casts via int8_t for Q4_1, uint8_t for Q5_1; kept verbatim).
template <class Block, void (*Pack)(const int*, Block*), int kMaxCode, class Trunc>
void quantize_row_with_min(const float* src, void* dst, int64_t n) {
  Block* blocks = static_cast<Block*>(dst);
  int codes[kElems];
  for (int64_t b = 0; b < n / kElems; ++b) {
    const float* x = src + b * kElems;
    float min, max;
    quant_stats::min_max(x, kElems, &min, &max);
    const float d = (max - min) / float(kMaxCode);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = fp32_to_fp16(d);
    blocks[b].m = fp32_to_fp16(min);
    for (int j = 0; j < kElems; ++j) codes[j] = std::min(kMaxCode, int(Trunc((x[j] - min) * id + 0.5f)));
    Pack(codes, &blocks[b]);
  }
}

// Σ_blocks d_w·d_a·Σ q_w·q_a + m_w·s_a with Q8_1 activations.
template <class Block, void (*Unpack)(const Block&, int*)>
float vec_dot_with_min_q8_1(int64_t n, const void* weights, const void* activations) {
  const Block* w = static_cast<const Block*>(weights);
  const block_q8_1* a = static_cast<const block_q8_1*>(activations);
  int codes[kElems];
  float sum = 0.0f;
  for (int64_t b = 0; b < n / kElems; ++b) {
    Unpack(w[b], codes);
    int32_t isum = 0;
    for (int j = 0; j < kElems; ++j) isum += codes[j] * int32_t(a[b].qs[j]);
    sum += (fp16_to_fp32(w[b].d) * fp16_to_fp32(a[b].d)) * float(isum) +
           fp16_to_fp32(w[b].m) * fp16_to_fp32(a[b].s);
  }
  return sum;
}

}  // namespace kvant::legacy
