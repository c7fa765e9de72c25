// backends/cpu/dot_kernels_avx2.cpp — AVX2/FMA/F16C dot kernels (weight row · activation rows) for
// F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q4_1, Q5_1 and Q2_K..Q6_K. Each kernel is a template over
// the number R of activation rows sharing one decoded weight row (R = 1 or 4); the per-row arithmetic
// is the same for both, so the 1x4 results equal the 1x1 ones bit for bit. Integer block sums are
// exact; only the float accumulation order differs from the scalar references in quant/*.cpp.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backends/cpu/dot_kernels.h"
#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/kquant_blocks.h"
#include "core/simd_x86.h"

namespace kvant::avx2 {
namespace {

using kquant::block_q4_K;
using kquant::block_q5_K;
using kquant::block_q6_K;
using kquant::block_q8_K;
using kquant::QK_K;

// ---- helpers -----------------------------------------------------------------------------------

using simd::load32;
inline float hsum(__m256 v) { return simd::hsum256(v); }
inline float half(uint16_t h) { return simd::half_to_float(h); }

// Activation row k of a 1xR call.
template <typename T>
inline const T* act_row(const void* a, size_t stride, int k) {
  return reinterpret_cast<const T*>(static_cast<const uint8_t*>(a) + size_t(k) * stride);
}

// 16 packed bytes -> 32 bytes: bytes 0..15 are the low nibbles, 16..31 the high nibbles.
inline __m256i unpack_nibbles16(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
  return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

// 32 bits (little-endian u32 at p) -> 32 bytes, byte j = 0xFF when bit j is set, else 0.
inline __m256i bits_to_bytes32(const uint8_t* p) {
  uint32_t bits;
  std::memcpy(&bits, p, sizeof(bits));
  // Byte j takes source byte j/8 of the u32, then tests bit j%8 of it.
  const __m256i which_byte = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                               0x0101010101010101, 0x0000000000000000);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)), which_byte);
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// Σ of 4 adjacent u8*s8 products per int32 lane (16-bit pair sums cannot overflow for our ranges).
inline __m256i dot_u8_s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Σ of 4 adjacent s8*s8 products per int32 lane, as |w| * (a·sign(w)). Needs a != -128.
inline __m256i dot_s8_s8(__m256i w, __m256i a) {
  return dot_u8_s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
}

// ---- float formats ------------------------------------------------------------------------------

// Loads 8 elements of a float-like format as f32.
struct F32Loader {
  using T = float;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static float scalar(float x) { return x; }
};
struct F16Loader {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float scalar(uint16_t x) { return fp16_to_fp32(x); }
};
struct BF16Loader {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float scalar(uint16_t x) { return bf16_to_fp32(x); }
};

// One 8-lane FMA accumulator per row over 8-element steps, then hsum, then a scalar tail. This is the
// order of llama.cpp's x86 tinyBLAS (llamafile sgemm) for F32/F16/BF16, so logits match it closely.
template <typename L, int R>
void dot_float(int64_t n, const void* wv, const void* a, size_t stride, float* out) {
  using T = typename L::T;
  const T* w = static_cast<const T*>(wv);
  __m256 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 wi = L::load(w + i);
    for (int k = 0; k < R; ++k) acc[k] = _mm256_fmadd_ps(wi, L::load(act_row<T>(a, stride, k) + i), acc[k]);
  }
  for (int k = 0; k < R; ++k) {
    const T* ak = act_row<T>(a, stride, k);
    float sum = hsum(acc[k]);
    for (int64_t j = i; j < n; ++j) sum += L::scalar(w[j]) * L::scalar(ak[j]);
    out[k] = sum;
  }
}

// ---- legacy 32-element blocks -------------------------------------------------------------------

