// backends/cuda/matvec_q8.cuh — the int8 (dp4a) matvec for quantised weights (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K,
// Q6_K), included by matvec.cu only. Each block quantises its activation rows (RMSNorm folded in) to int8
// with one f32 scale per 32 elements into shared memory, then its warps share the block's even slice of the
// output rows, row by row, or tile by tile where long rows divide badly over the warps (split_tiles). A
// warp copies its tiles into its own ring of shared-memory stages with cp.async, several tiles ahead, so
// each warp keeps kilobytes of weights in flight; each lane takes one "item" (one or two 32-element units)
// of the staged tile at a time and accumulates d_w·d_x·Σ(q_w·q_x) (+ min·d_x·Σq_x) with __dp4a. Split
// rows' per-tile warp totals meet in shared memory and are added in a fixed order per row. The pair kernel
// runs two such matvecs of different weight types in one launch (a K-quant mix's Q/K and V).
#pragma once

#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_formats.cuh"

namespace kvant::cuda::q8 {

// Warps per block: kWideWarps in one block per SM (x quantised once per SM) or kWarps in three.
constexpr int kWarps = 8;
constexpr int kWideWarps = 24;
constexpr int kStagePad = 16;    // bytes past a stage the 2-byte-aligned word loads may touch
constexpr int kPartialFloats = 1024;  // per-unit dot products a block holds before finishing rows

// Tiles a warp's ring holds: one in use, the rest in flight.
__host__ __device__ constexpr int ring_stages(int nr) { return nr == 1 ? 3 : 2; }

// ---- weight decoders: item `it` of a tile staged at s (16-byte aligned) -> int8x4 words + scales ----

template <int N>
__device__ __forceinline__ void words_a16(const uint8_t* s, int o, uint32_t (&w)[N]) {
  static_assert(N % 4 == 0);
#pragma unroll
  for (int i = 0; i < N / 4; ++i) {
    const uint4 v = *reinterpret_cast<const uint4*>(s + o + 16 * i);
    w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
  }
}
__device__ __forceinline__ float half_at(const uint8_t* s, int o) {
  return half_bits_to_float(*reinterpret_cast<const uint16_t*>(s + o));
}

// An item: U units of 32 elements (unit u = x group first_group + u). w[u][k] holds elements 4k..4k+3 of
// the unit as signed bytes. Value = d[u][k / 4 when kSplit] * q + m[u] (kMin).
template <int U, bool kSplit, bool kMin>
struct Item {
  uint32_t w[U][8];
  float d[U][kSplit ? 2 : 1];
  float m[U];
};

template <GgmlType T> struct Q8Fmt;

// x = d * q: 34-byte blocks, one block an item.
template <> struct Q8Fmt<GgmlType::Q8_0> {
  static constexpr int kQK = 32, kBytes = 34, kTileBlocks = 64, kUnits = 1;
  static constexpr bool kSplit = false, kMin = false, kSwapGroups = false;
  using It = Item<1, false, false>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 34 * it;
    o.d[0][0] = half_at(s, b);
    words_a2<8>(s, b + 2, o.w[0]);
  }
};

// x = d * (q - 8), low nibbles elements 0..15, high 16..31: 18-byte blocks.
template <> struct Q8Fmt<GgmlType::Q4_0> {
  static constexpr int kQK = 32, kBytes = 18, kTileBlocks = 128, kUnits = 1;
  static constexpr bool kSplit = false, kMin = false, kSwapGroups = false;
  using It = Item<1, false, false>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 18 * it;
    o.d[0][0] = half_at(s, b);
    uint32_t q[4];
    words_a2<4>(s, b + 2, q);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      o.w[0][k] = __vsub4(q[k] & 0x0F0F0F0Fu, 0x08080808u);
      o.w[0][k + 4] = __vsub4((q[k] >> 4) & 0x0F0F0F0Fu, 0x08080808u);
    }
  }
};

// x = d * q + m: 20-byte blocks.
template <> struct Q8Fmt<GgmlType::Q4_1> {
  static constexpr int kQK = 32, kBytes = 20, kTileBlocks = 128, kUnits = 1;
  static constexpr bool kSplit = false, kMin = true, kSwapGroups = false;
  using It = Item<1, false, true>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 20 * it;
    o.d[0][0] = half_at(s, b);
    o.m[0] = half_at(s, b + 2);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const uint32_t q = *reinterpret_cast<const uint32_t*>(s + b + 4 + 4 * k);
      o.w[0][k] = q & 0x0F0F0F0Fu;
      o.w[0][k + 4] = (q >> 4) & 0x0F0F0F0Fu;
    }
  }
};

