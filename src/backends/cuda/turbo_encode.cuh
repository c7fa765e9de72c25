// backends/cuda/turbo_encode.cuh — the turbo_kv scale search on the device, in warp-sized pieces, byte for
// byte the CPU codec's (kv/kv_codec_turbo.cpp): from a starting scale, assign each rotated element to its
// nearest Lloyd–Max centroid and refit the least-squares scale until the indices are stable; the start
// whose result captures the most energy <x,c>^2/<c,c> wins (first on ties). One warp runs one start, so a
// block of kTurboStarts warps searches all starts of one vector at once.
#pragma once

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels.h"

namespace kvant::cuda {

// Starting scales, as multiples of the vector's RMS (same list and order as the CPU codec).
constexpr int kTurboStarts = 6;
__device__ __forceinline__ float turbo_start_factor(int k) {
  switch (k) {
    case 0: return 0.7f;
    case 1: return 0.8f;
    case 2: return 0.9f;
    case 3: return 1.0f;
    case 4: return 1.1f;
    default: return 1.2f;
  }
}

struct TurboCodebook {
  const float* centroids = nullptr;   // [2^bits]
  const float* boundaries = nullptr;  // [2^bits - 1]
  int bits = 0;
  __device__ int n_boundaries() const { return (1 << bits) - 1; }
};

// The codebook of `type`, copied by the block's threads into `shared` (at least 64 floats) so the
// search's many lookups hit shared memory; the caller syncs the block before using it.
__device__ inline TurboCodebook turbo_codebook_shared(KvType type, const KvTables& tables, float* shared) {
  const int bits = type == KvType::TURBO_2B ? 2 : type == KvType::TURBO_3B ? 3 : type == KvType::TURBO_4B ? 4 : 5;
  const int n = 1 << bits;
  for (int i = threadIdx.x; i < 2 * n - 1; i += blockDim.x) {
    shared[i] = i < n ? tables.centroids[bits - 2][i] : tables.boundaries[bits - 2][i - n];
  }
  return {shared, shared + n, bits};
}

// Index of the Lloyd–Max centroid nearest to v: the number of boundaries strictly below v (NaN -> 0).
__device__ __forceinline__ int turbo_nearest(const TurboCodebook& cb, float v) {
  int idx = 0;
  for (int k = 0; k < cb.n_boundaries(); ++k) idx += v > cb.boundaries[k] ? 1 : 0;
  return idx;
}

// RMS of x[d] with the sum of squares in double (identical in every lane).
__device__ inline float warp_rms(const float* x, int d, int lane) {
  double sumsq = 0.0;
  for (int i = lane; i < d; i += 32) sumsq += double(x[i]) * double(x[i]);
  return float(sqrt(warp_sum(sumsq) / d));
}

// <x,c> and <c,c> over the indices idx (warp-reduced, identical in every lane).
__device__ inline void turbo_dot_sums(const float* x, const int* idx, int d, const TurboCodebook& cb, int lane,
                                      double* xc_out, double* cc_out) {
  double xc = 0.0, cc = 0.0;
  for (int i = lane; i < d; i += 32) {
    const double c = cb.centroids[idx[i]];
    xc += double(x[i]) * c;
    cc += c * c;
  }
  *xc_out = warp_sum(xc);
  *cc_out = warp_sum(cc);
}

struct TurboFit {
  float scale = 0.0f;
  double captured = -1.0;  // energy the indices capture, <x,c>^2/<c,c> (-1 when the fit is degenerate)
};

// Assign-and-refit from `start`; leaves the indices in idx (shared, d ints). The last refit's sums are
// over the final indices, so they also give the captured energy (no extra reduction).
__device__ inline TurboFit turbo_fit_from(const float* x, int* idx, int d, const TurboCodebook& cb, float start,
                                          int lane) {
  double xc = 0.0, cc = 0.0;
  auto refit = [&]() {
    turbo_dot_sums(x, idx, d, cb, lane, &xc, &cc);
    return cc > 0.0 ? float(xc / cc) : 0.0f;
  };
  float inv = 1.0f / start;
  for (int i = lane; i < d; i += 32) idx[i] = turbo_nearest(cb, x[i] * inv);
  __syncwarp();
  float s = refit();
  for (int step = 0; step < 8 && s > 0.0f; ++step) {
    inv = 1.0f / s;
    bool changed = false;
    for (int i = lane; i < d; i += 32) {
      const int nearest = turbo_nearest(cb, x[i] * inv);
      changed |= nearest != idx[i];
      idx[i] = nearest;
    }
    __syncwarp();
    if (!__any_sync(0xffffffffu, changed)) break;
    s = refit();
  }
  return {s, cc > 0.0 && s > 0.0f ? xc * xc / cc : -1.0};
}

// Writes the block: fp16 scale, then the indices packed `bits` per element, 8 elements per `bits` bytes.
__device__ inline void turbo_store(const int* idx, int d, int bits, float scale, uint8_t* dst, int lane) {
  if (lane == 0) store_half(dst, scale);
  for (int g = lane; g < d / 8; g += 32) {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= uint64_t(idx[8 * g + k]) << (bits * k);
    for (int k = 0; k < bits; ++k) dst[2 + g * bits + k] = uint8_t(v >> (8 * k));
  }
}

}  // namespace kvant::cuda
