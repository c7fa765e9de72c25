// backends/cpu/gemm_avx512.cpp — AVX-512 VNNI prefill micro-kernels: MR weight rows x NR activation rows
// per call (4x4 for Q8_0/Q4_0, 1x8 for K-quants), each decoded block reused MR or NR times. Integer
// block sums are exact (vpdpbusd / vpmaddubsw + vpdpwssd); only the float accumulation order differs
// from the scalar references. Formats: Q8_0, Q4_0 (x Q8_0) and Q4_K, Q5_K, Q6_K (x Q8_K).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <type_traits>

#include "backends/cpu/gemm.h"
#include "quant/blocks.h"
#include "quant/kquant_blocks.h"
#include "quant/kquant_common.h"
#include "core/simd_x86.h"

#pragma GCC target("avx512vnni")

namespace kvant::gemm::avx512 {
namespace {

using kquant::block_q4_K;
using kquant::block_q5_K;
using kquant::block_q6_K;
using kquant::block_q8_K;
using kquant::QK_K;

using simd::load32;
inline float hsum(__m256 v) { return simd::hsum256(v); }
inline float half(uint16_t h) { return simd::half_to_float(h); }

// 16 packed bytes -> 32 bytes: bytes 0..15 the low nibbles, 16..31 the high nibbles.
inline __m256i unpack_nibbles16(const uint8_t* qs) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

// ---- Q8_0-activation formats ------------------------------------------------------------------
// Packed activation row: nb block_q8_0, then nb x 8 int32 corrections (lane l: -kOffset * Σ of the 4
// quants of lane l), then nb float scales. Weights decode to unsigned u = q + kOffset, so
// dpbusd(correction, u, a) gives per-lane Σ q a exactly.
struct Q8_0Dec {
  using Block = block_q8_0;
  static constexpr int kOffset = 128;
  static __m256i unsigned_quants(const Block& b) { return _mm256_xor_si256(load32(b.qs), _mm256_set1_epi8(char(0x80))); }
};
struct Q4_0Dec {
  using Block = block_q4_0;
  static constexpr int kOffset = 8;
  static __m256i unsigned_quants(const Block& b) { return unpack_nibbles16(b.qs); }
};

struct Q80Layout {
  int64_t nb;
  explicit Q80Layout(int64_t n_in) : nb(n_in / 32) {}
  size_t corr_offset() const { return size_t(nb) * sizeof(block_q8_0); }
  size_t d_offset() const { return corr_offset() + size_t(nb) * 32; }
  size_t bytes() const { return d_offset() + size_t(nb) * 4; }
};

template <typename D>
void pack_q8_0_extras(int64_t n_in, uint8_t* row) {
  const Q80Layout L(n_in);
  const auto* blocks = reinterpret_cast<const block_q8_0*>(row);
  auto* corr = reinterpret_cast<__m256i*>(row + L.corr_offset());
  float* d = reinterpret_cast<float*>(row + L.d_offset());
  for (int64_t b = 0; b < L.nb; ++b) {
    const __m256i sum4 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), load32(blocks[b].qs));
    _mm256_storeu_si256(corr + b, _mm256_mullo_epi32(sum4, _mm256_set1_epi32(-D::kOffset)));
    d[b] = half(blocks[b].d);
  }
}

template <typename D, int MR, int NR>
void tile_q8_0(int64_t n_in, const uint8_t* w0, size_t w_stride, const uint8_t* a0, size_t a_stride, float* y,
               int64_t ldy) {
  using Block = typename D::Block;
  const Q80Layout L(n_in);
  const Block* w[MR];
  for (int i = 0; i < MR; ++i) w[i] = reinterpret_cast<const Block*>(w0 + i * w_stride);
  const block_q8_0* a[NR];
  const __m256i* corr[NR];
  const float* da[NR];
  for (int k = 0; k < NR; ++k) {
    const uint8_t* row = a0 + k * a_stride;
    a[k] = reinterpret_cast<const block_q8_0*>(row);
    corr[k] = reinterpret_cast<const __m256i*>(row + L.corr_offset());
    da[k] = reinterpret_cast<const float*>(row + L.d_offset());
  }
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int k = 0; k < NR; ++k) acc[i][k] = _mm256_setzero_ps();
  for (int64_t b = 0; b < L.nb; ++b) {
    __m256i wu[MR];
    __m256 dw[MR];
    for (int i = 0; i < MR; ++i) {
      wu[i] = D::unsigned_quants(w[i][b]);
      // Splat before converting, so the d_w d_a products below stay one vector multiply each.
      dw[i] = _mm256_cvtph_ps(_mm_set1_epi16(int16_t(w[i][b].d)));
    }
    for (int k = 0; k < NR; ++k) {
      const __m256i aq = load32(a[k][b].qs);
      const __m256i c = _mm256_loadu_si256(corr[k] + b);
      const __m256 dak = _mm256_broadcast_ss(da[k] + b);
      for (int i = 0; i < MR; ++i) {
        const __m256i isum = _mm256_dpbusd_epi32(c, wu[i], aq);
        acc[i][k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw[i], dak), acc[i][k]);
      }
    }
  }
  for (int k = 0; k < NR; ++k)
    for (int i = 0; i < MR; ++i) y[k * ldy + i] = hsum(acc[i][k]);
}

