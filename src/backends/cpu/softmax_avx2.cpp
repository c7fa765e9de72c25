// backends/cpu/softmax_avx2.cpp — AVX2 (two-part) softmax: vector max, exp by range reduction
// (x = k·ln2 + r, |r| <= ln2/2) and a degree-6 polynomial for e^r, then scaling by 2^k.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "backends/cpu/softmax.h"
#include "core/simd_x86.h"

namespace kvant {

namespace {

// e^x for x <= 0 (inputs are score - max); below -87 the result flushes to 0.
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 min_x = _mm256_set1_ps(-87.0f);
  const __m256 underflow = _mm256_cmp_ps(x, min_x, _CMP_LT_OQ);
  x = _mm256_max_ps(x, min_x);
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - k·ln2 in two steps (Cody–Waite) for accuracy.
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(0.693145751953125f), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(1.428606765330187045e-06f), r);
  // Taylor/minimax coefficients of e^r on [-ln2/2, ln2/2].
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  const __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  return _mm256_andnot_ps(underflow, result);
}

inline float horizontal_max(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

float max_of(const float* x, int64_t n) {
  int64_t i = 0;
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (; i + 8 <= n; i += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(x + i));
  float max_v = horizontal_max(vmax);
  for (; i < n; ++i) max_v = std::max(max_v, x[i]);
  return max_v;
}

// x[i] = exp(x[i] - max); returns the sum.
float exp_and_sum(float* x, int64_t n, float max_v) {
  const __m256 vm = _mm256_set1_ps(max_v);
  __m256 vsum = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = simd::hsum256(vsum);
  for (; i < n; ++i) sum += x[i] = std::exp(x[i] - max_v);
  return sum;
}

void scale_by(float* x, int64_t n, float f) {
  const __m256 vf = _mm256_set1_ps(f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vf));
  for (; i < n; ++i) x[i] *= f;
}

}  // namespace

void softmax_parts_avx2(float* a, int64_t na, float* b, int64_t nb) {
  const float max_v = std::max(max_of(a, na), max_of(b, nb));
  const float sum = exp_and_sum(a, na, max_v) + exp_and_sum(b, nb, max_v);
  const float inv = 1.0f / sum;
  scale_by(a, na, inv);
  scale_by(b, nb, inv);
}

}  // namespace kvant
