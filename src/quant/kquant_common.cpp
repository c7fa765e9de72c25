// quant/kquant_common.cpp — K-quant super-block kernels shared by q2_k.cpp .. q6_k.cpp: dequantise and
// dot an unpacked SuperBlock, and the least-squares scale / scale-and-min quantisers.
#include "quant/kquant_common.h"

#include <algorithm>
#include <cmath>

#include "core/fp16.h"
#include "quant/block_stats.h"

namespace kvant::kquant {
namespace {

// Round half to even (default FP rounding mode), as ggml's nearest_int does for in-range values.
int nearest_int(float x) { return int(std::nearbyint(x)); }

// Best scale for x[0..n) ~= scale * q with integers q in [qmin, qmax] (qmin < 0 < qmax). Tries scales
// around the one mapping the largest-|x| value onto qmin, refits each by least squares and keeps the
// best. 0 when all x are 0.
float fit_symmetric(const float* x, int n, int qmin, int qmax) {
  const float signed_max = quant_stats::signed_absmax(x, n);
  if (signed_max == 0.0f) return 0.0f;
  float best_score = -1.0f, best_scale = 0.0f;
  for (int step = -9; step <= 9; ++step) {
    const float inv_scale = (float(qmin) + 0.1f * float(step)) / signed_max;
    double sum_xq = 0, sum_qq = 0;
    for (int i = 0; i < n; ++i) {
      const int q = std::clamp(nearest_int(inv_scale * x[i]), qmin, qmax);
      sum_xq += double(x[i]) * q;
      sum_qq += double(q) * q;
    }
    if (sum_qq == 0) continue;
    const double score = sum_xq * sum_xq / sum_qq;  // error = sum(x^2) - score
    if (score > best_score) {
      best_score = float(score);
      best_scale = float(sum_xq / sum_qq);
    }
  }
  return best_scale;
}

// Fits x[0..n) ~= scale * q - offset with integers q in [0, qmax], scale >= 0, offset >= 0 (ggml's
// K-quant convention: the represented minimum is never positive). Least squares over a few starting
// scales. Returns the scale and writes the offset.
float fit_asymmetric(const float* x, int n, int qmax, float* offset) {
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
float quantize_unsigned_scales(const float* v, int n, int levels, int* codes, uint16_t* step_f16) {
  float vmax = 0.0f;
  for (int j = 0; j < n; ++j) vmax = std::max(vmax, v[j]);
  *step_f16 = fp32_to_fp16(vmax / float(levels));
  const float step = fp16_to_fp32(*step_f16);
  for (int j = 0; j < n; ++j) codes[j] = step > 0.0f ? std::clamp(nearest_int(v[j] / step), 0, levels) : 0;
  return step;
}

// Quantises signed values v[0..n) to codes in [-levels, levels - 1] with a shared f16 step whose sign
// maps the largest-|v| entry onto -levels. Returns the step as stored.
float quantize_signed_scales(const float* v, int n, int levels, int* codes, uint16_t* step_f16) {
  const float signed_max = quant_stats::signed_absmax(v, n);
  *step_f16 = fp32_to_fp16(signed_max == 0.0f ? 0.0f : signed_max / float(-levels));
  const float step = fp16_to_fp32(*step_f16);
  for (int j = 0; j < n; ++j) {
    codes[j] = step != 0.0f ? std::clamp(nearest_int(v[j] / step), -levels, levels - 1) : 0;
  }
  return step;
}

}  // namespace

void dequantize_superblock(const SuperBlock& sb, float* y) {
  const int len = sb.sub_len();
  for (int sub = 0; sub < sb.n_sub; ++sub) {
    const float dl = sb.d * float(sb.scale[sub]);
    if (sb.has_min) {
      const float ml = sb.dmin * float(sb.min[sub]);
      for (int i = len * sub; i < len * (sub + 1); ++i) y[i] = dl * float(sb.q[i]) - ml;
    } else {
      for (int i = len * sub; i < len * (sub + 1); ++i) y[i] = dl * float(sb.q[i]);
    }
  }
}

// d_a * (d * Σ_sub scale * Σ q_w q_a - dmin * Σ_sub min * Σ_{its 16-groups} bsum), integer inner sums.
float dot_superblock(const SuperBlock& sb, const block_q8_K& a) {
  const int len = sb.sub_len();
  int32_t scaled = 0, mins = 0;
  for (int sub = 0; sub < sb.n_sub; ++sub) {
    int32_t dot = 0, bsum = 0;
    for (int i = len * sub; i < len * (sub + 1); ++i) dot += sb.q[i] * a.qs[i];
    scaled += sb.scale[sub] * dot;
    if (sb.has_min) {
      for (int g = len / 16 * sub; g < len / 16 * (sub + 1); ++g) bsum += a.bsums[g];
      mins += sb.min[sub] * bsum;
    }
  }
  if (!sb.has_min) return sb.d * a.d * float(scaled);
  return a.d * sb.d * float(scaled) - a.d * sb.dmin * float(mins);
}

void quantize_superblock_with_min(const float* x, int n_sub, int qmax, int code_max, uint16_t* d_f16,
                                  uint16_t* dmin_f16, SuperBlock* sb) {
  sb->n_sub = n_sub;
  sb->has_min = true;
  const int len = sb->sub_len();
  float scales[16] = {}, offsets[16] = {};
  for (int sub = 0; sub < n_sub; ++sub) scales[sub] = fit_asymmetric(x + len * sub, len, qmax, &offsets[sub]);
  sb->d = quantize_unsigned_scales(scales, n_sub, code_max, sb->scale, d_f16);
  sb->dmin = quantize_unsigned_scales(offsets, n_sub, code_max, sb->min, dmin_f16);
  for (int sub = 0; sub < n_sub; ++sub) {
    const float step = sb->d * float(sb->scale[sub]);
    const float offset = sb->dmin * float(sb->min[sub]);
    for (int i = len * sub; i < len * (sub + 1); ++i) {
      sb->q[i] = step > 0.0f ? std::clamp(nearest_int((x[i] + offset) / step), 0, qmax) : 0;
    }
  }
}

void quantize_superblock_symmetric(const float* x, int qmin, int qmax, int code_levels, uint16_t* d_f16,
                                   SuperBlock* sb) {
  sb->n_sub = 16;
  sb->has_min = false;
  sb->dmin = 0.0f;
  float scales[16] = {};
  for (int sub = 0; sub < 16; ++sub) scales[sub] = fit_symmetric(x + 16 * sub, 16, qmin, qmax);
  sb->d = quantize_signed_scales(scales, 16, code_levels, sb->scale, d_f16);
  for (int i = 0; i < QK_K; ++i) {
    const float step = sb->d * float(sb->scale[i / 16]);
    sb->q[i] = step != 0.0f ? std::clamp(nearest_int(x[i] / step), qmin, qmax) : 0;
  }
}

void pack_scale_min_k4(const SuperBlock& sb, uint8_t* packed) {
  uint8_t scales[8], mins[8];
  for (int j = 0; j < 8; ++j) { scales[j] = uint8_t(sb.scale[j]); mins[j] = uint8_t(sb.min[j]); }
  pack_scale_min_k4(scales, mins, packed);
}

void unpack_scale_min_k4(const uint8_t* packed, SuperBlock* sb) {
  for (int j = 0; j < 8; ++j) scale_min_k4(j, packed, &sb->scale[j], &sb->min[j]);
}

}  // namespace kvant::kquant
