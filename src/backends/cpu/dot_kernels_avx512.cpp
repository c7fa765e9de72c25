// backends/cpu/dot_kernels_avx512.cpp — AVX-512 + VNNI decode dot kernels (one weight row · one
// activation row): Q4_K and Q6_K x Q8_K on 512-bit vectors, Q8_0 and Q4_0 x Q8_0 on 256-bit vpdpbusd.
// Integer block sums are exact; only the float accumulation order differs from the scalar references.
// GCC 12's own _mm512_undefined_* (self-initialised) trips -Wuninitialized when inlined; not our code.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/dot_kernels.h"
#include "core/simd_x86.h"
#include "quant/blocks.h"
#include "quant/kquant_blocks.h"
#include "quant/kquant_common.h"

// CMake gives *_avx512.cpp files AVX-512 F/BW/VL/DQ but not VNNI; callers check VNNI at run time.
#pragma GCC target("avx512vnni")

namespace kvant::avx512 {
namespace {

using kquant::block_q4_K;
using kquant::block_q6_K;
using kquant::block_q8_K;
using kquant::QK_K;

using simd::load32;
inline float hsum(__m256 v) { return simd::hsum256(v); }
inline float half(uint16_t h) { return simd::half_to_float(h); }
inline __m512i load64(const void* p) { return _mm512_loadu_si512(p); }
// The 32 bytes at p in both 256-bit halves.
inline __m512i broadcast32(const void* p) { return _mm512_broadcast_i64x4(load32(p)); }

// Bitwise select: bits of `if_set` where mask is 1, bits of `if_clear` elsewhere (one vpternlogd).
inline __m512i select_bits(__m512i mask, __m512i if_set, __m512i if_clear) {
  constexpr int kA = 0xF0, kB = 0xCC, kC = 0xAA;  // truth-table columns of the three operands
  return _mm512_ternarylogic_epi32(mask, if_set, if_clear, (kA & kB) | (~kA & kC & 0xFF));
}

// ---- Q4_K ---------------------------------------------------------------------------------------

// vpshufb controls spreading 8 int16 scales (one 128-bit lane, repeated in all four) for step j: the
// low 256 bits get scale 2j in every int16, the high 256 bits scale 2j + 1.
inline __m512i q4k_scale_spread(int j) {
  const int lo = 4 * j, hi = 4 * j + 2;  // byte offsets of int16 scales 2j and 2j + 1
  const __m128i pick_lo = _mm_set1_epi16(int16_t(lo | ((lo + 1) << 8)));
  const __m128i pick_hi = _mm_set1_epi16(int16_t(hi | ((hi + 1) << 8)));
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set_m128i(pick_lo, pick_lo)),
                            _mm256_set_m128i(pick_hi, pick_hi), 1);
}

// Σ_b d_a (d Σ_sub sc Σ q a − dmin Σ_sub m (bsum_2sub + bsum_2sub+1)). Step j covers elements
// 64j..64j+63: the 32 packed bytes at qs + 32j give sub-block 2j (low nibbles) and 2j+1 (high), so one
// broadcast, a shift of the high half and a mask line the quants up with 64 contiguous activations.
float dot_q4_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q4_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i spread[4] = {q4k_scale_spread(0), q4k_scale_spread(1), q4k_scale_spread(2), q4k_scale_spread(3)};
  __m512 acc = _mm512_setzero_ps();
  __m256 acc_min = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const block_q4_K& wb = w[ib];
    const block_q8_K& ab = a[ib];
    uint64_t sc8, mn8;
    kquant::unpack_scales_mins_k4_bytes(wb.scales, &sc8, &mn8);
    // Min term: m_s * (bsum 2s + bsum 2s+1) from mins duplicated into int16 pairs.
    const __m128i mn = _mm_cvtsi64_si128(int64_t(mn8));
    const __m256i min_prod = _mm256_madd_epi16(load32(ab.bsums), _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn, mn)));
    acc_min = _mm256_fmadd_ps(_mm256_cvtepi32_ps(min_prod), _mm256_set1_ps(ab.d * half(wb.dmin)), acc_min);
    const __m512i sc16 = _mm512_broadcast_i32x4(_mm_cvtepu8_epi16(_mm_cvtsi64_si128(int64_t(sc8))));
    __m512i sumi = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      const __m512i packed = broadcast32(wb.qs + 32 * j);
      const __m512i q = _mm512_and_si512(_mm512_mask_srli_epi16(packed, 0xFFFF0000u, packed, 4), low4);
      const __m512i scale = _mm512_shuffle_epi8(sc16, spread[j]);
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(q, load64(ab.qs + 64 * j)), scale);
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(ab.d * half(wb.d)), acc);
  }
  return _mm512_reduce_add_ps(acc) - hsum(acc_min);
}

// ---- Q6_K ---------------------------------------------------------------------------------------

