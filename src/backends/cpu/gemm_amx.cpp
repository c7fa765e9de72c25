// backends/cpu/gemm_amx.cpp — Intel AMX-INT8 prefill GEMM: 16 weight rows decoded to int8 groups
// (one scale, optionally one min, per group of 32 or 16) times 16 activation rows quantised to int8 per
// 32, one TDPBSSD per group, the group's int32 tile scaled into float accumulators with AVX-512.
#include "backends/cpu/gemm.h"

#if defined(__x86_64__) && defined(KVANT_HAVE_AMX)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "quant/blocks.h"
#include "quant/kquant_blocks.h"
#include "quant/kquant_common.h"

#pragma GCC target("amx-tile,amx-int8,avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")
// GCC 12's AVX-512 headers build their "undefined" vectors by self-initialisation, which -O3 reports as
// maybe-uninitialized once these intrinsics are inlined here; the warning is about the headers.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace kvant::gemm::amx {
namespace {

using kquant::block_q4_K;
using kquant::block_q5_K;
using kquant::block_q6_K;
using kquant::QK_K;

constexpr int kTile = 16;      // rows of a weight tile and of an activation tile
constexpr int kActBlock = 32;  // activation quantisation block

// Tile registers: A = weights (16 rows x G bytes), B = activations in VNNI order (G/4 rows x 64 bytes),
// C = int32 16 x 16. Two sets, so the next group's product overlaps the previous group's scaling. GCC's
// tile intrinsics paste the register number into the assembly text, so the kernel spells them as
// literals: A0 = 0, B0 = 1, C0 = 2, A1 = 3, B1 = 4, C1 = 5.
enum : int { kA0 = 0, kB0 = 1, kC0 = 2, kA1 = 3, kB1 = 4, kC1 = 5 };

struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// Group length (elements sharing one weight scale) and whether the format has a per-group min.
struct FormatShape {
  int group = 0;
  bool has_min = false;
};

FormatShape shape_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0: return {32, false};
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: return {32, true};
    case GgmlType::Q6_K: return {16, false};
    default: return {};
  }
}

void configure_tiles(int group) {
  TileConfig cfg;
  for (int a : {kA0, kA1}) { cfg.rows[a] = kTile; cfg.colsb[a] = uint16_t(group); }
  for (int b : {kB0, kB1}) { cfg.rows[b] = uint8_t(group / 4); cfg.colsb[b] = 64; }
  for (int c : {kC0, kC1}) { cfg.rows[c] = kTile; cfg.colsb[c] = 64; }
  _tile_loadconfig(&cfg);
}

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// ---- activation packing -------------------------------------------------------------------------
// One row tile (16 rows) = [int8 B tiles: groups x (G/4 rows x 16 rows x 4 bytes)]
//                          [f32 scales: blocks of 32 x 16 rows]  [f32 d * Σq: groups x 16 rows, has_min only]
struct ActLayout {
  int64_t n_in;
  FormatShape s;
  int64_t groups() const { return n_in / s.group; }
  int64_t blocks() const { return n_in / kActBlock; }
  size_t quant_bytes() const { return size_t(n_in) * kTile; }
  size_t scale_offset() const { return quant_bytes(); }
  size_t sum_offset() const { return scale_offset() + size_t(blocks()) * kTile * sizeof(float); }
  size_t tile_bytes() const { return sum_offset() + (s.has_min ? size_t(groups()) * kTile * sizeof(float) : 0); }
};

// Quantises 32 floats to int8 with scale max|x| / 127 (round to nearest); returns the scale.
inline float quantize_block(const float* x, int8_t* q) {
  const __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
  const __m512 amax = _mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi));
  const float m = _mm512_reduce_max_ps(amax);
  const float d = m / 127.0f;
  const __m512 inv = _mm512_set1_ps(d != 0.0f ? 1.0f / d : 0.0f);
  const __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, inv));
  const __m512i qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, inv));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(qlo));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(qhi));
  return d;
}

// ---- weight decoding ----------------------------------------------------------------------------
// 16 weight rows as int8 (row-major, n_in per row) plus per group and row: scale, and min (has_min).
// Element k of row j is scale[g][j] * q[j][k] - min[g][j], g = k / G.
struct WeightTile {
  std::vector<int8_t> q;
  std::vector<float> scale, min;  // [group][16]
  void resize(int64_t n_in, int64_t groups) {
    q.resize(size_t(n_in) * kTile);
    scale.resize(size_t(groups) * kTile);
    min.resize(size_t(groups) * kTile);
  }
};