// Q4_K/Q5_K: the scales (d · sc) and negated mins (−dmin · m) of sub-blocks 2p and 2p + 1 of the
// super-block at byte b (16-byte aligned): the 16-byte header in one load, the 6-bit fields of all eight
// sub-blocks unpacked four at a time (ggml's get_scale_min_k4 without its branch).
template <class It>
__device__ __forceinline__ void k4_item_scales(const uint8_t* s, int b, int p, It& o) {
  const uint4 h = *reinterpret_cast<const uint4*>(s + b);  // d, dmin | scales[0..3] | [4..7] | [8..11]
  const float d = half_bits_to_float(uint16_t(h.x & 0xFFFFu)), dmin = half_bits_to_float(uint16_t(h.x >> 16));
  const bool high = p >= 2;  // sub-blocks 4..7
  const uint32_t sc = high ? (h.w & 0x0F0F0F0Fu) | ((h.y >> 2) & 0x30303030u) : h.y & 0x3F3F3F3Fu;
  const uint32_t mn = high ? ((h.w >> 4) & 0x0F0F0F0Fu) | ((h.z >> 2) & 0x30303030u) : h.z & 0x3F3F3F3Fu;
  const int shift = 16 * (p & 1);
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    o.d[u][0] = d * float((sc >> (shift + 8 * u)) & 0xFFu);
    o.m[u] = -dmin * float((mn >> (shift + 8 * u)) & 0xFFu);
  }
}

// Q4_K: 144-byte blocks of 8 sub-blocks; an item is sub-blocks 2p, 2p+1 (low / high nibbles of 32 bytes).
template <> struct Q8Fmt<GgmlType::Q4_K> {
  static constexpr int kQK = 256, kBytes = 144, kTileBlocks = 16, kUnits = 2;
  static constexpr bool kSplit = false, kMin = true, kSwapGroups = false;
  using It = Item<2, false, true>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 144 * (it >> 2), p = it & 3;
    k4_item_scales(s, b, p, o);
    uint32_t q[8];
    words_a16<8>(s, b + 16 + 32 * p, q);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      o.w[0][k] = q[k] & 0x0F0F0F0Fu;
      o.w[1][k] = (q[k] >> 4) & 0x0F0F0F0Fu;
    }
  }
};

// Q5_K: 176-byte blocks; as Q4_K plus the fifth bit of sub-block u in bit u of qh[j].
template <> struct Q8Fmt<GgmlType::Q5_K> {
  static constexpr int kQK = 256, kBytes = 176, kTileBlocks = 16, kUnits = 2;
  static constexpr bool kSplit = false, kMin = true, kSwapGroups = false;
  using It = Item<2, false, true>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 176 * (it >> 2), p = it & 3;
    k4_item_scales(s, b, p, o);
    uint32_t q[8], h[8];
    words_a16<8>(s, b + 48 + 32 * p, q);
    words_a16<8>(s, b + 16, h);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      o.w[0][k] = (q[k] & 0x0F0F0F0Fu) | (((h[k] >> (2 * p)) & 0x01010101u) << 4);
      o.w[1][k] = ((q[k] >> 4) & 0x0F0F0F0Fu) | (((h[k] >> (2 * p + 1)) & 0x01010101u) << 4);
    }
  }
};

