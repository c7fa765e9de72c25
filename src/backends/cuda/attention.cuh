// backends/cuda/attention.cuh — the split-sequence (flash-decoding) attention kernel over the encoded
// KV cache, templated on the K and V codecs; one instantiation per K/V pair lives in attention_*.cu.
// A block handles one (query row, KV head, group chunk, split): it prepares the G query heads once
// (scaled, rotated for rotated K), scores a tile of keys with one thread per key (each cached element
// decoded once for all G heads), updates an online softmax, and accumulates Σ p·v with d/8 threads per
// key. The window splits read the f16 ring (unrotated). Partials (m, l, acc) are merged by the combine
// kernel in attention.cu, which also rotates V's accumulator back. Turbo K/V tiles of the compressed
// segment are staged whole into shared memory with cp.async, double-buffered (the next tile is in
// flight while this one is scored), so each tile costs one memory round trip instead of one per step.
#pragma once

#include <cuda_pipeline.h>

#include "backends/cuda/kv_device.cuh"

namespace kvant::cuda {

constexpr int kAttnThreads = 128, kAttnTile = 128, kAttnMaxG = 8, kAttnMinChunk = 64;

// Floats of dynamic shared memory the kernel needs for head_dim d.
inline size_t attention_smem_floats(int d) { return size_t(2 * kAttnMaxG * d + kAttnMaxG * kAttnTile + 64 + 3 * kAttnMaxG); }

__host__ __device__ constexpr bool kv_is_turbo(KvType t) {
  return t == KvType::TURBO_2B || t == KvType::TURBO_3B || t == KvType::TURBO_4B || t == KvType::TURBO_5B;
}

// Bytes of one staging buffer (a tile of kAttnTile vectors plus 16-byte alignment slack at both ends)
// for K and V; 0 = that operand is read in place. Two buffers each; everything stays under 48 KiB.
struct AttnStagePlan {
  int k_cap = 0, v_cap = 0;
  __host__ __device__ int bytes() const { return 2 * (k_cap + v_cap); }
};
__host__ __device__ inline AttnStagePlan attention_stage_plan(KvType tk, size_t k_bytes, KvType tv, size_t v_bytes,
                                                              int d) {
  constexpr int kLimit = 48 * 1024;
  const int floats_bytes = 4 * (2 * kAttnMaxG * d + kAttnMaxG * kAttnTile + 64 + 3 * kAttnMaxG);
  AttnStagePlan p;
  const int kc = (kAttnTile * int(k_bytes) + 32 + 15) / 16 * 16, vc = (kAttnTile * int(v_bytes) + 32 + 15) / 16 * 16;
  if (kv_is_turbo(tk) && floats_bytes + 2 * kc <= kLimit) p.k_cap = kc;
  if (kv_is_turbo(tv) && floats_bytes + p.bytes() + 2 * vc <= kLimit) p.v_cap = vc;
  return p;
}

// Starts async copies of the bytes of vectors [t0, t0 + n_t) at base (stride bytes apart) into dst, from
// the 16-byte boundary at or below the first byte; the first vector lands at dst + stage_offset(...).
__device__ __forceinline__ void stage_tile_async(uint8_t* dst, const uint8_t* base, size_t stride, int t0, int n_t) {
  const uint8_t* a0 = base + size_t(t0) * stride;
  const uint8_t* s0 = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(a0) & ~uintptr_t(15));
  const int n16 = int((a0 + size_t(n_t) * stride - s0 + 15) / 16);
  for (int i = threadIdx.x; i < n16; i += kAttnThreads) __pipeline_memcpy_async(dst + 16 * i, s0 + 16 * i, 16);
}
__device__ __forceinline__ int stage_offset(const uint8_t* base, size_t stride, int t0) {
  return int(reinterpret_cast<uintptr_t>(base + size_t(t0) * stride) & 15);
}

template <KvType T>
__device__ __forceinline__ void load_centroids(const KvTables& t, float* dst) {
  if constexpr (KvBits<T>::value > 0) {
    constexpr int n = 1 << KvBits<T>::value;
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = t.centroids[KvBits<T>::value - 2][i];
  }
}

