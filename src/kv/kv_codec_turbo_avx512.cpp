// kv/kv_codec_turbo_avx512.cpp — AVX-512 score/accumulate for turbo_kv_2b..5b: 16 indices (two groups,
// 2B bytes) are spread to 16 dword lanes with one byte shuffle and a variable shift, then looked up in
// the centroid table held in one zmm (vpermps; two tables with vpermt2ps for 32 entries at b = 5).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kv/kv_kernels.h"
#include "kv/lloyd_max.h"

// GCC 12 flags the _mm512_undefined_* placeholders inside its own AVX-512 intrinsics (false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kvant::kv_internal {
namespace {

float load_half(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

template <int B>
struct TurboChunks16 {
  __m512 lo, hi;     // centroids 0..15 and 16..31 (entries past 2^B are zero and unused)
  __m512i shuffle;   // per dword lane j: the two bytes holding bits [j*B, j*B + B), then zeros
  __m512i shifts;    // per dword lane j: (j*B) % 8
  TurboChunks16() {
    const LloydMaxCodebook& book = lloyd_max_codebook(B);
    alignas(64) float padded[32] = {};
    for (int i = 0; i < book.size; ++i) padded[i] = book.centroids[i];
    lo = _mm512_load_ps(padded);
    hi = _mm512_load_ps(padded + 16);
    alignas(64) uint8_t ctrl[64];
    alignas(64) int32_t sh[16];
    for (int j = 0; j < 16; ++j) {
      const int bit = j * B;
      ctrl[4 * j + 0] = uint8_t(bit / 8);
      ctrl[4 * j + 1] = uint8_t(bit / 8 + 1);  // at most 2B <= 10: inside the zero-extended register
      ctrl[4 * j + 2] = 0x80;                  // pshufb: high bit set -> zero byte
      ctrl[4 * j + 3] = 0x80;
      sh[j] = bit % 8;
    }
    shuffle = _mm512_load_si512(ctrl);
    shifts = _mm512_load_si512(sh);
  }

  // The 2B bytes of two groups in the low bytes of an xmm (upper bytes zero), with loads that stay
  // inside the block.
  static __m128i load_bytes(const uint8_t* p) {
    if constexpr (B == 2) {
      uint32_t v;
      __builtin_memcpy(&v, p, 4);
      return _mm_cvtsi32_si128(int(v));
    } else if constexpr (B == 3) {
      uint32_t a;
      uint16_t b;
      __builtin_memcpy(&a, p, 4);
      __builtin_memcpy(&b, p + 4, 2);
      return _mm_cvtsi64_si128((long long)(uint64_t(a) | (uint64_t(b) << 32)));
    } else if constexpr (B == 4) {
      return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
    } else {
      uint16_t b;
      __builtin_memcpy(&b, p + 8, 2);
      return _mm_insert_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)), b, 4);
    }
  }

  // Decoded elements [i, i + 16) of a block, before the per-vector scale; i % 16 == 0.
  __m512 chunk(const uint8_t* block, int i) const {
    const __m512i bytes = _mm512_broadcast_i32x4(load_bytes(block + 2 + size_t(i / 8) * B));
    __m512i idx = _mm512_srlv_epi32(_mm512_shuffle_epi8(bytes, shuffle), shifts);
    if constexpr (B < 4) idx = _mm512_and_si512(idx, _mm512_set1_epi32((1 << B) - 1));
    if constexpr (B <= 4) {
      return _mm512_permutexvar_ps(idx, lo);  // uses the low 4 bits
    } else {
      return _mm512_permutex2var_ps(lo, idx, hi);  // uses the low 5 bits
    }
  }
  static float post_scale(const uint8_t* block) { return load_half(block); }
};

// The horizontal sums of four vectors, in one xmm (fewer shuffles than four separate reductions).
// The order of additions for one vector does not depend on the other three.
inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const auto half = [](__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); };
  const __m256 ab = _mm256_hadd_ps(half(a), half(b));  // per 128-bit lane: a01 a23 b01 b23
  const __m256 cd = _mm256_hadd_ps(half(c), half(d));
  const __m256 abcd = _mm256_hadd_ps(ab, cd);  // per 128-bit lane: partial a b c d
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