// ---- K-quants (Q8_K activations) ----------------------------------------------------------------
// Packed activation row: nb block_q8_K, then (Q4_K/Q5_K only) nb x 8 floats d_a * (sum of the 32
// quants of sub-block s), so the min term Σ_sub dmin m_sub d_a bsum_sub is one float FMA per 8 subs.
struct Q8KLayout {
  int64_t nb;
  explicit Q8KLayout(int64_t n_in) : nb(n_in / QK_K) {}
  size_t sums_offset() const { return size_t(nb) * sizeof(block_q8_K); }
};

void pack_q8_K_sums(int64_t n_in, uint8_t* row) {
  const Q8KLayout L(n_in);
  const auto* blocks = reinterpret_cast<const block_q8_K*>(row);
  float* sums = reinterpret_cast<float*>(row + L.sums_offset());
  for (int64_t b = 0; b < L.nb; ++b) {
    for (int s = 0; s < 8; ++s) {
      sums[8 * b + s] = blocks[b].d * float(blocks[b].bsums[2 * s] + blocks[b].bsums[2 * s + 1]);
    }
  }
}


// Q4_K / Q5_K: Σ_b d_a (d Σ_sub sc Σ q a) − Σ_b Σ_sub (dmin m_sub)(d_a bsum_sub).
template <bool kFiveBit, int MR, int NR>
void tile_q45_K(int64_t n_in, const uint8_t* w0, size_t w_stride, const uint8_t* a0, size_t a_stride, float* y,
                int64_t ldy) {
  using Block = std::conditional_t<kFiveBit, block_q5_K, block_q4_K>;
  const Q8KLayout L(n_in);
  const Block* w[MR];
  for (int i = 0; i < MR; ++i) w[i] = reinterpret_cast<const Block*>(w0 + i * w_stride);
  const block_q8_K* a[NR];
  const float* sums[NR];
  for (int k = 0; k < NR; ++k) {
    a[k] = reinterpret_cast<const block_q8_K*>(a0 + k * a_stride);
    sums[k] = reinterpret_cast<const float*>(a0 + k * a_stride + L.sums_offset());
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int k = 0; k < NR; ++k) acc[i][k] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < L.nb; ++ib) {
    alignas(32) int32_t scale_pairs[MR][8];  // sc | sc << 16: vpdpwssd multiplies both int16 halves
    __m256 min_scaled[MR];
    for (int i = 0; i < MR; ++i) {
      uint64_t sc8, mn8;
      kquant::unpack_scales_mins_k4_bytes(w[i][ib].scales, &sc8, &mn8);
      const __m256i sc32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(sc8)));
      _mm256_store_si256(reinterpret_cast<__m256i*>(scale_pairs[i]), _mm256_or_si256(sc32, _mm256_slli_epi32(sc32, 16)));
      min_scaled[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(mn8)))),
                                    _mm256_set1_ps(half(w[i][ib].dmin)));
    }
    __m256i sumi[MR][NR];
    for (int i = 0; i < MR; ++i)
      for (int k = 0; k < NR; ++k) sumi[i][k] = _mm256_setzero_si256();
    [[maybe_unused]] __m256i high_bits[MR];
    if constexpr (kFiveBit) {
      for (int i = 0; i < MR; ++i) high_bits[i] = load32(w[i][ib].qh);
    }
    for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
      __m256i q_lo[MR], q_hi[MR];
      for (int i = 0; i < MR; ++i) {
        const __m256i packed = load32(w[i][ib].qs + 32 * j);
        q_lo[i] = _mm256_and_si256(packed, low4);
        q_hi[i] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
        if constexpr (kFiveBit) {
          const __m256i one = _mm256_set1_epi8(1);
          q_lo[i] = _mm256_or_si256(q_lo[i], _mm256_slli_epi16(_mm256_and_si256(high_bits[i], one), 4));
          high_bits[i] = _mm256_srli_epi16(high_bits[i], 1);
          q_hi[i] = _mm256_or_si256(q_hi[i], _mm256_slli_epi16(_mm256_and_si256(high_bits[i], one), 4));
          high_bits[i] = _mm256_srli_epi16(high_bits[i], 1);
        }
      }
      for (int k = 0; k < NR; ++k) {
        const __m256i a_lo = load32(a[k][ib].qs + 64 * j), a_hi = load32(a[k][ib].qs + 64 * j + 32);
        for (int i = 0; i < MR; ++i) {
          sumi[i][k] = _mm256_dpwssd_epi32(sumi[i][k], _mm256_maddubs_epi16(q_lo[i], a_lo),
                                           _mm256_set1_epi32(scale_pairs[i][2 * j]));
          sumi[i][k] = _mm256_dpwssd_epi32(sumi[i][k], _mm256_maddubs_epi16(q_hi[i], a_hi),
                                           _mm256_set1_epi32(scale_pairs[i][2 * j + 1]));
        }
      }
    }
    for (int k = 0; k < NR; ++k) {
      const float dak = a[k][ib].d;
      const __m256 sums_k = _mm256_loadu_ps(sums[k] + 8 * ib);
      for (int i = 0; i < MR; ++i) {
        acc[i][k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[i][k]), _mm256_set1_ps(half(w[i][ib].d) * dak), acc[i][k]);
        acc[i][k] = _mm256_fnmadd_ps(min_scaled[i], sums_k, acc[i][k]);
      }
    }
  }
  for (int k = 0; k < NR; ++k)
    for (int i = 0; i < MR; ++i) y[k * ldy + i] = hsum(acc[i][k]);
}

