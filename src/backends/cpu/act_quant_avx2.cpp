// backends/cpu/act_quant_avx2.cpp — AVX2 activation conversion to Q8_0 and Q8_K, the same arithmetic
// as the scalar references (max|x| ignoring NaN, one float multiply, round half to even, f16/f32 scale),
// so the bytes are identical; tests/unit/test_act_quant.cpp checks that.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/act_quant.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/kquant_blocks.h"

namespace kvant::avx2 {
namespace {

using kquant::block_q8_K;
using kquant::QK_K;

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// max over n floats (multiple of 8) of |x|; a NaN x is skipped as std::max(amax, fabs(x)) skips it
// (MAXPS returns its second operand when either is NaN, so the running max goes second).
inline float absmax(const float* x, int n) {
  __m256 m = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) m = _mm256_max_ps(abs8(_mm256_loadu_ps(x + i)), m);
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// 32 int8 from four vectors of 8 int32 (values already in range), in element order.
inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);  // lanes interleaved
  const __m256i bytes = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q8_0*>(dst);
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* x = src + 32 * b;
    const float amax = absmax(x, 32);
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(blocks[b].qs), pack32(q[0], q[1], q[2], q[3]));
    blocks[b].d = fp32_to_fp16(amax / 127.0f);
  }
}

void quantize_q8_K(const float* src, void* dst, int64_t n) {
  auto* blocks = static_cast<block_q8_K*>(dst);
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const float* x = src + ib * QK_K;
    block_q8_K& b = blocks[ib];
    const float amax = absmax(x, QK_K);
    if (amax == 0.0f) {
      b.d = 0.0f;
      std::memset(b.qs, 0, sizeof(b.qs));
      std::memset(b.bsums, 0, sizeof(b.bsums));
      continue;
    }
    // The first element of largest magnitude, sign kept (the reference's signed_absmax).
    float max = 0.0f;
    const __m256 target = _mm256_set1_ps(amax);
    for (int i = 0; i < QK_K; i += 8) {
      const int mask = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + i)), target, _CMP_EQ_OQ));
      if (mask != 0) {
        max = x[i + __builtin_ctz(unsigned(mask))];
        break;
      }
    }
    const float iscale = -127.0f / max;
    const __m256 scale = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int i = 0; i < QK_K; i += 32) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) {
        q[k] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(scale, _mm256_loadu_ps(x + i + 8 * k))), top);
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.qs + i), pack32(q[0], q[1], q[2], q[3]));
      // Sums per 16: each pair of vectors is one group.
      for (int g = 0; g < 2; ++g) {
        __m256i s = _mm256_add_epi32(q[2 * g], q[2 * g + 1]);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_hadd_epi32(h, h);
        h = _mm_hadd_epi32(h, h);
        b.bsums[i / 16 + g] = int16_t(_mm_cvtsi128_si32(h));
      }
    }
    b.d = 1.0f / iscale;
  }
}

}  // namespace

ActQuantFn quantize_activations(GgmlType act_type) {
  switch (act_type) {
    case GgmlType::Q8_0: return quantize_q8_0;
    case GgmlType::Q8_K: return quantize_q8_K;
    default: return nullptr;
  }
}

}  // namespace kvant::avx2
