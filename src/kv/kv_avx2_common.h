// kv/kv_avx2_common.h — shared AVX2 loop skeletons for the KV codecs; include only from *_avx2.cpp.
// A codec object (built once per kernel call, so it may hold lookup tables in registers) supplies
// `chunk(block, i)`: elements [i, i+8) of the decoded vector as 8 floats (up to a
// per-vector factor; i % 8 == 0) and `post_scale(block)`, that factor.
// Everything here has internal linkage so no AVX2 code can be picked for a non-AVX2 caller.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "core/simd_x86.h"

namespace kvant::kv_internal {
namespace {

using simd::hsum256;

inline float load_half(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// scores[h*n + t] = q_h · v_t for G heads at once: each chunk of a cached vector is decoded once.
template <class Codec, int G>
void score_group_g(int d, const float* q, const uint8_t* blocks, size_t stride, int n, float* scores) {
  const Codec codec;
  for (int t = 0; t < n; ++t) {
    const uint8_t* block = blocks + size_t(t) * stride;
    __m256 acc[G];
    for (int h = 0; h < G; ++h) acc[h] = _mm256_setzero_ps();
    for (int i = 0; i < d; i += 8) {
      const __m256 k = codec.chunk(block, i);
      for (int h = 0; h < G; ++h) acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + size_t(h) * d + i), k, acc[h]);
    }
    const float s = Codec::post_scale(block);
    for (int h = 0; h < G; ++h) scores[size_t(h) * size_t(n) + size_t(t)] = hsum256(acc[h]) * s;
  }
}

// acc[h*d + i] += Σ_t w[h*n + t] v_t[i] for G heads at once. Tokens go in tiles of kTile: for each
// 8-wide column the G accumulators stay in registers across the tile, so acc is loaded and stored
// once per tile instead of once per token.
template <class Codec, int G>
void accumulate_group_g(int d, const float* w, const uint8_t* blocks, size_t stride, int n, float* acc) {
  constexpr int kTile = 32;
  const Codec codec;
  float ws[G][kTile];  // w * per-vector factor for the tile
  for (int t0 = 0; t0 < n; t0 += kTile) {
    const int tn = n - t0 < kTile ? n - t0 : kTile;
    for (int t = 0; t < tn; ++t) {
      const float s = Codec::post_scale(blocks + size_t(t0 + t) * stride);
      for (int h = 0; h < G; ++h) ws[h][t] = w[size_t(h) * size_t(n) + size_t(t0 + t)] * s;
    }
    for (int i = 0; i < d; i += 8) {
      __m256 a[G];
      for (int h = 0; h < G; ++h) a[h] = _mm256_loadu_ps(acc + size_t(h) * d + i);
      const uint8_t* block = blocks + size_t(t0) * stride;
      for (int t = 0; t < tn; ++t, block += stride) {
        const __m256 v = codec.chunk(block, i);
        for (int h = 0; h < G; ++h) a[h] = _mm256_fmadd_ps(_mm256_set1_ps(ws[h][t]), v, a[h]);
      }
      for (int h = 0; h < G; ++h) _mm256_storeu_ps(acc + size_t(h) * d + i, a[h]);
    }
  }
}

// Runtime head count -> template instance; more than 8 heads are done 8 at a time.
template <class Codec>
void score_group_avx2(int d, int g, const float* q, const uint8_t* blocks, size_t stride, int n,
                      float* scores) {
  while (g > 0) {
    const int now = g > 8 ? 8 : g;
    switch (now) {
      case 1: score_group_g<Codec, 1>(d, q, blocks, stride, n, scores); break;
      case 2: score_group_g<Codec, 2>(d, q, blocks, stride, n, scores); break;
      case 3: score_group_g<Codec, 3>(d, q, blocks, stride, n, scores); break;
      case 4: score_group_g<Codec, 4>(d, q, blocks, stride, n, scores); break;
      case 5: score_group_g<Codec, 5>(d, q, blocks, stride, n, scores); break;
      case 6: score_group_g<Codec, 6>(d, q, blocks, stride, n, scores); break;
      case 7: score_group_g<Codec, 7>(d, q, blocks, stride, n, scores); break;
      default: score_group_g<Codec, 8>(d, q, blocks, stride, n, scores); break;
    }
    g -= now;
    q += size_t(now) * size_t(d);
    scores += size_t(now) * size_t(n);
  }
}

template <class Codec>
void accumulate_group_avx2(int d, int g, const float* w, const uint8_t* blocks, size_t stride, int n,
                           float* acc) {
  while (g > 0) {
    const int now = g > 8 ? 8 : g;
    switch (now) {
      case 1: accumulate_group_g<Codec, 1>(d, w, blocks, stride, n, acc); break;
      case 2: accumulate_group_g<Codec, 2>(d, w, blocks, stride, n, acc); break;
      case 3: accumulate_group_g<Codec, 3>(d, w, blocks, stride, n, acc); break;
      case 4: accumulate_group_g<Codec, 4>(d, w, blocks, stride, n, acc); break;
      case 5: accumulate_group_g<Codec, 5>(d, w, blocks, stride, n, acc); break;
      case 6: accumulate_group_g<Codec, 6>(d, w, blocks, stride, n, acc); break;
      case 7: accumulate_group_g<Codec, 7>(d, w, blocks, stride, n, acc); break;
      default: accumulate_group_g<Codec, 8>(d, w, blocks, stride, n, acc); break;
    }
    g -= now;
    w += size_t(now) * size_t(n);
    acc += size_t(now) * size_t(d);
  }
}

}  // namespace
}  // namespace kvant::kv_internal