inline __m256i nibbles_low(__m256i packed) { return _mm256_and_si256(packed, _mm256_set1_epi8(0x0F)); }
inline __m256i nibbles_high(__m256i packed) {
  return _mm256_and_si256(_mm256_srli_epi16(packed, 4), _mm256_set1_epi8(0x0F));
}
inline void store32(int8_t* dst, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v); }
inline __m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

void decode_row_q8_0(const uint8_t* row, int64_t n_in, int8_t* q, float* scale, float*) {
  const auto* b = reinterpret_cast<const block_q8_0*>(row);
  for (int64_t i = 0; i < n_in / 32; ++i) {
    store32(q + 32 * i, load32(b[i].qs));
    scale[i * kTile] = half(b[i].d);
  }
}

void decode_row_q4_0(const uint8_t* row, int64_t n_in, int8_t* q, float* scale, float*) {
  const auto* b = reinterpret_cast<const block_q4_0*>(row);
  for (int64_t i = 0; i < n_in / 32; ++i) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
    const __m256i u = nibbles_low(_mm256_set_m128i(_mm_srli_epi16(t, 4), t));  // 0..15: low nibbles first
    store32(q + 32 * i, _mm256_sub_epi8(u, _mm256_set1_epi8(8)));
    scale[i * kTile] = half(b[i].d);
  }
}

template <bool kFiveBit>
void decode_row_q45_K(const uint8_t* row, int64_t n_in, int8_t* q, float* scale, float* min) {
  using Block = std::conditional_t<kFiveBit, block_q5_K, block_q4_K>;
  const auto* b = reinterpret_cast<const Block*>(row);
  for (int64_t i = 0; i < n_in / QK_K; ++i) {
    uint64_t sc8, mn8;
    kquant::unpack_scales_mins_k4_bytes(b[i].scales, &sc8, &mn8);
    const float d = half(b[i].d), dmin = half(b[i].dmin);
    [[maybe_unused]] __m256i high_bits;
    if constexpr (kFiveBit) high_bits = load32(b[i].qh);
    for (int j = 0; j < 4; ++j) {  // sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
      const __m256i packed = load32(b[i].qs + 32 * j);
      __m256i lo = nibbles_low(packed), hi = nibbles_high(packed);
      if constexpr (kFiveBit) {
        const __m256i one = _mm256_set1_epi8(1);
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(high_bits, one), 4));
        high_bits = _mm256_srli_epi16(high_bits, 1);
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(high_bits, one), 4));
        high_bits = _mm256_srli_epi16(high_bits, 1);
      }
      int8_t* out = q + i * QK_K + 64 * j;
      store32(out, lo);
      store32(out + 32, hi);
      for (int h = 0; h < 2; ++h) {
        const int s = 2 * j + h;
        const int64_t g = i * 8 + s;
        scale[g * kTile] = d * float((sc8 >> (8 * s)) & 0xFF);
        min[g * kTile] = dmin * float((mn8 >> (8 * s)) & 0xFF);
      }
    }
  }
}

void decode_row_q6_K(const uint8_t* row, int64_t n_in, int8_t* q, float* scale, float*) {
  const auto* b = reinterpret_cast<const block_q6_K*>(row);
  const __m256i low2 = _mm256_set1_epi8(3), bias = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < n_in / QK_K; ++i) {
    const float d = half(b[i].d);
    for (int h = 0; h < 2; ++h) {  // two halves of 128: ql 64 bytes, qh 32 bytes each
      const uint8_t* ql = b[i].ql + 64 * h;
      const __m256i qh = load32(b[i].qh + 32 * h);
      const __m256i ql0 = load32(ql), ql1 = load32(ql + 32);
      const auto high = [&](int shift) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), low2), 4);
      };
      int8_t* out = q + i * QK_K + 128 * h;
      store32(out, _mm256_sub_epi8(_mm256_or_si256(nibbles_low(ql0), high(0)), bias));
      store32(out + 32, _mm256_sub_epi8(_mm256_or_si256(nibbles_low(ql1), high(2)), bias));
      store32(out + 64, _mm256_sub_epi8(_mm256_or_si256(nibbles_high(ql0), high(4)), bias));
      store32(out + 96, _mm256_sub_epi8(_mm256_or_si256(nibbles_high(ql1), high(6)), bias));
    }
    for (int s = 0; s < 16; ++s) scale[(i * 16 + s) * kTile] = d * float(b[i].scales[s]);
  }
}