// Q6_K: 210-byte blocks (ql[128], qh[64], int8 scales[16], d). Element 32u + j (sub-block u = 4h + k of half
// h, k = 0..3) takes the low (k < 2) or high nibble of ql[64h + 32(k % 2) + j] and bits 2k, 2k + 1 of
// qh[32h + j]; its halves of 16 have their own scales. An item is sub-blocks k and k + 2 of a half, the low and
// high nibbles of the same 32 ql bytes, so each ql byte is read once (one sub-block an item read each byte
// twice). Their x groups are not consecutive: kSwapGroups puts group 4h + k at slot 4h + 2(k % 2) + k / 2.
// The codes are stored as 4·(q − 32), q shifted into a byte's top six bits with its bit 5 flipped (the
// subtraction without __vsub4's emulation), and d carries the 1/4. H200, against one sub-block an item (same
// call): 14336 → 4096 24.96 → 22.57 µs, 2048 → 128256 77.75 → 70.49 µs; 8B Q4_K_M tg128 451 → 471 t/s.
template <> struct Q8Fmt<GgmlType::Q6_K> {
  static constexpr int kQK = 256, kBytes = 210, kTileBlocks = 8, kUnits = 2;
  static constexpr bool kSplit = true, kMin = false, kSwapGroups = true;
  using It = Item<2, true, false>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 210 * (it >> 2), h = (it >> 1) & 1, k = it & 1;
    const float d = 0.25f * half_at(s, b + 208);
    const int sc_at = b + 192 + 2 * (4 * h + k);  // sub-block 4h + k; 4h + k + 2 four bytes on
    const uint16_t sc0 = *reinterpret_cast<const uint16_t*>(s + sc_at);
    const uint16_t sc1 = *reinterpret_cast<const uint16_t*>(s + sc_at + 4);
    o.d[0][0] = d * float(int8_t(sc0 & 0xFF));
    o.d[0][1] = d * float(int8_t(sc0 >> 8));
    o.d[1][0] = d * float(int8_t(sc1 & 0xFF));
    o.d[1][1] = d * float(int8_t(sc1 >> 8));
    uint32_t ql[8], qh[8];
    words_a2<8>(s, b + 64 * h + 32 * k, ql);
    words_a2<8>(s, b + 128 + 32 * h, qh);
    const int hs = 2 * k;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint32_t lo = ((ql[i] & 0x0F0F0F0Fu) << 2) | (((qh[i] >> hs) & 0x03030303u) << 6);
      const uint32_t hi = ((ql[i] >> 2) & 0x3C3C3C3Cu) | (((qh[i] >> (hs + 4)) & 0x03030303u) << 6);
      o.w[0][i] = lo ^ 0x80808080u;
      o.w[1][i] = hi ^ 0x80808080u;
    }
  }
};

template <GgmlType T>
struct Q8Tile {
  using F = Q8Fmt<T>;
  static constexpr int kBytes = F::kTileBlocks * F::kBytes;
  static constexpr int kElems = F::kTileBlocks * F::kQK;
  static constexpr int kItemElems = 32 * F::kUnits;
  static constexpr int kItems = kElems / kItemElems;
  static constexpr int kStage = kBytes + kStagePad;  // bytes of one ring slot (16-byte multiple)
  static constexpr int kCopies = (kBytes / 16 + 31) / 32;  // 16-byte copies per lane for a whole tile
  static_assert(kBytes % 16 == 0 && kItems % 32 == 0, "tile must be 16-byte whole and a lane multiple");
};

// Quantised activations in shared memory, laid out so that a warp reading the same 16-byte chunk of 32
// consecutive items (one per lane) reads 512 contiguous bytes (no bank conflicts): chunk c (of 2·units)
// of item i sits at ((i / 32) · 2·units + c) · 512 + (i % 32) · 16. A row takes x_stride bytes: n_in
// rounded up to whole groups of 32 items.
template <int kUnits>
__host__ __device__ inline int x_stride(int n_in) {
  constexpr int kSpan = 32 * 32 * kUnits;
  return (n_in + kSpan - 1) / kSpan * kSpan;
}
template <int kUnits>
__device__ __forceinline__ int x_chunk(int item, int c) {
  return ((item >> 5) * (2 * kUnits) + c) * 512 + (item & 31) * 16;
}

// Shared memory of one block: warp rings, then {scale, scale·Σq} per 32-group [NR][G], then x int8
// [NR][x_stride] (16-byte aligned), then two buffers of per-unit dot products (kPartialFloats each).
template <GgmlType T>
__host__ __device__ inline size_t xq_offset(int warps, int nr_tmpl, int n_in) {
  return (size_t(warps) * ring_stages(nr_tmpl) * Q8Tile<T>::kStage + size_t(nr_tmpl) * (size_t(n_in) / 32) * 8 +
          15) / 16 * 16;
}
template <GgmlType T>
__host__ __device__ inline size_t partial_offset(int warps, int nr_tmpl, int n_in) {
  return xq_offset<T>(warps, nr_tmpl, n_in) + size_t(nr_tmpl) * size_t(x_stride<Q8Fmt<T>::kUnits>(n_in));
}
template <GgmlType T>
inline size_t smem_bytes(int warps, int nr_tmpl, int n_in) {
  return partial_offset<T>(warps, nr_tmpl, n_in) + 2 * kPartialFloats * sizeof(float);
}

// Σ over one 32-element unit of q_w · q_x (8 dp4a), in two halves when the format splits its scale.
__device__ __forceinline__ int dot8(const uint32_t (&w)[8], const int4 a, const int4 b, int lo_hi) {
  int s = 0;
  if (lo_hi <= 0) {
    s = __dp4a(int(w[0]), a.x, s);
    s = __dp4a(int(w[1]), a.y, s);
    s = __dp4a(int(w[2]), a.z, s);
    s = __dp4a(int(w[3]), a.w, s);
  }
  if (lo_hi != 0) {
    s = __dp4a(int(w[4]), b.x, s);
    s = __dp4a(int(w[5]), b.y, s);
    s = __dp4a(int(w[6]), b.z, s);
    s = __dp4a(int(w[7]), b.w, s);
  }
  return s;
}

