// core/simd_x86.h — small x86 SIMD helpers shared by the AVX2/AVX-512 kernel files; include only from
// *_avx2.cpp / *_avx512.cpp. Internal linkage, so no AVX code can be picked for a non-AVX caller.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace kvant::simd {
namespace {

// Sum of the 8 lanes.
inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// fp16 bits -> float (F16C).
inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

// Unaligned 32-byte load.
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

}  // namespace
}  // namespace kvant::simd
