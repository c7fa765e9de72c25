// quant/block_stats.h — the per-block statistics the scalar quantisers start from: largest magnitude,
// signed value of largest magnitude, and min/max.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>

namespace kvant::quant_stats {

// max |x[i]| (0 for an empty or all-zero block).
inline float absmax(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  return amax;
}

// The x[i] of largest magnitude, sign kept; the first one on ties; 0 for an all-zero block.
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); max = x[i]; }
  }
  return max;
}

// Smallest and largest x[i].
inline void min_max(const float* x, int n, float* min, float* max) {
  *min = FLT_MAX;
  *max = -FLT_MAX;
  for (int i = 0; i < n; ++i) {
    *min = std::min(*min, x[i]);
    *max = std::max(*max, x[i]);
  }
}

}  // namespace kvant::quant_stats
