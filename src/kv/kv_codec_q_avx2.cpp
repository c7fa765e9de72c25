// kv/kv_codec_q_avx2.cpp — AVX2 score/accumulate for q8_0 and q4_0 KV blocks (ggml layouts): each
// chunk of 8 is converted int8 -> float and multiplied by its block's fp16 scale.
#include "kv/kv_avx2_common.h"
#include "kv/kv_kernels.h"

namespace kvant::kv_internal {
namespace {

struct Q8_0Chunks {
  __m256 chunk(const uint8_t* block, int i) const {
    const uint8_t* b = block + size_t(i / 32) * 34;
    const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + i % 32));
    return _mm256_mul_ps(_mm256_set1_ps(load_half(b)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)));
  }
  static float post_scale(const uint8_t*) { return 1.0f; }
};

struct Q4_0Chunks {
  // Elements 0-15 of a block are the low nibbles of qs[0..15], 16-31 the high nibbles.
  __m256 chunk(const uint8_t* block, int i) const {
    const uint8_t* b = block + size_t(i / 32) * 18;
    const int j = i % 32;
    __m128i raw = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + 2 + j % 16));
    if (j >= 16) raw = _mm_srli_epi16(raw, 4);
    const __m128i q = _mm_sub_epi8(_mm_and_si128(raw, _mm_set1_epi8(0x0F)), _mm_set1_epi8(8));
    return _mm256_mul_ps(_mm256_set1_ps(load_half(b)), _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  }
  static float post_scale(const uint8_t*) { return 1.0f; }
};

}  // namespace

const KvKernels kAvx2Q8_0 = {nullptr, nullptr, score_group_avx2<Q8_0Chunks>, accumulate_group_avx2<Q8_0Chunks>};
const KvKernels kAvx2Q4_0 = {nullptr, nullptr, score_group_avx2<Q4_0Chunks>, accumulate_group_avx2<Q4_0Chunks>};

}  // namespace kvant::kv_internal
