// kv/kv_codec_q_avx2.cpp — AVX2 score/accumulate for q8_0 and q4_0 KV blocks (ggml layouts): each
// chunk of 8 is converted int8 -> float and multiplied by its block's fp16 scale.
#include "kv/kv_avx2_common.h"
#include "kv/kv_kernels.h"

namespace kvant::kv_internal {
namespace {

struct Q8_0Chunks {
  template <class Fn>
  static void for_each_chunk(int d, const uint8_t* block, Fn&& fn) {
    for (int i = 0; i < d; i += 32, block += 34) {
      const __m256 scale = _mm256_set1_ps(load_half(block));
      for (int c = 0; c < 4; ++c) {
        const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block + 2 + 8 * c));
        fn(i + 8 * c, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8))));
      }
    }
  }
  static float post_scale(const uint8_t*) { return 1.0f; }
};

struct Q4_0Chunks {
  template <class Fn>
  static void for_each_chunk(int d, const uint8_t* block, Fn&& fn) {
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m128i eight = _mm_set1_epi8(8);
    for (int i = 0; i < d; i += 32, block += 18) {
      const __m256 scale = _mm256_set1_ps(load_half(block));
      const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
      const __m128i lo = _mm_sub_epi8(_mm_and_si128(raw, low4), eight);                      // 0..15
      const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(raw, 4), low4), eight);  // 16..31
      fn(i, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo))));
      fn(i + 8, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)))));
      fn(i + 16, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi))));
      fn(i + 24, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)))));
    }
  }
  static float post_scale(const uint8_t*) { return 1.0f; }
};

}  // namespace

const KvKernels kAvx2Q8_0 = {nullptr, nullptr, score_group_avx2<Q8_0Chunks>, accumulate_group_avx2<Q8_0Chunks>};
const KvKernels kAvx2Q4_0 = {nullptr, nullptr, score_group_avx2<Q4_0Chunks>, accumulate_group_avx2<Q4_0Chunks>};

}  // namespace kvant::kv_internal