// Q6_K: Σ_b d d_a Σ_sub sc (Σ code a − 32 bsum), codes 0..63 (6 bits), 16 sub-blocks of 16.
inline __m256i q6_codes(const block_q6_K& b, int h, int quarter) {
  const __m256i ql = load32(b.ql + 64 * h + 32 * (quarter & 1));
  const __m256i lo = _mm256_and_si256(quarter < 2 ? ql : _mm256_srli_epi16(ql, 4), _mm256_set1_epi8(0x0F));
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(load32(b.qh + 32 * h), 2 * quarter), _mm256_set1_epi8(3));
  return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
}

template <int MR, int NR>
void tile_q6_K(int64_t n_in, const uint8_t* w0, size_t w_stride, const uint8_t* a0, size_t a_stride, float* y,
               int64_t ldy) {
  const Q8KLayout L(n_in);
  const block_q6_K* w[MR];
  for (int i = 0; i < MR; ++i) w[i] = reinterpret_cast<const block_q6_K*>(w0 + i * w_stride);
  const block_q8_K* a[NR];
  for (int k = 0; k < NR; ++k) a[k] = reinterpret_cast<const block_q8_K*>(a0 + k * a_stride);
  __m256 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int k = 0; k < NR; ++k) acc[i][k] = _mm256_setzero_ps();
  for (int64_t ib = 0; ib < L.nb; ++ib) {
    __m256i scale_vec[MR][8];  // per (h, quarter): int16 sc[sub] in the low 128 bits, sc[sub + 1] high
    __m256i sumi[MR][NR];
    for (int i = 0; i < MR; ++i) {
      const int8_t* sc = w[i][ib].scales;
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
      for (int s = 0; s < 8; ++s) {
        const __m256i pick = _mm256_set_m128i(_mm_set1_epi16(int16_t(2 * s + 1)), _mm_set1_epi16(int16_t(2 * s)));
        scale_vec[i][s] = _mm256_permutexvar_epi16(pick, sc16);
      }
      const __m256i neg32_sc = _mm256_mullo_epi16(sc16, _mm256_set1_epi16(-32));
      for (int k = 0; k < NR; ++k) sumi[i][k] = _mm256_madd_epi16(load32(a[k][ib].bsums), neg32_sc);
    }
    for (int h = 0; h < 2; ++h) {
      for (int quarter = 0; quarter < 4; ++quarter) {
        __m256i code[MR];
        for (int i = 0; i < MR; ++i) code[i] = q6_codes(w[i][ib], h, quarter);
        for (int k = 0; k < NR; ++k) {
          const __m256i aq = load32(a[k][ib].qs + 128 * h + 32 * quarter);
          for (int i = 0; i < MR; ++i) {
            sumi[i][k] = _mm256_dpwssd_epi32(sumi[i][k], _mm256_maddubs_epi16(code[i], aq), scale_vec[i][4 * h + quarter]);
          }
        }
      }
    }
    for (int k = 0; k < NR; ++k) {
      const float dak = a[k][ib].d;
      for (int i = 0; i < MR; ++i) {
        acc[i][k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[i][k]), _mm256_set1_ps(half(w[i][ib].d) * dak), acc[i][k]);
      }
    }
  }
  for (int k = 0; k < NR; ++k)
    for (int i = 0; i < MR; ++i) y[k * ldy + i] = hsum(acc[i][k]);
}