// Decoders turn one weight block into 32 bytes of quants (signed, or unsigned for the min formats).
struct Q8_0Dec {
  using Block = block_q8_0;
  static __m256i quants(const Block& b) { return load32(b.qs); }
};
struct Q4_0Dec {
  using Block = block_q4_0;
  static __m256i quants(const Block& b) { return _mm256_sub_epi8(unpack_nibbles16(b.qs), _mm256_set1_epi8(8)); }
};
struct Q5_0Dec {
  using Block = block_q5_0;
  // code - 16: the nibble itself when the 5th bit is set, else the nibble with the top 4 bits set.
  static __m256i quants(const Block& b) {
    const __m256i missing_high = _mm256_andnot_si256(bits_to_bytes32(b.qh), _mm256_set1_epi8(char(0xF0)));
    return _mm256_or_si256(unpack_nibbles16(b.qs), missing_high);
  }
};
struct Q4_1Dec {
  using Block = block_q4_1;
  static __m256i quants(const Block& b) { return unpack_nibbles16(b.qs); }
};
struct Q5_1Dec {
  using Block = block_q5_1;
  static __m256i quants(const Block& b) {
    const __m256i high = _mm256_and_si256(bits_to_bytes32(b.qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(unpack_nibbles16(b.qs), high);
  }
};

// Symmetric formats with Q8_0 activations: Σ_b d_w d_a Σ q_w q_a.
template <typename D, int R>
void dot_sym_q8_0(int64_t n, const void* wv, const void* a, size_t stride, float* out) {
  const auto* w = static_cast<const typename D::Block*>(wv);
  __m256 acc[R];
  for (int k = 0; k < R; ++k) acc[k] = _mm256_setzero_ps();
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m256i qw = D::quants(w[b]);
    const __m256i abs_w = _mm256_sign_epi8(qw, qw);
    const float dw = half(w[b].d);
    for (int k = 0; k < R; ++k) {
      const block_q8_0& ab = act_row<block_q8_0>(a, stride, k)[b];
      const __m256i isum = dot_u8_s8(abs_w, _mm256_sign_epi8(load32(ab.qs), qw));
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * half(ab.d)), _mm256_cvtepi32_ps(isum), acc[k]);
    }
  }
  for (int k = 0; k < R; ++k) out[k] = hsum(acc[k]);
}

// Formats with a min and Q8_1 activations: Σ_b d_w d_a Σ q_w q_a + m_w s_a.
template <typename D, int R>
void dot_min_q8_1(int64_t n, const void* wv, const void* a, size_t stride, float* out) {
  const auto* w = static_cast<const typename D::Block*>(wv);
  __m256 acc[R];
  float mins[R];
  for (int k = 0; k < R; ++k) { acc[k] = _mm256_setzero_ps(); mins[k] = 0.0f; }
  for (int64_t b = 0; b < n / 32; ++b) {
    const __m256i qw = D::quants(w[b]);
    const float dw = half(w[b].d), mw = half(w[b].m);
    for (int k = 0; k < R; ++k) {
      const block_q8_1& ab = act_row<block_q8_1>(a, stride, k)[b];
      const __m256i isum = dot_u8_s8(qw, load32(ab.qs));
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * half(ab.d)), _mm256_cvtepi32_ps(isum), acc[k]);
      mins[k] += mw * half(ab.s);
    }
  }
  for (int k = 0; k < R; ++k) out[k] = hsum(acc[k]) + mins[k];
}

// ---- K-quants (Q8_K activations) ----------------------------------------------------------------

// Σ_sub m_sub * (bsums[2 sub] + bsums[2 sub + 1]) for the 8 sub-blocks of 32 of Q4_K/Q5_K.
inline int32_t k4_min_sum(const int mins[8], const block_q8_K& ab) {
  int32_t s = 0;
  for (int sub = 0; sub < 8; ++sub) s += mins[sub] * (ab.bsums[2 * sub] + ab.bsums[2 * sub + 1]);
  return s;
}

// Q4_K and Q5_K: 8 sub-blocks of 32 unsigned quants with 6-bit scales and mins.
// Σ_b d_a (d Σ_sub sc Σ q a − dmin Σ_sub m bsum).
template <bool kFiveBit, int R>
void dot_q45_K(int64_t n, const void* wv, const void* a, size_t stride, float* out) {
  using Block = std::conditional_t<kFiveBit, block_q5_K, block_q4_K>;
  const auto* w = static_cast<const Block*>(wv);
  const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  __m256 acc[R];
  float min_terms[R];
  for (int k = 0; k < R; ++k) { acc[k] = _mm256_setzero_ps(); min_terms[k] = 0.0f; }
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const Block& wb = w[ib];
    int sc[8], mn[8];
    for (int sub = 0; sub < 8; ++sub) kquant::scale_min_k4(sub, wb.scales, &sc[sub], &mn[sub]);
    __m256i sumi[R];
    for (int k = 0; k < R; ++k) sumi[k] = _mm256_setzero_si256();
    [[maybe_unused]] __m256i high_bits;
    if constexpr (kFiveBit) high_bits = load32(wb.qh);
    for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
      const __m256i packed = load32(wb.qs + 32 * j);
      __m256i q_lo = _mm256_and_si256(packed, low4);
      __m256i q_hi = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
      if constexpr (kFiveBit) {  // bit s of qh[l] is the 5th bit of sub-block s
        q_lo = _mm256_or_si256(q_lo, _mm256_slli_epi16(_mm256_and_si256(high_bits, one), 4));
        high_bits = _mm256_srli_epi16(high_bits, 1);
        q_hi = _mm256_or_si256(q_hi, _mm256_slli_epi16(_mm256_and_si256(high_bits, one), 4));
        high_bits = _mm256_srli_epi16(high_bits, 1);
      }
      const __m256i s_lo = _mm256_set1_epi16(int16_t(sc[2 * j])), s_hi = _mm256_set1_epi16(int16_t(sc[2 * j + 1]));
      for (int k = 0; k < R; ++k) {
        const int8_t* aq = act_row<block_q8_K>(a, stride, k)[ib].qs + 64 * j;
        const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(q_lo, load32(aq)), s_lo);
        const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(q_hi, load32(aq + 32)), s_hi);
        sumi[k] = _mm256_add_epi32(sumi[k], _mm256_add_epi32(p_lo, p_hi));
      }
    }
    const float d = half(wb.d), dmin = half(wb.dmin);
    for (int k = 0; k < R; ++k) {
      const block_q8_K& ab = act_row<block_q8_K>(a, stride, k)[ib];
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(ab.d * d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
      min_terms[k] += (ab.d * dmin) * float(k4_min_sum(mn, ab));
    }
  }
  for (int k = 0; k < R; ++k) out[k] = hsum(acc[k]) - min_terms[k];
}

