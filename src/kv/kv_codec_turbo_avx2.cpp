// kv/kv_codec_turbo_avx2.cpp — AVX2 score/accumulate for turbo_kv_2b..5b: each group of 8 b-bit
// indices (b bytes) is spread to 8 lanes with a variable shift and looked up in the centroid table
// with vpermps (one table of 8 for b <= 3, two blended for b = 4, four for b = 5).
#include <type_traits>

#include "kv/kv_avx2_common.h"
#include "kv/kv_kernels.h"
#include "kv/lloyd_max.h"

namespace kvant::kv_internal {
namespace {

template <int B>
struct TurboChunks {
  // Centroid table in 8-float registers (entries past 2^B are zero and unused).
  __m256 t[4];
  TurboChunks() {
    const LloydMaxCodebook& book = lloyd_max_codebook(B);
    alignas(32) float padded[32] = {};
    for (int i = 0; i < book.size; ++i) padded[i] = book.centroids[i];
    for (int j = 0; j < 4; ++j) t[j] = _mm256_load_ps(padded + 8 * j);
  }

  // The B bytes of a group as an integer, built from whole loads into registers (a B-byte memcpy
  // into a wider variable goes through the stack and stalls on store forwarding).
  static uint64_t load_bits(const uint8_t* p) {
    if constexpr (B == 2) {
      uint16_t v;
      __builtin_memcpy(&v, p, 2);
      return v;
    } else if constexpr (B == 4) {
      uint32_t v;
      __builtin_memcpy(&v, p, 4);
      return v;
    } else {  // 3 or 5: 2 or 4 bytes plus one
      using Head = std::conditional_t<B == 3, uint16_t, uint32_t>;
      Head head;
      __builtin_memcpy(&head, p, sizeof(Head));
      return uint64_t(head) | (uint64_t(p[sizeof(Head)]) << (8 * sizeof(Head)));
    }
  }

  // 8 indices of one group -> 8 int32 lanes.
  static __m256i unpack(const uint8_t* p) {
    const uint64_t v = load_bits(p);  // little-endian bit stream of 8*B bits
    const __m256i mask = _mm256_set1_epi32((1 << B) - 1);
    if constexpr (B <= 4) {
      const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 4 * B, 5 * B, 6 * B, 7 * B);
      return _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(int(uint32_t(v))), shifts), mask);
    } else {
      const int lo = int(v & ((1u << (4 * B)) - 1u));
      const int hi = int(v >> (4 * B));
      const __m256i shifts = _mm256_setr_epi32(0, B, 2 * B, 3 * B, 0, B, 2 * B, 3 * B);
      return _mm256_and_si256(_mm256_srlv_epi32(_mm256_setr_epi32(lo, lo, lo, lo, hi, hi, hi, hi), shifts),
                              mask);
    }
  }

  __m256 lookup(__m256i idx) const {
    if constexpr (B <= 3) {
      return _mm256_permutevar8x32_ps(t[0], idx);
    } else {
      const __m256 bit3 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 28));  // sign bit = idx bit 3
      const __m256 low = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[0], idx),
                                          _mm256_permutevar8x32_ps(t[1], idx), bit3);
      if constexpr (B == 4) {
        return low;
      } else {
        const __m256 high = _mm256_blendv_ps(_mm256_permutevar8x32_ps(t[2], idx),
                                             _mm256_permutevar8x32_ps(t[3], idx), bit3);
        const __m256 bit4 = _mm256_castsi256_ps(_mm256_slli_epi32(idx, 27));
        return _mm256_blendv_ps(low, high, bit4);
      }
    }
  }

  __m256 chunk(const uint8_t* block, int i) const {
    return lookup(unpack(block + 2 + size_t(i / 8) * B));
  }
  static float post_scale(const uint8_t* block) { return load_half(block); }
};

template <int B>
constexpr KvKernels turbo_avx2() {
  return {nullptr, nullptr, score_group_avx2<TurboChunks<B>>, accumulate_group_avx2<TurboChunks<B>>};
}

}  // namespace

const KvKernels kAvx2Turbo2 = turbo_avx2<2>();
const KvKernels kAvx2Turbo3 = turbo_avx2<3>();
const KvKernels kAvx2Turbo4 = turbo_avx2<4>();
const KvKernels kAvx2Turbo5 = turbo_avx2<5>();

}  // namespace kvant::kv_internal