// cp.async groups (copies: copy16_async_hint): commit closes a group, wait<N> returns when at most N of this
// thread's groups are still in flight.
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

struct XShared {  // a block's quantised activations, from the point of view of one lane
  const float2* ds;   // [NR][G] {scale, scale·Σq} of each 32-group, advanced to the lane's first group
  const int8_t* q;    // [NR][stride], chunk layout of x_chunk, advanced to the lane's 16 bytes
  int n_in, groups, stride;
};

// acc[r] += tile t of a weight row (staged at stage) · xin[r] (lanes hold partial sums). Lane l takes items
// l, l + 32, ...: in the x_chunk layout, item t·kItems + l + 32·step sits at a lane-independent offset from
// the lane's own 16 bytes (xs.q), so the x addresses are the tile's base plus constants.
template <GgmlType T, int NR>
__device__ __forceinline__ void tile_dot(const uint8_t* stage, int t, const XShared& xs, int nr, int lane,
                                         float (&acc)[NR]) {
  using F = Q8Fmt<T>;
  using TL = Q8Tile<T>;
  constexpr int kChunks = 2 * F::kUnits;  // 16-byte chunks of an item
  const int items = min(TL::kItems, (xs.n_in - t * TL::kElems) / TL::kItemElems);
  const int8_t* const xq_tile = xs.q + t * (TL::kItems / 32) * kChunks * 512;
  const float2* const ds_tile = xs.ds + t * TL::kItems * F::kUnits;
#pragma unroll
  for (int step = 0; step < TL::kItems / 32; ++step) {
    const int it = lane + 32 * step;
    if (it < items) {
      typename F::It w;
      F::decode(stage, it, w);
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        if (r < nr) {
          const int8_t* xr = xq_tile + r * xs.stride + step * kChunks * 512;
          const float2* dr = ds_tile + r * xs.groups + 32 * step * F::kUnits;
          float2 ds[F::kUnits];
          if constexpr (F::kUnits == 2) {
            const float4 v = *reinterpret_cast<const float4*>(dr);
            ds[0] = make_float2(v.x, v.y), ds[1] = make_float2(v.z, v.w);
          } else {
            ds[0] = *dr;
          }
#pragma unroll
          for (int u = 0; u < F::kUnits; ++u) {
            const int4 a = *reinterpret_cast<const int4*>(xr + 2 * u * 512);
            const int4 b = *reinterpret_cast<const int4*>(xr + (2 * u + 1) * 512);
            const float dx = ds[u].x;
            if constexpr (F::kSplit) {
              acc[r] += dx * (w.d[u][0] * float(dot8(w.w[u], a, b, 0)) + w.d[u][1] * float(dot8(w.w[u], a, b, 1)));
            } else {
              acc[r] += (dx * w.d[u][0]) * float(dot8(w.w[u], a, b, -1));
            }
            if constexpr (F::kMin) acc[r] += w.m[u] * ds[u].y;
          }
        }
      }
    }
  }
}