// Formats with 16 sub-blocks of 16 (Q2_K, Q3_K, Q6_K). Quants of element 128h + 32 quarter + l are
// decoded as unsigned codes (value = code − kOffset); sub-block scales come as 16 int16s.
// Per block: d_a (d Σ_sub sc (Σ code a − kOffset bsum) − dmin Σ_sub m bsum), the min term for Q2_K only.
struct Q2KDec {
  using Block = kquant::block_q2_K;
  static constexpr int kOffset = 0;
  static constexpr bool kHasMin = true;
  static void scales(const Block& b, int16_t sc[16], int16_t mins[16]) {
    for (int j = 0; j < 16; ++j) { sc[j] = int16_t(b.scales[j] & 0xF); mins[j] = int16_t(b.scales[j] >> 4); }
  }
  static __m256i codes(const Block& b, int h, int quarter) {
    const __m256i q = load32(b.qs + 32 * h);
    return _mm256_and_si256(_mm256_srli_epi16(q, 2 * quarter), _mm256_set1_epi8(3));
  }
};
struct Q3KDec {
  using Block = kquant::block_q3_K;
  static constexpr int kOffset = 4;  // a set hmask bit adds 4 to the 2 low bits; value = code − 4
  static constexpr bool kHasMin = false;
  static void scales(const Block& b, int16_t sc[16], int16_t*) {
    for (int j = 0; j < 16; ++j) {
      const int low = j < 8 ? (b.scales[j] & 0xF) : (b.scales[j - 8] >> 4);
      const int high = (b.scales[8 + j % 4] >> (2 * (j / 4))) & 3;
      sc[j] = int16_t((low | (high << 4)) - 32);
    }
  }
  static __m256i codes(const Block& b, int h, int quarter) {
    const __m256i low = _mm256_and_si256(_mm256_srli_epi16(load32(b.qs + 32 * h), 2 * quarter), _mm256_set1_epi8(3));
    const __m256i high = _mm256_and_si256(_mm256_srli_epi16(load32(b.hmask), 4 * h + quarter), _mm256_set1_epi8(1));
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 2));
  }
};
struct Q6KDec {
  using Block = block_q6_K;
  static constexpr int kOffset = 32;
  static constexpr bool kHasMin = false;
  static void scales(const Block& b, int16_t sc[16], int16_t*) {
    for (int j = 0; j < 16; ++j) sc[j] = b.scales[j];
  }
  // Low nibble: ql[64h + l + 32 (quarter & 1)], low half for quarter < 2; top 2 bits: qh[32h + l] >> 2 quarter.
  static __m256i codes(const Block& b, int h, int quarter) {
    const __m256i ql = load32(b.ql + 64 * h + 32 * (quarter & 1));
    const __m256i lo = _mm256_and_si256(quarter < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(load32(b.qh + 32 * h), 2 * quarter), _mm256_set1_epi8(3));
    return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  }
};

template <typename Block>
float block_dmin(const Block& b) {
  if constexpr (requires { b.dmin; }) return half(b.dmin);
  else return 0.0f;
}