using DecodeRowFn = void (*)(const uint8_t*, int64_t, int8_t*, float*, float*);

DecodeRowFn decoder_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return decode_row_q8_0;
    case GgmlType::Q4_0: return decode_row_q4_0;
    case GgmlType::Q4_K: return decode_row_q45_K<false>;
    case GgmlType::Q5_K: return decode_row_q45_K<true>;
    case GgmlType::Q6_K: return decode_row_q6_K;
    default: return nullptr;
  }
}

// Weight rows [j0, j0 + 16) into wt; rows past n_out are zero.
void decode_weight_tile(GgmlType type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, int64_t n_out, int64_t j0,
                        const FormatShape& s, WeightTile& wt) {
  const int64_t groups = n_in / s.group;
  wt.resize(n_in, groups);
  const DecodeRowFn decode = decoder_of(type);
  for (int j = 0; j < kTile; ++j) {
    int8_t* q = wt.q.data() + size_t(j) * n_in;
    if (j0 + j < n_out) {
      decode(w + size_t(j0 + j) * w_row_bytes, n_in, q, wt.scale.data() + j, wt.min.data() + j);
    } else {
      std::memset(q, 0, size_t(n_in));
      for (int64_t g = 0; g < groups; ++g) wt.scale[g * kTile + j] = wt.min[g * kTile + j] = 0.0f;
    }
  }
}

// acc[j] (16 activation rows of weight row j) += group g's int32 tile c[j][r] * scale * d_a (- min * sums).
template <bool kHasMin>
inline void scale_group(const int32_t (*c)[kTile], const WeightTile& wt, int64_t g, const float* act_scale,
                        const float* act_sum, __m512* acc) {
  const __m512 da = _mm512_loadu_ps(act_scale);
  [[maybe_unused]] __m512 sums;
  if constexpr (kHasMin) sums = _mm512_loadu_ps(act_sum);
  const float* ws = wt.scale.data() + g * kTile;
  [[maybe_unused]] const float* wm = wt.min.data() + g * kTile;
#pragma GCC unroll 16
  for (int j = 0; j < kTile; ++j) {
    const __m512 prod = _mm512_cvtepi32_ps(_mm512_load_si512(c[j]));
    acc[j] = _mm512_fmadd_ps(prod, _mm512_mul_ps(da, _mm512_set1_ps(ws[j])), acc[j]);
    if constexpr (kHasMin) acc[j] = _mm512_fnmadd_ps(_mm512_set1_ps(wm[j]), sums, acc[j]);
  }
}

// One weight tile x one activation tile: out[j][r] = y of activation row r, weight row j.
template <bool kHasMin>
void multiply_tiles(const WeightTile& wt, const uint8_t* act_tile, const ActLayout& L, float (*out)[kTile]) {
  const int G = L.s.group;
  const int64_t groups = L.groups(), n_in = L.n_in;
  const size_t b_bytes = size_t(G) * kTile;
  const float* act_scale = reinterpret_cast<const float*>(act_tile + L.scale_offset());
  const float* act_sum = reinterpret_cast<const float*>(act_tile + L.sum_offset());
  const int groups_per_block = kActBlock / G;
  alignas(64) int32_t c[2][kTile][kTile];
  __m512 acc[kTile];
  for (auto& a : acc) a = _mm512_setzero_ps();
  const auto scale = [&](int which, int64_t g) {
    scale_group<kHasMin>(c[which], wt, g, act_scale + (g / groups_per_block) * kTile, act_sum + g * kTile, acc);
  };
  int64_t g = 0;
  for (; g + 2 <= groups; g += 2) {
    _tile_zero(2);
    _tile_zero(5);
    _tile_loadd(0, wt.q.data() + g * G, n_in);
    _tile_loadd(1, act_tile + g * b_bytes, 64);
    _tile_dpbssd(2, 0, 1);
    _tile_loadd(3, wt.q.data() + (g + 1) * G, n_in);
    _tile_loadd(4, act_tile + (g + 1) * b_bytes, 64);
    _tile_dpbssd(5, 3, 4);
    _tile_stored(2, c[0], 64);
    _tile_stored(5, c[1], 64);
    scale(0, g);
    scale(1, g + 1);
  }
  if (g < groups) {
    _tile_zero(2);
    _tile_loadd(0, wt.q.data() + g * G, n_in);
    _tile_loadd(1, act_tile + g * b_bytes, 64);
    _tile_dpbssd(2, 0, 1);
    _tile_stored(2, c[0], 64);
    scale(0, g);
  }
  for (int j = 0; j < kTile; ++j) _mm512_store_ps(out[j], acc[j]);
}

}  // namespace