// scores[h*n + t] = q_h · v_t for G heads at once: each chunk of a cached vector is decoded once.
template <class Codec, int G>
void score_group_g(int d, const float* q, const uint8_t* blocks, size_t stride, int n, float* scores) {
  const Codec codec;
  for (int t = 0; t < n; ++t) {
    const uint8_t* block = blocks + size_t(t) * stride;
    __m512 acc[G];
    for (int h = 0; h < G; ++h) acc[h] = _mm512_setzero_ps();
    for (int i = 0; i < d; i += 16) {
      const __m512 k = codec.chunk(block, i);
      for (int h = 0; h < G; ++h) acc[h] = _mm512_fmadd_ps(_mm512_loadu_ps(q + size_t(h) * d + i), k, acc[h]);
    }
    const float s = Codec::post_scale(block);
    int h = 0;
    for (; h + 4 <= G; h += 4) {
      alignas(16) float sums[4];
      _mm_store_ps(sums, _mm_mul_ps(hsum4(acc[h], acc[h + 1], acc[h + 2], acc[h + 3]), _mm_set1_ps(s)));
      for (int j = 0; j < 4; ++j) scores[size_t(h + j) * size_t(n) + size_t(t)] = sums[j];
    }
    for (; h < G; ++h) {  // same summation order as above, so group and per-head calls agree exactly
      scores[size_t(h) * size_t(n) + size_t(t)] = _mm_cvtss_f32(hsum4(acc[h], acc[h], acc[h], acc[h])) * s;
    }
  }
}

// acc[h*d + i] += Σ_t w[h*n + t] v_t[i] for G heads at once, in tiles of kTile tokens so the G
// accumulators of a 16-wide column stay in registers across the tile.
template <class Codec, int G>
void accumulate_group_g(int d, const float* w, const uint8_t* blocks, size_t stride, int n, float* acc) {
  constexpr int kTile = 32;
  const Codec codec;
  float ws[G][kTile];  // w * per-vector scale for the tile
  for (int t0 = 0; t0 < n; t0 += kTile) {
    const int tn = n - t0 < kTile ? n - t0 : kTile;
    for (int t = 0; t < tn; ++t) {
      const float s = Codec::post_scale(blocks + size_t(t0 + t) * stride);
      for (int h = 0; h < G; ++h) ws[h][t] = w[size_t(h) * size_t(n) + size_t(t0 + t)] * s;
    }
    for (int i = 0; i < d; i += 16) {
      __m512 a[G];
      for (int h = 0; h < G; ++h) a[h] = _mm512_loadu_ps(acc + size_t(h) * d + i);
      const uint8_t* block = blocks + size_t(t0) * stride;
      for (int t = 0; t < tn; ++t, block += stride) {
        const __m512 v = codec.chunk(block, i);
        for (int h = 0; h < G; ++h) a[h] = _mm512_fmadd_ps(_mm512_set1_ps(ws[h][t]), v, a[h]);
      }
      for (int h = 0; h < G; ++h) _mm512_storeu_ps(acc + size_t(h) * d + i, a[h]);
    }
  }
}

// Runtime head count -> template instance, 8 heads at a time. Head dims that are not a multiple of
// 16 go to the AVX2 kernel of the same type.
template <int B>
void score_group_avx512(int d, int g, const float* q, const uint8_t* blocks, size_t stride, int n,
                        float* scores) {
  using Codec = TurboChunks16<B>;
  if (d % 16 != 0) {
    const KvKernels* avx2[] = {&kAvx2Turbo2, &kAvx2Turbo3, &kAvx2Turbo4, &kAvx2Turbo5};
    avx2[B - 2]->score_group(d, g, q, blocks, stride, n, scores);
    return;
  }
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

template <int B>
void accumulate_group_avx512(int d, int g, const float* w, const uint8_t* blocks, size_t stride, int n,
                             float* acc) {
  using Codec = TurboChunks16<B>;
  if (d % 16 != 0) {
    const KvKernels* avx2[] = {&kAvx2Turbo2, &kAvx2Turbo3, &kAvx2Turbo4, &kAvx2Turbo5};
    avx2[B - 2]->accumulate_group(d, g, w, blocks, stride, n, acc);
    return;
  }
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

template <int B>
constexpr KvKernels turbo_avx512() {
  return {nullptr, nullptr, score_group_avx512<B>, accumulate_group_avx512<B>};
}

}  // namespace

const KvKernels kAvx512Turbo2 = turbo_avx512<2>();
const KvKernels kAvx512Turbo3 = turbo_avx512<3>();
const KvKernels kAvx512Turbo4 = turbo_avx512<4>();
const KvKernels kAvx512Turbo5 = turbo_avx512<5>();

}  // namespace kvant::kv_internal