// Quantises rows [0, nr) of x (normed: x * inv_rms * norm_w) into int8 groups of 32 (layout of x_chunk,
// units of kUnits groups; kSwap: group 4h + k at slot 4h + 2(k % 2) + k / 2, see Q6_K): 8 lanes per group, 4
// elements a lane.
// inv_rms null with norm_w: x · norm_w is quantised (the int8 codes do not depend on the row's 1/rms, only the
// scales do, so the caller multiplies its dot products by 1/rms instead), and each warp's Σx² (double, raw x)
// goes to sumsq[warp] (one activation row only).
template <int kUnits, bool kSwap, int kW>
__device__ __forceinline__ void quantise_x(const float* x, const float* norm_w, const float* inv_rms, int nr,
                                           int n_in, float2* xds, int8_t* xq, double* sumsq = nullptr) {
  const int groups = n_in / 32, total = nr * groups, sub = threadIdx.x & 7, warp = threadIdx.x / 32;
  const int stride = x_stride<kUnits>(n_in);
  double ss = 0.0;
  for (int base = 4 * warp; base < total; base += kW * 4) {  // whole warps iterate (shuffles)
    const int gi = min(base + int(threadIdx.x % 32) / 8, total - 1);  // lanes past the end redo the last group
    const bool owner = base + int(threadIdx.x % 32) / 8 < total;
    const int r = gi / groups, g = gi - r * groups, e = 32 * g + 4 * sub;
    float4 v = *reinterpret_cast<const float4*>(x + size_t(r) * n_in + e);
    if (sumsq != nullptr && owner) ss += double(v.x) * v.x + double(v.y) * v.y + double(v.z) * v.z + double(v.w) * v.w;
    if (norm_w != nullptr) {
      const float4 nw = *reinterpret_cast<const float4*>(norm_w + e);
      if (inv_rms != nullptr) {
        const float sc = inv_rms[r];
        v.x *= sc * nw.x, v.y *= sc * nw.y, v.z *= sc * nw.z, v.w *= sc * nw.w;
      } else {
        v.x *= nw.x, v.y *= nw.y, v.z *= nw.z, v.w *= nw.w;
      }
    }
    float amax = fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w)));
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int q0 = __float2int_rn(v.x * id), q1 = __float2int_rn(v.y * id), q2 = __float2int_rn(v.z * id),
              q3 = __float2int_rn(v.w * id);
    int qsum = q0 + q1 + q2 + q3;
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) qsum += __shfl_xor_sync(0xffffffffu, qsum, o);
    if (owner) {
      const int slot = kSwap ? (g & ~3) | ((g & 1) << 1) | ((g >> 1) & 1) : g;
      const int item = slot / kUnits, chunk = 2 * (slot - item * kUnits) + (sub >> 2);
      *reinterpret_cast<uint32_t*>(xq + size_t(r) * stride + x_chunk<kUnits>(item, chunk) + 4 * (sub & 3)) =
          (uint32_t(q0) & 0xFF) | ((uint32_t(q1) & 0xFF) << 8) | ((uint32_t(q2) & 0xFF) << 16) | (uint32_t(q3) << 24);
      if (sub == 0) xds[r * groups + slot] = make_float2(d, d * float(qsum));
    }
  }
  if (sumsq != nullptr) {
    ss = warp_sum(ss);
    if (threadIdx.x % 32 == 0) sumsq[warp] = ss;
  }
}

// Whether a block's rows (an even share of total_out over `blocks`, `parts` tiles each, nr activation rows)
// go to its kW warps tile by tile rather than row by row: when every warp gets at least one row and a row-
// by-row deal leaves the busiest warp ≥ 11 % more tiles (8B down: 31 rows of 4-7 tiles on 24 warps), and the
// block's per-tile sums fit one pass of the shared buffer. Measured on an H200 (same-binary A/B): dealing
// every matvec tile by tile gained 8B Q4_K_M decode ~4 % but cost 1B Q8_0 ~3.5 %; this rule measured 8B
// +2.4 % and 1B −1 to −2 % (the spread between 1B runs). Splitting blocks of fewer rows than warps too (1B
// down: 16 rows of 4 tiles) made that kernel slower in isolation (12.8 vs 11.2 µs) and cost 1B tg128 ~2 %.
__host__ __device__ inline bool split_tiles(int total_out, int blocks, int parts, int kW, int nr) {
  const int rows = (total_out + blocks - 1) / blocks;
  if (parts == 1 || rows <= kW || rows * parts * nr > kPartialFloats) return false;
  const int by_row = (rows + kW - 1) / kW * parts, by_tile = (rows * parts + kW - 1) / kW;
  return 10 * by_tile < 9 * by_row;
}

// First output row of block b of n sharing total rows, where the last `late` blocks take late_pct % of
// an early block's share (late 0: even shares).
__host__ __device__ inline int share_begin(int b, int n, int total, int late, int late_pct) {
  late = late < n ? late : n - 1;
  const int early = n - late;
  const int64_t w_all = int64_t(early) * 100 + int64_t(late) * late_pct;
  const int64_t w_b = int64_t(b < early ? b : early) * 100 + int64_t(b > early ? b - early : 0) * late_pct;
  return int(w_b * total / w_all);
}

// Pointer to the first weight row of work item `item` (gate row for SwiGLU), and its weight index k.
__device__ __forceinline__ const uint8_t* item_row(const MatvecArgs& a, int item, int* k_out, int* j_out) {
  int k = 0, j = item;
  if (a.epilogue != MatvecEpilogue::SwiGlu) {
    while (k + 1 < a.n_w && j >= a.w[k].n_out) j -= a.w[k++].n_out;
  }
  *k_out = k;
  *j_out = j;
  return a.w[k].data + size_t(j) * a.w[k].row_bytes;
}