bool has_kernel(GgmlType weight_type) { return decoder_of(weight_type) != nullptr; }

size_t packed_bytes(GgmlType weight_type, int64_t n_in, int n_rows) {
  const ActLayout L{n_in, shape_of(weight_type)};
  return L.tile_bytes() * size_t((n_rows + kTile - 1) / kTile);
}

void pack_row_tiles(GgmlType weight_type, const float* x, int64_t n_in, int n_rows, int t0, int t1,
                    uint8_t* packed) {
  const ActLayout L{n_in, shape_of(weight_type)};
  const int G = L.s.group;
  for (int t = t0; t < t1; ++t) {
    uint8_t* tile = packed + size_t(t) * L.tile_bytes();
    float* scales = reinterpret_cast<float*>(tile + L.scale_offset());
    float* sums = reinterpret_cast<float*>(tile + L.sum_offset());
    for (int m = 0; m < kTile; ++m) {
      const int r = t * kTile + m;
      for (int64_t b = 0; b < L.blocks(); ++b) {
        alignas(32) int8_t q[kActBlock] = {};
        float d = 0.0f;
        if (r < n_rows) d = quantize_block(x + size_t(r) * n_in + b * kActBlock, q);
        scales[b * kTile + m] = d;
        // VNNI order: 4 consecutive k of row m side by side, 16 rows per 64-byte tile row.
        for (int w4 = 0; w4 < kActBlock / 4; ++w4) {
          const int64_t k = b * kActBlock + 4 * w4;
          const int64_t g = k / G;
          uint8_t* dst = tile + size_t(g) * G * kTile + size_t((k % G) / 4) * 64 + size_t(m) * 4;
          std::memcpy(dst, q + 4 * w4, 4);
        }
        if (L.s.has_min) {
          for (int h = 0; h < kActBlock / G; ++h) {
            int sum = 0;
            for (int i = 0; i < G; ++i) sum += q[h * G + i];
            sums[(b * (kActBlock / G) + h) * kTile + m] = d * float(sum);
          }
        }
      }
    }
  }
}

void compute_column_tile(GgmlType weight_type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, int64_t n_out,
                         int64_t j0, const uint8_t* packed, int n_rows, float* y, int64_t ldy) {
  const ActLayout L{n_in, shape_of(weight_type)};
  thread_local WeightTile wt;
  decode_weight_tile(weight_type, w, w_row_bytes, n_in, n_out, j0, L.s, wt);
  configure_tiles(L.s.group);
  const int n_cols = int(std::min<int64_t>(kTile, n_out - j0));
  alignas(64) float out[kTile][kTile];
  for (int t = 0; t * kTile < n_rows; ++t) {
    const uint8_t* act_tile = packed + size_t(t) * L.tile_bytes();
    if (L.s.has_min) {
      multiply_tiles<true>(wt, act_tile, L, out);
    } else {
      multiply_tiles<false>(wt, act_tile, L, out);
    }
    const int rows = std::min(kTile, n_rows - t * kTile);
    for (int m = 0; m < rows; ++m) {
      float* yr = y + size_t(t * kTile + m) * ldy + j0;
      for (int j = 0; j < n_cols; ++j) yr[j] = out[j][m];
    }
  }
  _tile_release();
}

}  // namespace kvant::gemm::amx

#else  // no AMX support in this compiler: no format has a kernel, so nothing below is ever called

#include <cstdlib>

namespace kvant::gemm::amx {
bool has_kernel(GgmlType) { return false; }
size_t packed_bytes(GgmlType, int64_t, int) { return 0; }
void pack_row_tiles(GgmlType, const float*, int64_t, int, int, int, uint8_t*) { std::abort(); }
void compute_column_tile(GgmlType, const uint8_t*, size_t, int64_t, int64_t, int64_t, const uint8_t*, int, float*,
                         int64_t) {
  std::abort();
}
}  // namespace kvant::gemm::amx

#endif