// Scores of keys [t0, t0 + n_t) for G heads into s[g * kAttnTile + k] (-inf past n_t).
template <KvType KT>
__device__ __forceinline__ void score_tile(const uint8_t* base, size_t stride, int ring, int t0, int n_t, int d, int G,
                                           const float* q, const float* centroids, float* s) {
  const int k = threadIdx.x;
  float acc[kAttnMaxG];
#pragma unroll
  for (int g = 0; g < kAttnMaxG; ++g) acc[g] = 0.0f;
  if (k < n_t) {
    const int t = t0 + k;
    const uint8_t* vec = base + size_t(ring > 0 ? t % ring : t) * stride;
    for (int j8 = 0; j8 < d / 8; ++j8) {
      float kv[8];
      kv_decode8<KT>(vec, j8, centroids, kv);
#pragma unroll
      for (int g = 0; g < kAttnMaxG; ++g) {
        if (g < G) {
          const float* qg = q + g * d + 8 * j8;
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[g] += qg[e] * kv[e];
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < kAttnMaxG; ++g) {
    if (g < G) s[g * kAttnTile + k] = k < n_t ? acc[g] : -INFINITY;
  }
}

// acc[g][e] += Σ_k p[g][k] · v_k[8c + e] for this thread's keys k = kp, kp + n_kp, ...
template <KvType VT>
__device__ __forceinline__ void accumulate_tile(const uint8_t* base, size_t stride, int ring, int t0, int n_t, int G,
                                                int kp, int n_kp, int c, const float* p, const float* centroids,
                                                float (&acc)[kAttnMaxG][8]) {
  for (int k = kp; k < n_t; k += n_kp) {
    const int t = t0 + k;
    float v[8];
    kv_decode8<VT>(base + size_t(ring > 0 ? t % ring : t) * stride, c, centroids, v);
#pragma unroll
    for (int g = 0; g < kAttnMaxG; ++g) {
      if (g < G) {
        const float pg = p[g * kAttnTile + k];
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] += pg * v[e];
      }
    }
  }
}

template <KvType KT, KvType VT>
__global__ void __launch_bounds__(kAttnThreads, 1) attention_kernel(AttentionArgs a) {
  extern __shared__ __align__(16) float sm[];
  const int d = a.kv.head_dim, n_kv = a.kv.n_head_kv;
  const int g_total = a.n_head / n_kv;
  const int n_gchunks = (g_total + kAttnMaxG - 1) / kAttnMaxG;
  int bx = blockIdx.x;
  const int gchunk = bx % n_gchunks;
  bx /= n_gchunks;
  const int h = bx % n_kv, r = bx / n_kv;
  const int g0 = gchunk * kAttnMaxG, G = min(kAttnMaxG, g_total - g0);
  const int n_keys = a.positions[r] + 1;
  const int n_recent = a.kv.window > 0 ? min(a.kv.window, n_keys) : 0;
  const int n_old = n_keys - n_recent;
  const bool in_window = int(blockIdx.y) >= a.splits_main;
  const int split = in_window ? blockIdx.y - a.splits_main : blockIdx.y;
  const int n_splits = in_window ? a.splits_window : a.splits_main;
  const int seg_begin = in_window ? n_old : 0, seg_end = in_window ? n_keys : n_old;
  const int chunk = max((seg_end - seg_begin + n_splits - 1) / n_splits, kAttnMinChunk);
  const int begin = seg_begin + split * chunk, end = min(seg_end, begin + chunk);
  const int n_parts = a.splits_main + a.splits_window;
  const size_t head0 = size_t(r) * a.n_head + size_t(h) * g_total + g0;
  float* part = a.partial + (head0 * n_parts + blockIdx.y) * (d + 2);  // + g * n_parts * (d + 2)
  const size_t part_stride = size_t(n_parts) * (d + 2);
  if (begin >= end) {
    if (int(threadIdx.x) < G) {
      part[threadIdx.x * part_stride] = -INFINITY;
      part[threadIdx.x * part_stride + 1] = 0.0f;
    }
    return;
  }

  const AttnStagePlan plan = attention_stage_plan(KT, a.kv.k_bytes, VT, a.kv.v_bytes, d);
  uint8_t* const k_stage = reinterpret_cast<uint8_t*>(sm);  // [2][k_cap]
  uint8_t* const v_stage = k_stage + 2 * plan.k_cap;         // [2][v_cap]
  float* q_sh = reinterpret_cast<float*>(reinterpret_cast<uint8_t*>(sm) + plan.bytes());  // [G][d]
  float* red = q_sh + kAttnMaxG * d;               // [G][d]
  float* s_sh = red + kAttnMaxG * d;               // [G][kAttnTile]
  float* ck = s_sh + kAttnMaxG * kAttnTile;        // [32]
  float* cv = ck + 32;                             // [32]
  float* m_sh = cv + 32;                           // [G]
  float* l_sh = m_sh + kAttnMaxG;                  // [G]
  float* corr_sh = l_sh + kAttnMaxG;               // [G]
  const int tid = threadIdx.x;

  load_centroids<KT>(a.tables, ck);
  load_centroids<VT>(a.tables, cv);
  const float scale = 1.0f / sqrtf(float(d));
  for (int i = tid; i < G * d; i += kAttnThreads) q_sh[i] = a.q[head0 * d + i] * scale;
  for (int i = tid; i < G * d; i += kAttnThreads) red[i] = 0.0f;
  if (tid < kAttnMaxG) {
    m_sh[tid] = -INFINITY;
    l_sh[tid] = 0.0f;
  }
  __syncthreads();
  if (!in_window && a.kv.rotate_k) {
    for (int g = 0; g < G; ++g) rotate_shared(q_sh + g * d, d, a.tables.signs, false, tid, kAttnThreads, BlockSync{});
  }

  const uint8_t *kbase, *vbase;
  size_t kstride, vstride;
  int ring;
  if (in_window) {
    kbase = a.layer.k_win + size_t(h) * a.kv.ring_slots * 2 * d;
    vbase = a.layer.v_win + size_t(h) * a.kv.ring_slots * 2 * d;
    kstride = vstride = 2 * size_t(d);
    ring = a.kv.ring_slots;
  } else {
    kbase = a.layer.k + size_t(h) * a.kv.n_ctx * a.kv.k_bytes;
    vbase = a.layer.v + size_t(h) * a.kv.n_ctx * a.kv.v_bytes;
    kstride = a.kv.k_bytes;
    vstride = a.kv.v_bytes;
    ring = 0;
  }
  const int tpk = d / 8;                          // threads per key in the accumulation
  const int n_kp = max(1, kAttnThreads / tpk);    // keys accumulated in parallel
  const int kp = tid / tpk, c = tid % tpk;
  const bool acc_thread = kp < n_kp && tpk <= kAttnThreads;
  float acc[kAttnMaxG][8];
#pragma unroll
  for (int g = 0; g < kAttnMaxG; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.0f;

  const int warp = tid / 32, lane = tid % 32;
  const bool stage_k = !in_window && plan.k_cap > 0, stage_v = !in_window && plan.v_cap > 0;
  auto stage = [&](int t0, int buf) {
    const int n_t = min(kAttnTile, end - t0);
    if (stage_k) stage_tile_async(k_stage + buf * plan.k_cap, kbase, kstride, t0, n_t);
    if (stage_v) stage_tile_async(v_stage + buf * plan.v_cap, vbase, vstride, t0, n_t);
  };
  int buf = 0;
  if (stage_k || stage_v) {
    stage(begin, 0);
    __pipeline_commit();
  }
  for (int t0 = begin; t0 < end; t0 += kAttnTile, buf ^= 1) {
    const int n_t = min(kAttnTile, end - t0);
    if (stage_k || stage_v) {
      if (t0 + kAttnTile < end) stage(t0 + kAttnTile, buf ^ 1);  // that buffer was freed by the last barrier
      __pipeline_commit();
      __pipeline_wait_prior(1);  // this tile's copies have landed (for this thread)
      __syncthreads();
    }
    if (in_window) {
      score_tile<KvType::F16>(kbase, kstride, ring, t0, n_t, d, G, q_sh, ck, s_sh);
    } else if (stage_k) {
      const uint8_t* staged = k_stage + buf * plan.k_cap + stage_offset(kbase, kstride, t0);
      score_tile<KT>(staged, kstride, 0, 0, n_t, d, G, q_sh, ck, s_sh);
    } else {
      score_tile<KT>(kbase, kstride, ring, t0, n_t, d, G, q_sh, ck, s_sh);
    }
    __syncthreads();
    for (int g = warp; g < G; g += kAttnThreads / 32) {  // online softmax, one warp per head
      float* s = s_sh + g * kAttnTile;
      float mt = -INFINITY;
      for (int k = lane; k < kAttnTile; k += 32) mt = fmaxf(mt, s[k]);
      mt = warp_max(mt);
      const float m_old = m_sh[g];
      const float m_new = fmaxf(m_old, mt);
      float sum = 0.0f;
      for (int k = lane; k < kAttnTile; k += 32) {
        const float p = k < n_t ? expf(s[k] - m_new) : 0.0f;
        s[k] = p;
        sum += p;
      }
      sum = warp_sum(sum);
      if (lane == 0) {
        const float corr = expf(m_old - m_new);
        corr_sh[g] = corr;
        l_sh[g] = l_sh[g] * corr + sum;
        m_sh[g] = m_new;
      }
    }
    __syncthreads();
    if (acc_thread) {
#pragma unroll
      for (int g = 0; g < kAttnMaxG; ++g) {
        if (g < G) {
          const float corr = corr_sh[g];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[g][e] *= corr;
        }
      }
      if (in_window) {
        accumulate_tile<KvType::F16>(vbase, vstride, ring, t0, n_t, G, kp, n_kp, c, s_sh, cv, acc);
      } else if (stage_v) {
        const uint8_t* staged = v_stage + buf * plan.v_cap + stage_offset(vbase, vstride, t0);
        accumulate_tile<VT>(staged, vstride, 0, 0, n_t, G, kp, n_kp, c, s_sh, cv, acc);
      } else {
        accumulate_tile<VT>(vbase, vstride, ring, t0, n_t, G, kp, n_kp, c, s_sh, cv, acc);
      }
    }
    __syncthreads();
  }
  // Sum the key-parallel partial accumulators (in a fixed order: deterministic).
  for (int i = 0; i < n_kp; ++i) {
    if (acc_thread && kp == i) {
#pragma unroll
      for (int g = 0; g < kAttnMaxG; ++g) {
        if (g < G) {
#pragma unroll
          for (int e = 0; e < 8; ++e) red[g * d + 8 * c + e] += acc[g][e];
        }
      }
    }
    __syncthreads();
  }
  for (int i = tid; i < G * d; i += kAttnThreads) part[(i / d) * part_stride + 2 + i % d] = red[i];
  if (tid < G) {
    part[tid * part_stride] = m_sh[tid];
    part[tid * part_stride + 1] = l_sh[tid];
  }
}

template <KvType KT>
void launch_attention_k(const AttentionArgs& a, dim3 grid, size_t smem, cudaStream_t stream) {
  smem += attention_stage_plan(a.kv.type_k, a.kv.k_bytes, a.kv.type_v, a.kv.v_bytes, a.kv.head_dim).bytes();
  switch (a.kv.type_v) {
#define KVANT_V_CASE(V)                                                                                         \
  case KvType::V:                                                                                               \
    attention_kernel<KT, KvType::V><<<grid, kAttnThreads, smem, stream>>>(a);                                   \
    break;
    KVANT_V_CASE(F32) KVANT_V_CASE(F16) KVANT_V_CASE(Q8_0) KVANT_V_CASE(Q4_0)
    KVANT_V_CASE(TURBO_2B) KVANT_V_CASE(TURBO_3B) KVANT_V_CASE(TURBO_4B) KVANT_V_CASE(TURBO_5B)
#undef KVANT_V_CASE
  }
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