// One block's work: block `block` of `n_blocks` that share a.w's output rows (blockIdx.y: the activation rows).
template <GgmlType T, int NR, int kW, bool kHostRows = false>
__device__ __forceinline__ void matvec_q8_block(const MatvecArgs& a, int total_out, bool split, int block,
                                                int n_blocks) {
  using TL = Q8Tile<T>;
  constexpr int kRing = ring_stages(NR);
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ double partial[kW][NR];
  __shared__ float inv_rms[NR];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.y * NR, nr = min(NR, a.n_rows - row0);
  const int n_in = a.w[0].n_in, groups = n_in / 32, row_bytes = int(a.w[0].row_bytes);
  const bool swiglu = a.epilogue == MatvecEpilogue::SwiGlu;

  // This block's output rows: an even share [out_begin, out_begin + out_rows) of total_out, each row `parts`
  // tiles long (SwiGlu: the gate row's tiles, then the up row's). Flat index f = row · parts + part. A warp
  // takes whole rows w, w + kW, ... (its steps are their tiles in order, summed in registers), or, when the
  // rows divide badly over the warps (split, see split_tiles), single tiles f = w, w + kW, ... whose totals meet in
  // shared memory. Step s of a warp lands in ring slot s % kRing.
  const int out_begin = share_begin(block, n_blocks, total_out, a.late_blocks, a.late_pct);
  const int out_rows = share_begin(block + 1, n_blocks, total_out, a.late_blocks, a.late_pct) - out_begin;
  const int n_tiles = (n_in + TL::kElems - 1) / TL::kElems;
  const int parts = swiglu ? 2 * n_tiles : n_tiles;
  // kHostRows (MatvecArgs::host_rows, never split): warp w takes the contiguous rows [w · out_rows / kW,
  // (w + 1) · out_rows / kW). A compile-time mode: as a runtime flag it cost the other kernels registers.
  const int n_units = split ? out_rows * parts : out_rows;  // a unit: one tile (split) or one row
  const int run_begin = warp * out_rows / kW, run_rows = (warp + 1) * out_rows / kW - run_begin;
  const int n_steps =
      kHostRows ? run_rows * parts : (warp < n_units ? (n_units - 1 - warp) / kW + 1 : 0) * (split ? 1 : parts);
  // (row, part) of a warp's steps in order, advanced without divisions (they were ~4 integer divisions
  // per tile): rows w, w + kW, ... part by part, or (split) flat tiles w, w + kW, ...
  const int split_rows = kW / parts, split_parts = kW - split_rows * parts;
  constexpr int row_stride = kHostRows ? 1 : kW;
  struct Cursor {
    int rl, part;
  };
  const Cursor first = split ? Cursor{warp / parts, warp % parts} : Cursor{kHostRows ? run_begin : warp, 0};
  auto advance = [&](Cursor& c) {
    if (split) {
      c.rl += split_rows;
      c.part += split_parts;
      if (c.part >= parts) c.part -= parts, ++c.rl;
    } else if (++c.part == parts) {
      c.part = 0;
      c.rl += row_stride;
    }
  };
  uint8_t* ring = smem + size_t(warp) * kRing * TL::kStage;
  // Copies step issue_s's tile into its slot (nothing past the last step); one commit group per call.
  // The row's source pointers are looked up once per row, the slot is counted, and a whole tile's copies
  // need a bounds check only in the last 512 bytes.
  int issue_s = 0, issue_slot = 0, issue_rl = -1;
  Cursor issue_at = first;
  const uint8_t *row_src = nullptr, *up_src = nullptr;
  const uint64_t policy = a.evict_first ? l2_evict_first_policy() : l2_evict_normal_policy();
  const uint32_t ring_addr = uint32_t(__cvta_generic_to_shared(ring)) + 16 * lane;
  const int last_bytes = row_bytes - (n_tiles - 1) * TL::kBytes;  // of a row's last tile
  auto issue = [&]() {
    if (issue_s < n_steps) {
      const int rl = issue_at.rl, part = issue_at.part;
      advance(issue_at);
      if (rl != issue_rl) {
        issue_rl = rl;
        int k = 0, j = 0;
        row_src = item_row(a, out_begin + rl, &k, &j) + 16 * lane;
        if (swiglu) up_src = a.w[1].data + size_t(j) * a.w[1].row_bytes + 16 * lane;  // SwiGLU's up row
      }
      const bool up = part >= n_tiles;
      const int t = up ? part - n_tiles : part;
      const uint8_t* const src = (up ? up_src : row_src) + size_t(t) * TL::kBytes;
      const int bytes = t + 1 < n_tiles ? TL::kBytes : last_bytes;
      const uint32_t dst = ring_addr + issue_slot * TL::kStage;
      issue_slot = issue_slot + 1 == kRing ? 0 : issue_slot + 1;
      if (bytes == TL::kBytes) {
#pragma unroll
        for (int i = 0; i < TL::kCopies; ++i) {
          if ((i + 1) * 512 <= TL::kBytes || 16 * (lane + 32 * i) < TL::kBytes)
            copy16_async_hint(dst + 512 * i, src + 512 * i, policy);
        }
      } else {
#pragma unroll
        for (int i = 0; i < TL::kCopies; ++i) {
          if (16 * (lane + 32 * i) < bytes) copy16_async_hint(dst + 512 * i, src + 512 * i, policy);
        }
      }
      ++issue_s;
      if (a.launch_dependents && warp == 0 && issue_s == n_steps) pdl_launch_dependents();
    }
    copy_commit();
  };
  for (int q = 0; q < kRing - 1; ++q) issue();
  pdl_prologue();

  // The fused RMSNorm of one activation row is folded into the quantisation pass: x · norm_w is quantised
  // while each warp sums x², and every dot product is multiplied by the row's 1/rms when it is finished (no
  // separate pass over x and block barrier before the quantisation; H200: 8B Q4_K_M tg128 +1 %, 1B even).
  // Several rows: 1/rms first.
  const float* x = a.x + size_t(row0) * n_in;
  const bool fold_norm = NR == 1 && a.norm_w != nullptr;
  if (a.norm_w != nullptr && !fold_norm) {
    block_rows_inv_rms<kW, NR>(x, n_in, nr, a.eps, true, partial, inv_rms);
    __syncthreads();
  }
  float2* xds = reinterpret_cast<float2*>(smem + size_t(kW) * kRing * TL::kStage);
  int8_t* xq = reinterpret_cast<int8_t*>(smem + xq_offset<T>(kW, NR, n_in));
  quantise_x<Q8Fmt<T>::kUnits, Q8Fmt<T>::kSwapGroups, kW>(x, a.norm_w, fold_norm ? nullptr : inv_rms, nr, n_in,
                                                          xds, xq, fold_norm ? &partial[0][0] : nullptr);
  __syncthreads();
  __shared__ float dot_scale[kW];  // per warp (each computes it): 1/rms when folded, else 1
  if (lane == 0) {
    float scale = 1.0f;
    if (fold_norm) {
      double s = 0.0;
      for (int w = 0; w < kW; ++w) s += partial[w][0];
      scale = 1.0f / sqrtf(float(s / n_in) + a.eps);
    }
    dot_scale[warp] = scale;
  }
  __syncwarp();
  const XShared xs{xds + Q8Fmt<T>::kUnits * lane, xq + 16 * lane, n_in, groups, x_stride<Q8Fmt<T>::kUnits>(n_in)};

  // Output row rl (of this block), activation row r: y = dot (+ y), or silu(gate) · dot.
  auto finish = [&](int rl, int r, float dot, float gate) {
    dot *= dot_scale[warp];
    gate *= dot_scale[warp];
    int k = 0, j = 0;
    item_row(a, out_begin + rl, &k, &j);
    float* const y = a.y[k] + size_t(row0 + r) * a.w[k].n_out + j;
    switch (a.epilogue) {
      case MatvecEpilogue::Store: *y = dot; break;
      case MatvecEpilogue::AddInto: *y += dot; break;
      case MatvecEpilogue::SwiGlu: *y = gate / (1.0f + expf(-gate)) * dot; break;
    }
  };
  // Waits for the next step's tile (this lane's copies, then every lane's: the slot read before is free
  // again), refills the ring, and returns the tile's row, part, tile index and staged copy.
  Cursor use_at = first;
  int use_slot = 0;
  auto next_tile = [&](int* rl, int* part, int* t) {
    copy_wait<kRing - 2>();
    __syncwarp();
    issue();
    *rl = use_at.rl;
    *part = use_at.part;
    *t = *part >= n_tiles ? *part - n_tiles : *part;
    advance(use_at);
    const uint8_t* const tile = ring + use_slot * TL::kStage;
    use_slot = use_slot + 1 == kRing ? 0 : use_slot + 1;
    return tile;
  };

  if (!split) {
    float acc[NR], acc_gate[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r) acc[r] = acc_gate[r] = 0.0f;
    float held = 0.0f;  // kHostRows: lane i holds the dot of the run's row 8k + i until its group's store
    for (int step = 0; step < n_steps; ++step) {
      int rl = 0, part = 0, t = 0;
      const uint8_t* const tile = next_tile(&rl, &part, &t);
      tile_dot<T, NR>(tile, t, xs, nr, lane, acc);
      if (swiglu && part + 1 == n_tiles) {  // gate row done: keep it, the up row follows
#pragma unroll
        for (int r = 0; r < NR; ++r) acc_gate[r] = acc[r], acc[r] = 0.0f;
        continue;
      }
      if (part + 1 < parts) continue;
      if constexpr (kHostRows) {  // one activation row, one weight, Store (the planner's host_rows contract)
        const float dot = warp_sum(acc[0]) * dot_scale[warp];
        acc[0] = 0.0f;
        const int i = rl - run_begin, in_group = i & 7;
        if (lane == in_group) held = dot;
        if ((in_group == 7 || step + 1 == n_steps) && lane <= in_group) {
          a.y[0][size_t(row0) * a.w[0].n_out + out_begin + rl - in_group + lane] = held;
        }
      } else {
#pragma unroll
        for (int r = 0; r < NR; ++r) {
          const float dot = warp_sum(acc[r]);
          const float gate = swiglu ? warp_sum(acc_gate[r]) : 0.0f;
          if (lane == r && r < nr) finish(rl, r, dot, gate);
          acc[r] = 0.0f;
        }
      }
    }
    return;
  }

  // Split rows are finished chunk by chunk: each tile's warp total goes to sums[(row - chunk) · parts +
  // part][r] (two buffers of kPartialFloats, alternating), then after a barrier one thread per (row, r)
  // adds the parts in order (the result does not depend on which warp ran which tile).
  float* const sums_base = reinterpret_cast<float*>(smem + partial_offset<T>(kW, NR, n_in));
  const int chunk_rows = max(1, kPartialFloats / (parts * NR));
  int step = 0;
  for (int c = 0, cb = 0; cb < out_rows; ++c, cb += chunk_rows) {
    const int ce = min(out_rows, cb + chunk_rows);
    float* const sums = sums_base + (c & 1) * kPartialFloats;
    for (; step < n_steps && use_at.rl < ce; ++step) {
      int rl = 0, part = 0, t = 0;
      const uint8_t* const tile = next_tile(&rl, &part, &t);
      float acc[NR];
#pragma unroll
      for (int r = 0; r < NR; ++r) acc[r] = 0.0f;
      tile_dot<T, NR>(tile, t, xs, nr, lane, acc);
      float* const dst = sums + ((rl - cb) * parts + part) * NR;
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        const float v = warp_sum(acc[r]);
        if (lane == r && r < nr) dst[r] = v;
      }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < (ce - cb) * nr; i += kW * 32) {
      const int rl = i / nr, r = i - rl * nr;
      const float* p = sums + rl * parts * NR + r;
      float dot = 0.0f, gate = 0.0f;
      for (int q = 0; q < n_tiles; ++q) dot += p[q * NR];
      if (swiglu) {
        gate = dot;
        dot = 0.0f;
        for (int q = n_tiles; q < parts; ++q) dot += p[q * NR];
      }
      finish(cb + rl, r, dot, gate);
    }
  }
}

