// quant/kquant_blocks.h — GGUF/ggml-compatible block layouts of the K-quant formats (256-element
// super-blocks) and small helpers shared by their kernels (q2_k.cpp .. q8_k.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/fp16.h"

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

// --- Quantiser helpers (weight quantisation only; dequantisation and dot products do not use them) ---

// Round half to even (default FP rounding mode), as ggml's nearest_int does for in-range values.
inline int nearest_int(float x) { return int(std::nearbyint(x)); }

// Fits x[0..n) ~= scale * q with integers q in [qmin, qmax] (qmin < 0 < qmax). Tries scales around the
// one mapping the largest-|x| value onto qmin, refits each by least squares and keeps the best.
// Writes q; returns the scale (0, with q = 0, when all x are 0).
inline float fit_symmetric(const float* x, int n, int qmin, int qmax, int8_t* q) {
  float signed_max = 0.0f, amax = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); signed_max = x[i]; }
  }
  if (amax == 0.0f) {
    for (int i = 0; i < n; ++i) q[i] = 0;
    return 0.0f;
  }
  float best_score = -1.0f, best_scale = 0.0f;
  int8_t trial[QK_K];
  for (int step = -9; step <= 9; ++step) {
    const float inv_scale = (float(qmin) + 0.1f * float(step)) / signed_max;
    double sum_xq = 0, sum_qq = 0;
    for (int i = 0; i < n; ++i) {
      trial[i] = int8_t(std::clamp(nearest_int(inv_scale * x[i]), qmin, qmax));
      sum_xq += double(x[i]) * trial[i];
      sum_qq += double(trial[i]) * trial[i];
    }
    if (sum_qq == 0) continue;
    const double score = sum_xq * sum_xq / sum_qq;  // error = sum(x^2) - score
    if (score > best_score) {
      best_score = float(score);
      best_scale = float(sum_xq / sum_qq);
      for (int i = 0; i < n; ++i) q[i] = trial[i];
    }
  }
  return best_scale;
}

// Fits x[0..n) ~= scale * q - offset with integers q in [0, qmax], scale >= 0, offset >= 0 (ggml's
// K-quant convention: the represented minimum is never positive). Least squares over a few starting
// scales. Returns the scale and writes the offset.
inline float fit_asymmetric(const float* x, int n, int qmax, float* offset) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; ++i) { lo = std::min(lo, x[i]); hi = std::max(hi, x[i]); }
  *offset = -lo;
  if (hi <= lo) return 0.0f;
  const float range = hi - lo;
  float best_err = INFINITY, best_scale = range / float(qmax), best_min = lo;
  for (int step = -4; step <= 6; ++step) {
    const float inv_scale = (float(qmax) + 0.2f * float(step)) / range;
    double sq = 0, sqq = 0, sx = 0, sxq = 0;
    for (int i = 0; i < n; ++i) {
      const int qi = std::clamp(nearest_int(inv_scale * (x[i] - lo)), 0, qmax);
      sq += qi; sqq += double(qi) * qi; sx += x[i]; sxq += double(x[i]) * qi;
    }
    if (sqq == 0) continue;
    const double det = n * sqq - sq * sq;  // 0 when every q is equal: fit the scale alone
    double scale = det > 0 ? (n * sxq - sq * sx) / det : 0;
    double min = det > 0 ? (sqq * sx - sq * sxq) / det : 1;
    if (min > 0) { min = 0; scale = sxq / sqq; }
    if (scale <= 0) continue;
    double err = 0;  // error after re-assigning q to the fitted grid
    for (int i = 0; i < n; ++i) {
      const int qi = std::clamp(nearest_int(float((x[i] - min) / scale)), 0, qmax);
      const double e = scale * qi + min - x[i];
      err += e * e;
    }
    if (err < best_err) { best_err = float(err); best_scale = float(scale); best_min = float(min); }
  }
  *offset = -best_min;
  return best_scale;
}

// Quantises non-negative per-sub-block values v[0..n) to codes in [0, levels] with one shared step,
// stored as f16. Returns the step as stored (f32 of the f16).
inline float quantize_unsigned_scales(const float* v, int n, int levels, uint8_t* codes, uint16_t* step_f16) {
  float vmax = 0.0f;
  for (int j = 0; j < n; ++j) vmax = std::max(vmax, v[j]);
  *step_f16 = fp32_to_fp16(vmax / float(levels));
  const float step = fp16_to_fp32(*step_f16);
  for (int j = 0; j < n; ++j) {
    codes[j] = step > 0.0f ? uint8_t(std::clamp(nearest_int(v[j] / step), 0, levels)) : 0;
  }
  return step;
}

// Quantises signed values v[0..n) to codes in [-levels, levels - 1] with a shared f16 step whose sign
// maps the largest-|v| entry onto -levels. Returns the step as stored.
inline float quantize_signed_scales(const float* v, int n, int levels, int8_t* codes, uint16_t* step_f16) {
  float signed_max = 0.0f, amax = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (std::fabs(v[j]) > amax) { amax = std::fabs(v[j]); signed_max = v[j]; }
  }
  *step_f16 = fp32_to_fp16(amax == 0.0f ? 0.0f : signed_max / float(-levels));
  const float step = fp16_to_fp32(*step_f16);
  for (int j = 0; j < n; ++j) {
    codes[j] = step != 0.0f ? int8_t(std::clamp(nearest_int(v[j] / step), -levels, levels - 1)) : 0;
  }
  return step;
}

}  // namespace kvant::kquant
