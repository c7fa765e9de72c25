// kv/lloyd_max.h — Lloyd–Max (MSE-optimal scalar) quantiser codebooks for N(0,1) at 2..5 bits, used by
// turbo_kv_b. Values were computed by iterating the Lloyd conditions with exact Gaussian integrals.
#pragma once

namespace kvant {

struct LloydMaxCodebook {
  int bits;                 // 2..5
  int size;                 // 2^bits
  const float* centroids;   // ascending, size entries, symmetric around 0
  const float* boundaries;  // size-1 decision thresholds: midpoints of adjacent centroids
  double distortion;        // E[(X - Q(X))^2] for X ~ N(0,1)
};

// The codebook for `bits` in 2..5 (asserted).
const LloydMaxCodebook& lloyd_max_codebook(int bits);

// Index of the centroid nearest to v (v in units of the codebook, i.e. already divided by sigma).
int lloyd_max_nearest(const LloydMaxCodebook& book, float v);

}  // namespace kvant