template <GgmlType T, int NR, int kW, bool kHostRows = false>
__global__ void __launch_bounds__(kW * 32, kW == kWarps ? (NR == 1 ? 3 : 2) : 1)
    matvec_q8_kernel(MatvecArgs a, int total_out, bool split) {
  matvec_q8_block<T, NR, kW, kHostRows>(a, total_out, split, int(blockIdx.x), int(gridDim.x));
}

// Two matvecs of one activation row in one launch (wide blocks): the first blocks0 blocks take a0's rows,
// the rest a1's — Q/K and V of different weight types (Q4_K_M's Q6_K V) without a second kernel.
struct PairPart {
  MatvecArgs a;
  int total_out;
  bool split;
};
// Held to 64 registers like the single-type wide kernels (unbounded it takes ~80; ptxas spills 12-20 bytes).
// H200, 8B Q4_K_M tg128, same binary: 451.0 vs 445.8 t/s (means of three rounds). The likely reason: 768
// threads × 64 registers leave a quarter of the register file, room for a decode attention block beside it.
template <GgmlType T0, GgmlType T1>
__global__ void __maxnreg__(64) matvec_q8_pair_kernel(PairPart p0, PairPart p1, int blocks0) {
  const int b = int(blockIdx.x);
  if (b < blocks0) {
    matvec_q8_block<T0, 1, kWideWarps>(p0.a, p0.total_out, p0.split, b, blocks0);
  } else {
    matvec_q8_block<T1, 1, kWideWarps>(p1.a, p1.total_out, p1.split, b - blocks0, int(gridDim.x) - blocks0);
  }
}

}  // namespace kvant::cuda::q8
