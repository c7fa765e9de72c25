// kv/kv_codec_plain_avx2.cpp — AVX2 score/accumulate for f32 and f16 KV blocks (head_dim % 8 == 0;
// other sizes use the scalar reference).
#include "kv/kv_avx2_common.h"
#include "kv/kv_kernels.h"

namespace kvant::kv_internal {
namespace {

struct F32Chunks {
  __m256 chunk(const uint8_t* block, int i) const {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(block) + i);
  }
  static float post_scale(const uint8_t*) { return 1.0f; }
};

struct F16Chunks {
  __m256 chunk(const uint8_t* block, int i) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 * i)));
  }
  static float post_scale(const uint8_t*) { return 1.0f; }
};

template <class Codec, const KvKernels& Scalar>
void score(int d, int g, const float* q, const uint8_t* blocks, size_t stride, int n, float* scores) {
  if (d % 8 != 0) return Scalar.score_group(d, g, q, blocks, stride, n, scores);
  score_group_avx2<Codec>(d, g, q, blocks, stride, n, scores);
}

template <class Codec, const KvKernels& Scalar>
void accumulate(int d, int g, const float* w, const uint8_t* blocks, size_t stride, int n, float* acc) {
  if (d % 8 != 0) return Scalar.accumulate_group(d, g, w, blocks, stride, n, acc);
  accumulate_group_avx2<Codec>(d, g, w, blocks, stride, n, acc);
}

}  // namespace

const KvKernels kAvx2F32 = {nullptr, nullptr, score<F32Chunks, kScalarF32>, accumulate<F32Chunks, kScalarF32>};
const KvKernels kAvx2F16 = {nullptr, nullptr, score<F16Chunks, kScalarF16>, accumulate<F16Chunks, kScalarF16>};

}  // namespace kvant::kv_internal
