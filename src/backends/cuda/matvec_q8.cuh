// backends/cuda/matvec_q8.cuh — the int8 (dp4a) matvec for quantised weights (Q8_0, Q4_0, Q4_1, Q4_K, Q5_K,
// Q6_K), included by matvec.cu only. Each block quantises its activation rows (RMSNorm folded in) to int8
// with one f32 scale per 32 elements into shared memory, then its warps stream whole weight rows
// (persistent grid: a warp takes rows blockIdx*warps+warp, += all warps). A warp loads a tile of a row
// with 16-byte streaming loads into registers (the next tile, or the next row's first, is in flight
// while the current one is staged in shared memory and dotted), each lane takes one "item" (one or two
// 32-element units) at a time and accumulates d_w·d_x·Σ(q_w·q_x) (+ min·d_x·Σq_x) with __dp4a.
#pragma once

#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_formats.cuh"

namespace kvant::cuda::q8 {

constexpr int kWarps = 8;        // warps per block
constexpr int kStagePad = 16;    // bytes past a stage the 2-byte-aligned word loads may touch

// ---- weight decoders: item `it` of a tile staged at s (16-byte aligned) -> int8x4 words + scales ----

// N little-endian words from byte offset o (o even) of shared s: aligned loads and funnel shifts.
template <int N>
__device__ __forceinline__ void words_a2(const uint8_t* s, int o, uint32_t (&w)[N]) {
  const uint32_t* base = reinterpret_cast<const uint32_t*>(s + (o & ~3));
  const int sh = (o & 2) * 8;
  uint32_t a[N + 1];
#pragma unroll
  for (int i = 0; i <= N; ++i) a[i] = base[i];
#pragma unroll
  for (int i = 0; i < N; ++i) w[i] = __funnelshift_r(a[i], a[i + 1], sh);
}
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
  static constexpr bool kSplit = false, kMin = false;
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
  static constexpr bool kSplit = false, kMin = false;
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
  static constexpr bool kSplit = false, kMin = true;
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
// super-block at byte b.
template <class It>
__device__ __forceinline__ void k4_item_scales(const uint8_t* s, int b, int p, It& o) {
  const float d = half_at(s, b), dmin = half_at(s, b + 2);
#pragma unroll
  for (int u = 0; u < 2; ++u) {
    int sc, mn;
    k4_scale_min(2 * p + u, s + b + 4, &sc, &mn);
    o.d[u][0] = d * float(sc);
    o.m[u] = -dmin * float(mn);
  }
}

// Q4_K: 144-byte blocks of 8 sub-blocks; an item is sub-blocks 2p, 2p+1 (low / high nibbles of 32 bytes).
template <> struct Q8Fmt<GgmlType::Q4_K> {
  static constexpr int kQK = 256, kBytes = 144, kTileBlocks = 16, kUnits = 2;
  static constexpr bool kSplit = false, kMin = true;
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
  static constexpr bool kSplit = false, kMin = true;
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

// Q6_K: 210-byte blocks (ql[128], qh[64], int8 scales[16], d); an item is one sub-block of 32, whose
// halves have their own scales. Element 32u + j: half h = u/4, quarter k = u%4.
template <> struct Q8Fmt<GgmlType::Q6_K> {
  static constexpr int kQK = 256, kBytes = 210, kTileBlocks = 16, kUnits = 1;
  static constexpr bool kSplit = true, kMin = false;
  using It = Item<1, true, false>;
  __device__ static void decode(const uint8_t* s, int it, It& o) {
    const int b = 210 * (it >> 3), u = it & 7, h = u >> 2, k = u & 3;
    const float d = half_at(s, b + 208);
    const uint16_t sc = *reinterpret_cast<const uint16_t*>(s + b + 192 + 2 * u);
    o.d[0][0] = d * float(int8_t(sc & 0xFF));
    o.d[0][1] = d * float(int8_t(sc >> 8));
    uint32_t ql[8], qh[8];
    words_a2<8>(s, b + 64 * h + 32 * (k & 1), ql);
    words_a2<8>(s, b + 128 + 32 * h, qh);
    const int ls = 4 * (k >> 1), hs = 2 * k;
#pragma unroll
    for (int i = 0; i < 8; ++i)
      o.w[0][i] = __vsub4(((ql[i] >> ls) & 0x0F0F0F0Fu) | (((qh[i] >> hs) & 0x03030303u) << 4), 0x20202020u);
  }
};

template <GgmlType T>
struct Q8Tile {
  using F = Q8Fmt<T>;
  static constexpr int kBytes = F::kTileBlocks * F::kBytes;
  static constexpr int kElems = F::kTileBlocks * F::kQK;
  static constexpr int kItemElems = 32 * F::kUnits;
  static constexpr int kItems = kElems / kItemElems;
  static constexpr int kLoads = (kBytes / 16 + 31) / 32;  // uint4 per lane
  static constexpr int kStage = kBytes + kStagePad;       // per-warp stage bytes (16-byte multiple)
  static_assert(kBytes % 16 == 0 && kItems % 32 == 0, "tile must be 16-byte whole and a lane multiple");
};

// Shared memory of one block: warp stages, then x scales [NR][G], x sums [NR][G], x int8 [NR][n_in]
// (16-byte aligned).
template <GgmlType T>
__host__ __device__ inline size_t xq_offset(int nr_tmpl, int n_in) {
  return (size_t(kWarps) * Q8Tile<T>::kStage + size_t(nr_tmpl) * (size_t(n_in) / 32) * 8 + 15) / 16 * 16;
}
template <GgmlType T>
inline size_t smem_bytes(int nr_tmpl, int n_in) {
  return xq_offset<T>(nr_tmpl, n_in) + size_t(nr_tmpl) * size_t(n_in);
}

template <int L>
__device__ __forceinline__ void tile_load(const uint8_t* src, int bytes, int lane, uint4 (&buf)[L]) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int at = 16 * (lane + 32 * i);
    if (at < bytes) buf[i] = ld_stream(src + at);
  }
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

struct XShared {  // a block's quantised activations
  const float* d;     // [NR][G] scale of each 32-group
  const float* sum;   // [NR][G] d * Σq
  const int8_t* q;    // [NR][n_in]
  int n_in, groups;
};

// acc[r] += row · xin[r] over one weight row (lanes hold partial sums). buf holds the row's first tile on
// entry and the first tile of next_row (if any) on exit.
template <GgmlType T, int NR>
__device__ __forceinline__ void row_dot(const uint8_t* wrow, int row_bytes, const XShared& xs, int nr,
                                        uint8_t* stage, uint4 (&buf)[Q8Tile<T>::kLoads], const uint8_t* next_row,
                                        int lane, float (&acc)[NR]) {
  using F = Q8Fmt<T>;
  using TL = Q8Tile<T>;
  const int n_tiles = (xs.n_in + TL::kElems - 1) / TL::kElems;
  for (int t = 0; t < n_tiles; ++t) {
    __syncwarp();
#pragma unroll
    for (int i = 0; i < TL::kLoads; ++i) {
      const int idx = lane + 32 * i;
      if (16 * idx < row_bytes - t * TL::kBytes && 16 * idx < TL::kBytes) reinterpret_cast<uint4*>(stage)[idx] = buf[i];
    }
    __syncwarp();
    if (t + 1 < n_tiles) {
      tile_load(wrow + size_t(t + 1) * TL::kBytes, min(TL::kBytes, row_bytes - (t + 1) * TL::kBytes), lane, buf);
    } else if (next_row != nullptr) {
      tile_load(next_row, min(TL::kBytes, row_bytes), lane, buf);
    }
    const int items = min(TL::kItems, (xs.n_in - t * TL::kElems) / TL::kItemElems);
    const int g0 = t * (TL::kElems / 32);
#pragma unroll 1
    for (int it = lane; it < items; it += 32) {
      typename F::It w;
      F::decode(stage, it, w);
#pragma unroll
      for (int u = 0; u < F::kUnits; ++u) {
        const int g = g0 + it * F::kUnits + u;
#pragma unroll
        for (int r = 0; r < NR; ++r) {
          if (r < nr) {
            const int4* xq = reinterpret_cast<const int4*>(xs.q + size_t(r) * xs.n_in + 32 * g);
            const int4 a = xq[0], b = xq[1];
            const float dx = xs.d[r * xs.groups + g];
            if constexpr (F::kSplit) {
              acc[r] += dx * (w.d[u][0] * float(dot8(w.w[u], a, b, 0)) + w.d[u][1] * float(dot8(w.w[u], a, b, 1)));
            } else {
              acc[r] += (dx * w.d[u][0]) * float(dot8(w.w[u], a, b, -1));
            }
            if constexpr (F::kMin) acc[r] += w.m[u] * xs.sum[r * xs.groups + g];
          }
        }
      }
    }
  }
}

// Quantises rows [0, nr) of x (normed: x * inv_rms * norm_w) into int8 groups of 32: 8 lanes per group,
// 4 elements a lane.
__device__ __forceinline__ void quantise_x(const float* x, const float* norm_w, const float* inv_rms, int nr,
                                           int n_in, float* xd, float* xsum, int8_t* xq) {
  const int groups = n_in / 32, total = nr * groups, sub = threadIdx.x & 7, warp = threadIdx.x / 32;
  for (int base = 4 * warp; base < total; base += kWarps * 4) {  // whole warps iterate (shuffles)
    const int gi = min(base + int(threadIdx.x % 32) / 8, total - 1);  // lanes past the end redo the last group
    const bool owner = base + int(threadIdx.x % 32) / 8 < total;
    const int r = gi / groups, g = gi - r * groups, e = 32 * g + 4 * sub;
    float4 v = *reinterpret_cast<const float4*>(x + size_t(r) * n_in + e);
    if (norm_w != nullptr) {
      const float4 nw = *reinterpret_cast<const float4*>(norm_w + e);
      const float sc = inv_rms[r];
      v.x *= sc * nw.x, v.y *= sc * nw.y, v.z *= sc * nw.z, v.w *= sc * nw.w;
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
      reinterpret_cast<uint32_t*>(xq + size_t(r) * n_in + e)[0] =
          (uint32_t(q0) & 0xFF) | ((uint32_t(q1) & 0xFF) << 8) | ((uint32_t(q2) & 0xFF) << 16) | (uint32_t(q3) << 24);
      if (sub == 0) {
        xd[r * groups + g] = d;
        xsum[r * groups + g] = d * float(qsum);
      }
    }
  }
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

template <GgmlType T, int NR>
__global__ void __launch_bounds__(kWarps * 32, NR == 1 ? 3 : (NR <= 8 ? 2 : 1))
    matvec_q8_kernel(MatvecArgs a, int total_out) {
  pdl_prologue();
  using TL = Q8Tile<T>;
  extern __shared__ __align__(16) uint8_t smem[];
  __shared__ double partial[kWarps][NR];
  __shared__ float inv_rms[NR];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.y * NR, nr = min(NR, a.n_rows - row0);
  const int n_in = a.w[0].n_in, groups = n_in / 32, row_bytes = int(a.w[0].row_bytes);
  const float* x = a.x + size_t(row0) * n_in;
  const bool swiglu = a.epilogue == MatvecEpilogue::SwiGlu;
  const int stride = gridDim.x * kWarps;

  // Request this warp's first tile before the prologue.
  int item = blockIdx.x * kWarps + warp, k = 0, j = 0;
  uint4 buf[TL::kLoads];
  const uint8_t* wrow = item < total_out ? item_row(a, item, &k, &j) : nullptr;
  if (wrow != nullptr) tile_load(wrow, min(TL::kBytes, row_bytes), lane, buf);

  if (a.norm_w != nullptr) {
    block_rows_inv_rms<kWarps, NR>(x, n_in, nr, a.eps, true, partial, inv_rms);
    __syncthreads();
  }
  uint8_t* stage = smem + warp * TL::kStage;
  float* xd = reinterpret_cast<float*>(smem + kWarps * TL::kStage);
  float* xsum = xd + NR * groups;
  int8_t* xq = reinterpret_cast<int8_t*>(smem + xq_offset<T>(NR, n_in));
  quantise_x(x, a.norm_w, inv_rms, nr, n_in, xd, xsum, xq);
  __syncthreads();
  const XShared xs{xd, xsum, xq, n_in, groups};

  while (wrow != nullptr) {
    const int next_item = item + stride;
    int k2 = 0, j2 = 0;
    const uint8_t* next_row = next_item < total_out ? item_row(a, next_item, &k2, &j2) : nullptr;
    const uint8_t* up_row = swiglu ? a.w[1].data + size_t(j) * a.w[1].row_bytes : nullptr;
    float acc[NR], acc_up[NR];
#pragma unroll
    for (int r = 0; r < NR; ++r) acc[r] = acc_up[r] = 0.0f;
    row_dot<T, NR>(wrow, row_bytes, xs, nr, stage, buf, swiglu ? up_row : next_row, lane, acc);
    if (swiglu) row_dot<T, NR>(up_row, row_bytes, xs, nr, stage, buf, next_row, lane, acc_up);
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      acc[r] = warp_sum(acc[r]);
      if (swiglu) acc_up[r] = warp_sum(acc_up[r]);
    }
    const int n_out = a.w[k].n_out;
    float* y = a.y[k] + size_t(row0) * n_out + j;
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      if (lane == r && r < nr) {
        float* yr = y + size_t(r) * n_out;
        switch (a.epilogue) {
          case MatvecEpilogue::Store: *yr = acc[r]; break;
          case MatvecEpilogue::AddInto: *yr += acc[r]; break;
          case MatvecEpilogue::SwiGlu: *yr = acc[r] / (1.0f + expf(-acc[r])) * acc_up[r]; break;
        }
      }
    }
    item = next_item, wrow = next_row, k = k2, j = j2;
  }
}

}  // namespace kvant::cuda::q8