// Σ_b d d_a Σ_sub sc (Σ code a − 32 bsum), codes 0..63. Step m = 2h + pair covers elements
// 128h + 64 pair + 0..63: low 4 bits from the 64 bytes ql[64h..] (low nibbles for pair 0, high for
// pair 1), top 2 bits from qh[32h + l] >> (4 pair + 2 quarter), quarter = the 256-bit half.
float dot_q6_K(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const block_q6_K*>(wv);
  const auto* a = static_cast<const block_q8_K*>(av);
  const __m512i low4 = _mm512_set1_epi8(0x0F), bits45 = _mm512_set1_epi8(0x30);
  // Shifts moving the wanted 2 qh bits to bits 4..5: pair 0 left by 4 | 2, pair 1 right by 0 | 2.
  const __m512i shl_pair0 = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
  const __m512i shr_pair1 = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
  // vpermw indices: int16 lane i of step m takes scale 4m + i / 8.
  __m512i spread[4];
  for (int m = 0; m < 4; ++m) {
    alignas(64) int16_t idx[32];
    for (int i = 0; i < 32; ++i) idx[i] = int16_t(4 * m + i / 8);
    spread[m] = _mm512_load_si512(idx);
  }
  __m512 acc = _mm512_setzero_ps();
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const block_q6_K& wb = w[ib];
    const block_q8_K& ab = a[ib];
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales)));
    const __m256i sc_bsum = _mm256_madd_epi16(load32(ab.bsums), sc16);
    __m512i sumi = _mm512_zextsi256_si512(_mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(sc_bsum, 5)));
    const __m512i sc512 = _mm512_castsi256_si512(sc16);
    for (int h = 0; h < 2; ++h) {
      const __m512i ql = load64(wb.ql + 64 * h);
      const __m512i qh = broadcast32(wb.qh + 32 * h);
      const __m512i code0 = select_bits(low4, ql, _mm512_and_si512(_mm512_sllv_epi16(qh, shl_pair0), bits45));
      const __m512i code1 = select_bits(low4, _mm512_srli_epi16(ql, 4),
                                        _mm512_and_si512(_mm512_srlv_epi16(qh, shr_pair1), bits45));
      const int8_t* aq = ab.qs + 128 * h;
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(code0, load64(aq)),
                                 _mm512_permutexvar_epi16(spread[2 * h], sc512));
      sumi = _mm512_dpwssd_epi32(sumi, _mm512_maddubs_epi16(code1, load64(aq + 64)),
                                 _mm512_permutexvar_epi16(spread[2 * h + 1], sc512));
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(ab.d * half(wb.d)), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

// ---- Q8_0 / Q4_0 (Q8_0 activations), 256-bit VNNI --------------------------------------------------

inline __m256i q8_0_quants(const block_q8_0& b) { return load32(b.qs); }
inline __m256i q4_0_quants(const block_q4_0& b) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
  const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
  return _mm256_sub_epi8(nib, _mm256_set1_epi8(8));
}

// Σ_b d_w d_a Σ q_w q_a, the integer sum as vpdpbusd(|q_w|, q_a · sign(q_w)) (q_a != -128). Two
// blocks per 512-bit step (block b in the low half, b + 1 in the high half), a last odd block on 256.
template <typename Block, __m256i (*Quants)(const Block&)>
float dot_sym_q8_0(int64_t n, const void* wv, const void* av) {
  const auto* w = static_cast<const Block*>(wv);
  const auto* a = static_cast<const block_q8_0*>(av);
  const int64_t nb = n / 32;
  const __m512i zero = _mm512_setzero_si512();
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    const __m512i qw = _mm512_inserti64x4(_mm512_castsi256_si512(Quants(w[b])), Quants(w[b + 1]), 1);
    const __m512i qa = _mm512_inserti64x4(_mm512_castsi256_si512(load32(a[b].qs)), load32(a[b + 1].qs), 1);
    const __m512i qa_signed = _mm512_mask_sub_epi8(qa, _mm512_movepi8_mask(qw), zero, qa);
    const __m512i isum = _mm512_dpbusd_epi32(zero, _mm512_abs_epi8(qw), qa_signed);
    const __m512 scale = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_set1_ps(half(w[b].d) * half(a[b].d))),
                                            _mm256_set1_ps(half(w[b + 1].d) * half(a[b + 1].d)), 1);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), scale, acc);
  }
  __m256 tail = _mm256_setzero_ps();
  if (b < nb) {
    const __m256i qw = Quants(w[b]);
    const __m256i isum = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(qw, qw),
                                             _mm256_sign_epi8(load32(a[b].qs), qw));
    tail = _mm256_mul_ps(_mm256_set1_ps(half(w[b].d) * half(a[b].d)), _mm256_cvtepi32_ps(isum));
  }
  return _mm512_reduce_add_ps(acc) + hsum(tail);
}

}  // namespace

VecDotFn vec_dot(GgmlType weight_type) {
  switch (weight_type) {
    case GgmlType::Q4_K: return dot_q4_K;
    case GgmlType::Q6_K: return dot_q6_K;
    case GgmlType::Q8_0: return dot_sym_q8_0<block_q8_0, q8_0_quants>;
    case GgmlType::Q4_0: return dot_sym_q8_0<block_q4_0, q4_0_quants>;
    default: return nullptr;
  }
}

}  // namespace kvant::avx512