template <typename D, int R>
void dot_k16(int64_t n, const void* wv, const void* a, size_t stride, float* out) {
  const auto* w = static_cast<const typename D::Block*>(wv);
  __m256 acc[R];
  float min_terms[R];
  for (int k = 0; k < R; ++k) { acc[k] = _mm256_setzero_ps(); min_terms[k] = 0.0f; }
  for (int64_t ib = 0; ib < n / QK_K; ++ib) {
    const auto& wb = w[ib];
    alignas(32) int16_t sc[16], mins[16];
    D::scales(wb, sc, mins);
    const __m256i sc16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(sc));
    __m256i sumi[R];
    for (int k = 0; k < R; ++k) {  // start from −kOffset Σ_sub sc bsum
      const __m256i bsums = load32(act_row<block_q8_K>(a, stride, k)[ib].bsums);
      sumi[k] = _mm256_mullo_epi32(_mm256_madd_epi16(bsums, sc16), _mm256_set1_epi32(-D::kOffset));
    }
    for (int h = 0; h < 2; ++h) {
      for (int quarter = 0; quarter < 4; ++quarter) {
        const __m256i code = D::codes(wb, h, quarter);
        const int sub = 8 * h + 2 * quarter;  // elements l < 16 use sub, l >= 16 use sub + 1
        const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(sc[sub + 1]), _mm_set1_epi16(sc[sub]));
        for (int k = 0; k < R; ++k) {
          const int8_t* aq = act_row<block_q8_K>(a, stride, k)[ib].qs + 128 * h + 32 * quarter;
          sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(_mm256_maddubs_epi16(code, load32(aq)), scale));
        }
      }
    }
    const float d = half(wb.d);
    for (int k = 0; k < R; ++k) {
      const block_q8_K& ab = act_row<block_q8_K>(a, stride, k)[ib];
      acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d * ab.d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
      if constexpr (D::kHasMin) {
        int32_t m = 0;
        for (int j = 0; j < 16; ++j) m += mins[j] * ab.bsums[j];
        min_terms[k] += (ab.d * block_dmin(wb)) * float(m);
      }
    }
  }
  for (int k = 0; k < R; ++k) out[k] = hsum(acc[k]) - min_terms[k];
}

// ---- 1x1 wrappers and the table ---------------------------------------------------------------

template <void (*Kernel)(int64_t, const void*, const void*, size_t, float*)>
float one_row(int64_t n, const void* w, const void* a) {
  float out;
  Kernel(n, w, a, 0, &out);
  return out;
}

struct KernelPair {
  VecDotFn x1;
  VecDotX4Fn x4;
};

template <template <int> class K>
constexpr KernelPair pair_of() {
  return {one_row<K<1>::run>, K<4>::run};
}

template <typename L> struct FloatK { template <int R> struct T { static constexpr auto run = dot_float<L, R>; }; };
template <typename D> struct SymK { template <int R> struct T { static constexpr auto run = dot_sym_q8_0<D, R>; }; };
template <typename D> struct MinK { template <int R> struct T { static constexpr auto run = dot_min_q8_1<D, R>; }; };
template <bool F> struct K45 { template <int R> struct T { static constexpr auto run = dot_q45_K<F, R>; }; };
template <typename D> struct K16 { template <int R> struct T { static constexpr auto run = dot_k16<D, R>; }; };

KernelPair kernels(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return pair_of<FloatK<F32Loader>::T>();
    case GgmlType::F16: return pair_of<FloatK<F16Loader>::T>();
    case GgmlType::BF16: return pair_of<FloatK<BF16Loader>::T>();
    case GgmlType::Q8_0: return pair_of<SymK<Q8_0Dec>::T>();
    case GgmlType::Q4_0: return pair_of<SymK<Q4_0Dec>::T>();
    case GgmlType::Q5_0: return pair_of<SymK<Q5_0Dec>::T>();
    case GgmlType::Q4_1: return pair_of<MinK<Q4_1Dec>::T>();
    case GgmlType::Q5_1: return pair_of<MinK<Q5_1Dec>::T>();
    case GgmlType::Q4_K: return pair_of<K45<false>::T>();
    case GgmlType::Q5_K: return pair_of<K45<true>::T>();
    case GgmlType::Q2_K: return pair_of<K16<Q2KDec>::T>();
    case GgmlType::Q3_K: return pair_of<K16<Q3KDec>::T>();
    case GgmlType::Q6_K: return pair_of<K16<Q6KDec>::T>();
    default: return {nullptr, nullptr};
  }
}

}  // namespace

VecDotFn vec_dot(GgmlType weight_type) { return kernels(weight_type).x1; }
VecDotX4Fn vec_dot_x4(GgmlType weight_type) { return kernels(weight_type).x4; }

}  // namespace kvant::avx2