// ---- dispatch -----------------------------------------------------------------------------------

using TileFn = void (*)(int64_t, const uint8_t*, size_t, const uint8_t*, size_t, float*, int64_t);

// Micro-kernels of one format for every edge shape: fn[mr - 1][nr - 1], mr <= max_mr, nr <= max_nr.
// Q8_0-family tiles are 4x4 (no block sums, so 16 float sums + 4 weight vectors fit the registers).
// K-quant tiles keep int32 block sums live next to the float sums, so they take one weight row and
// 8 activation rows: the weight decode (nibbles, 6-bit scales) is shared by 8 dots and nothing spills.
struct TileSet {
  int max_mr = 0, max_nr = 0;
  TileFn fn[4][8] = {};
};

template <template <int, int> class K, int MR, int... NR>
void fill_row(TileSet& t, std::integer_sequence<int, NR...>) {
  ((t.fn[MR - 1][NR] = K<MR, NR + 1>::fn), ...);
}

template <typename D> struct Q80K { template <int MR, int NR> struct T { static constexpr TileFn fn = tile_q8_0<D, MR, NR>; }; };
template <bool F> struct Q45K { template <int MR, int NR> struct T { static constexpr TileFn fn = tile_q45_K<F, MR, NR>; }; };
template <int MR, int NR> struct Q6K { static constexpr TileFn fn = tile_q6_K<MR, NR>; };

template <template <int, int> class K>
const TileSet& square_set() {  // 4x4
  static const TileSet set = [] {
    TileSet t;
    t.max_mr = 4;
    t.max_nr = 4;
    fill_row<K, 1>(t, std::make_integer_sequence<int, 4>{});
    fill_row<K, 2>(t, std::make_integer_sequence<int, 4>{});
    fill_row<K, 3>(t, std::make_integer_sequence<int, 4>{});
    fill_row<K, 4>(t, std::make_integer_sequence<int, 4>{});
    return t;
  }();
  return set;
}

template <template <int, int> class K>
const TileSet& wide_set() {  // 1x8
  static const TileSet set = [] {
    TileSet t;
    t.max_mr = 1;
    t.max_nr = 8;
    fill_row<K, 1>(t, std::make_integer_sequence<int, 8>{});
    return t;
  }();
  return set;
}

const TileSet* tiles(GgmlType type) {
  switch (type) {
    case GgmlType::Q8_0: return &square_set<Q80K<Q8_0Dec>::T>();
    case GgmlType::Q4_0: return &square_set<Q80K<Q4_0Dec>::T>();
    case GgmlType::Q4_K: return &wide_set<Q45K<false>::T>();
    case GgmlType::Q5_K: return &wide_set<Q45K<true>::T>();
    case GgmlType::Q6_K: return &wide_set<Q6K>();
    default: return nullptr;
  }
}

}  // namespace

bool has_kernel(GgmlType weight_type) { return tiles(weight_type) != nullptr; }

size_t packed_row_bytes(GgmlType weight_type, int64_t n_in) {
  switch (weight_type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0: return Q80Layout(n_in).bytes();
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: return Q8KLayout(n_in).sums_offset() + size_t(n_in / QK_K) * 8 * sizeof(float);
    case GgmlType::Q6_K: return Q8KLayout(n_in).sums_offset();
    default: return 0;
  }
}

void pack_extras(GgmlType weight_type, int64_t n_in, uint8_t* row) {
  switch (weight_type) {
    case GgmlType::Q8_0: pack_q8_0_extras<Q8_0Dec>(n_in, row); break;
    case GgmlType::Q4_0: pack_q8_0_extras<Q4_0Dec>(n_in, row); break;
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: pack_q8_K_sums(n_in, row); break;
    default: break;
  }
}

void compute_tile(GgmlType weight_type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, const uint8_t* act,
                  size_t act_row_bytes, int r0, int r1, int64_t j0, int64_t j1, float* y, int64_t ldy) {
  const TileSet& t = *tiles(weight_type);
  // Activation groups outer: a group of max_nr rows stays in L1 while the tile's weight rows pass.
  for (int r = r0; r < r1; r += t.max_nr) {
    const int nr = std::min(t.max_nr, r1 - r);
    for (int64_t j = j0; j < j1; j += t.max_mr) {
      const int mr = int(std::min<int64_t>(t.max_mr, j1 - j));
      t.fn[mr - 1][nr - 1](n_in, w + size_t(j) * w_row_bytes, w_row_bytes, act + size_t(r) * act_row_bytes,
                           act_row_bytes, y + size_t(r) * ldy + j, ldy);
    }
  }
}

}  // namespace kvant::gemm::avx512
