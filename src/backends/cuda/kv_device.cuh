// backends/cuda/kv_device.cuh — the KV codecs on the device, byte-compatible with src/kv/kv_codec_*.cpp:
// decode of 8 consecutive elements of a cached vector (attention reads blocks in place), warp-level
// encode of one head vector (same rounding as the CPU codecs), the H·S rotation in shared memory,
// and RoPE of one head vector. Block layouts: docs/FORMATS.md (KV-cache codecs).
#pragma once

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels.h"

namespace kvant::cuda {

__host__ __device__ constexpr bool kv_is_turbo(KvType t) {
  return t == KvType::TURBO_2B || t == KvType::TURBO_3B || t == KvType::TURBO_4B || t == KvType::TURBO_5B;
}

// Device layout of a turbo half (K or V) of one layer: every head's code rows first, [n_head_kv][n_ctx] rows
// of vec_bytes − 2 bytes (d·bits/8), then every head's f16 scales, [n_head_kv][n_ctx]. The host keeps each
// vector as [scale, codes] (2 + d·bits/8 bytes, so its codes sit at 2-byte alignment); apart, the code rows
// of turbo_kv_4b at d = 64 / 128 are 32 / 64 bytes and the tensor-core attention reads them with aligned
// 8- and 16-byte loads. The other types keep the host layout, [n_head_kv][n_ctx] vectors.
struct TurboHalf {
  uint8_t* codes;
  uint8_t* scales;
  size_t code_bytes;
  int n_ctx;
  __host__ __device__ TurboHalf(uint8_t* half, int n_head_kv, int n_ctx_, size_t vec_bytes)
      : codes(half), scales(half + size_t(n_head_kv) * n_ctx_ * (vec_bytes - 2)), code_bytes(vec_bytes - 2),
        n_ctx(n_ctx_) {}
  __host__ __device__ uint8_t* code_row(int h, int pos) const { return codes + (size_t(h) * n_ctx + pos) * code_bytes; }
  __host__ __device__ uint8_t* scale_at(int h, int pos) const { return scales + (size_t(h) * n_ctx + pos) * 2; }
};

template <KvType T> struct KvBits { static constexpr int value = 0; };
template <> struct KvBits<KvType::TURBO_2B> { static constexpr int value = 2; };
template <> struct KvBits<KvType::TURBO_3B> { static constexpr int value = 3; };
template <> struct KvBits<KvType::TURBO_4B> { static constexpr int value = 4; };
template <> struct KvBits<KvType::TURBO_5B> { static constexpr int value = 5; };

// Eight f16 values, as one 16-byte load holds them, to floats.
__device__ __forceinline__ void f16x8_to_float(const uint4& raw, float* o) {
  const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 f = __half22float2(h[k]);
    o[2 * k] = f.x;
    o[2 * k + 1] = f.y;
  }
}

// o[0..8) = elements 8*j8 .. 8*j8+7 of the encoded vector at v (f32, f16, q8_0, q4_0).
template <KvType T>
__device__ __forceinline__ void kv_decode8(const uint8_t* v, int j8, float* o) {
  if constexpr (T == KvType::F32) {
    const float4* p = reinterpret_cast<const float4*>(v) + 2 * j8;
    const float4 a = p[0], b = p[1];
    o[0] = a.x; o[1] = a.y; o[2] = a.z; o[3] = a.w; o[4] = b.x; o[5] = b.y; o[6] = b.z; o[7] = b.w;
  } else if constexpr (T == KvType::F16) {
    f16x8_to_float(*(reinterpret_cast<const uint4*>(v) + j8), o);
  } else if constexpr (T == KvType::Q8_0) {
    const uint8_t* b = v + (j8 / 4) * 34;
    const float d = half_bits_to_float(load_u16(b));
    const uint8_t* q = b + 2 + 8 * (j8 % 4);
#pragma unroll
    for (int k = 0; k < 8; ++k) o[k] = d * float(int8_t(q[k]));
  } else if constexpr (T == KvType::Q4_0) {
    const uint8_t* b = v + (j8 / 4) * 18;
    const float d = half_bits_to_float(load_u16(b));
    const int part = j8 % 4;
    const uint8_t* q = b + 2 + 8 * (part % 2);
    const int shift = part < 2 ? 0 : 4;
#pragma unroll
    for (int k = 0; k < 8; ++k) o[k] = d * float(((q[k] >> shift) & 0xF) - 8);
  } else {
    static_assert(!kv_is_turbo(T), "turbo vectors are staged (TurboHalf layout), not decoded in place");
  }
}

// ---- rotation x' = H·S·x/√m per power-of-two sub-block (kv/hadamard.cpp), in shared memory ----

// In-place unnormalised FWHT of n values, `n_threads` threads starting at thread `t` cooperating;
// sync() is the matching barrier (__syncwarp or __syncthreads).
template <typename Sync>
__device__ __forceinline__ void fwht_shared(float* x, int n, int t, int n_threads, Sync sync) {
  for (int len = 1; len < n; len <<= 1) {
    for (int p = t; p < n / 2; p += n_threads) {
      const int i = ((p & ~(len - 1)) << 1) | (p & (len - 1));  // (p / len)·2·len + p % len, len a power of 2
      const float a = x[i], b = x[i + len];
      x[i] = a + b;
      x[i + len] = a - b;
    }
    sync();
  }
}

// Rotates (inverse = false) or un-rotates (inverse = true) the d values at x in place.
template <typename Sync>
__device__ void rotate_shared(float* x, int d, const float* signs, bool inverse, int t, int n_threads, Sync sync) {
  if (!inverse) {
    for (int i = t; i < d; i += n_threads) x[i] *= signs[i];
    sync();
  }
  int offset = 0;
  for (int bit = 10; bit >= 0; --bit) {
    const int m = 1 << bit;
    if (!(d & m)) continue;
    fwht_shared(x + offset, m, t, n_threads, sync);
    const float norm = 1.0f / sqrtf(float(m));
    for (int i = t; i < m; i += n_threads) x[offset + i] *= norm;
    sync();
    offset += m;
  }
  if (inverse) {
    for (int i = t; i < d; i += n_threads) x[i] *= signs[i];
    sync();
  }
}

struct WarpSync {
  __device__ void operator()() const { __syncwarp(); }
};
struct BlockSync {
  __device__ void operator()() const { __syncthreads(); }
};

// ---- RoPE of one head vector in shared memory (cpu_ops.cpp rope: angles by repeated multiplication) ----
// cos and sin of pair i's angle whose θ_i = pos·freq_scale·theta_scale^i (i successive products, the CPU's
// rounding) the caller has formed.
__device__ inline float2 rope_cos_sin(float theta, const RopeParams& p, int i) {
  const float t = p.freq_factors ? theta / p.freq_factors[i] : theta;
  return make_float2(cosf(t), sinf(t));
}
__device__ inline float rope_theta_scale(const RopeParams& p) { return powf(p.freq_base, -2.0f / float(p.rope_dim)); }

// Rotates pair i of x (elements i and i + half for NeoX, else 2i and 2i + 1) by the angle whose {cos, sin} is cs.
__device__ __forceinline__ void rope_pair(float* x, int i, int half, bool neox, float2 cs) {
  const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
  const float x0 = x[i0], x1 = x[i1];
  x[i0] = x0 * cs.x - x1 * cs.y;
  x[i1] = x0 * cs.y + x1 * cs.x;
}

// Rotates x's pairs by the angles of position pos: from p.table when set (decode, bit-identical), else each
// lane forms its θ_i, a lane's second pair (i + 32) continuing its own product instead of starting again.
__device__ inline void rope_shared(float* x, int pos, const RopeParams& p, int lane) {
  const int half = p.rope_dim / 2;
  const float theta_scale = rope_theta_scale(p);
  float theta = float(pos) * p.freq_scale;
  int powers = 0;
  for (int i = lane; i < half; i += 32) {
    float c, s;
    if (p.table != nullptr) {
      const float2 cs = p.table[i];
      c = cs.x, s = cs.y;
    } else {
      for (; powers < i; ++powers) theta *= theta_scale;
      const float2 cs = rope_cos_sin(theta, p, i);
      c = cs.x, s = cs.y;
    }
    rope_pair(x, i, half, p.neox, make_float2(c, s));
  }
  __syncwarp();
}

// A lane's {cos, sin} of pairs lane, lane + 32, ... (kPairs of them, 32·kPairs ≥ rope_dim / 2) from a
// decode step's RoPE table (RopeParams::table set), loaded together with the vectors they rotate so that
// the rotation does not wait for them; rotate() is rope_shared with these angles, bit for bit.
template <int kPairs>
struct RopeLaneAngles {
  float2 cs[kPairs];
  __device__ void load(const RopeParams& p, int lane) {
#pragma unroll
    for (int k = 0; k < kPairs; ++k) {
      const int i = lane + 32 * k;
      cs[k] = i < p.rope_dim / 2 ? p.table[i] : make_float2(1.0f, 0.0f);
    }
  }
  __device__ void rotate(float* x, const RopeParams& p, int lane) const {
    const int half = p.rope_dim / 2;
#pragma unroll
    for (int k = 0; k < kPairs; ++k)
      if (lane + 32 * k < half) rope_pair(x, lane + 32 * k, half, p.neox, cs[k]);
    __syncwarp();
  }
};

// ---- warp-level encode of one head vector x[d] (shared memory, clobbered) into dst ----

// f32, f16, q8_0 and q4_0 (turbo_kv goes through turbo_encode.cuh). idx: shared scratch of d ints.
// Every lane of the warp must call this.
__device__ inline void warp_encode(KvType type, bool rotate, int d, float* x, int* idx, uint8_t* dst,
                                   const KvTables& tables, int lane) {
  if (rotate) rotate_shared(x, d, tables.signs, false, lane, 32, WarpSync{});
  switch (type) {
    case KvType::F32:
      for (int i = lane; i < d; i += 32) reinterpret_cast<float*>(dst)[i] = x[i];
      break;
    case KvType::F16:
      for (int i = lane; i < d; i += 32) reinterpret_cast<uint16_t*>(dst)[i] = float_to_half_bits(x[i]);
      break;
    case KvType::Q8_0:
      for (int b = 0; b < d / 32; ++b) {
        const float v = x[32 * b + lane];
        const float amax = warp_max(fabsf(v));
        const float scale = amax / 127.0f;
        const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
        uint8_t* blk = dst + 34 * b;
        blk[2 + lane] = uint8_t(int8_t(roundf(v * inv)));
        if (lane == 0) store_half(blk, scale);
      }
      break;
    case KvType::Q4_0:
      for (int b = 0; b < d / 32; ++b) {
        const float v = x[32 * b + lane];
        // Largest magnitude, first index on ties (as the CPU's strict '<' scan).
        float best = fabsf(v);
        int best_lane = lane;
        for (int o = 16; o > 0; o >>= 1) {
          const float ob = __shfl_xor_sync(0xffffffffu, best, o);
          const int ol = __shfl_xor_sync(0xffffffffu, best_lane, o);
          if (ob > best || (ob == best && ol < best_lane)) { best = ob; best_lane = ol; }
        }
        const float max = __shfl_sync(0xffffffffu, v, best_lane);
        const float scale = max / -8.0f;
        const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
        const float hi_v = __shfl_down_sync(0xffffffffu, v, 16);
        uint8_t* blk = dst + 18 * b;
        if (lane == 0) store_half(blk, scale);
        if (lane < 16) {
          const int lo = min(15, int(v * inv + 8.5f));
          const int hi = min(15, int(hi_v * inv + 8.5f));
          blk[2 + lane] = uint8_t(lo | (hi << 4));
        }
      }
      break;
    default:  // turbo_kv_b is encoded by the multi-warp kernel in kv_write.cu (one warp per starting scale)
      __trap();
  }
  __syncwarp();
}

// Stores one token's K or V head vector h (roped, in the warp's shared scratch x[d]; clobbered; idx: d
// ints, block: 4d bytes of shared scratch) at cell pos of a layer: the f16 window ring when the cache has
// one; then, unless window_only, the stage of a deferred turbo encode (turbo types: stage must be set,
// [2][n_head_kv][d], K then V) or the encoded cell (the other types). Every lane of the warp calls it.
__device__ inline void store_token_vector(const DeviceKvConfig& kv, const DeviceKvLayer& layer,
                                          const KvTables& tables, bool window_only, float* stage, bool is_k,
                                          int h, int pos, float* x, int* idx, uint8_t* block, int lane) {
  const int d = kv.head_dim;
  if (kv.window > 0) {
    uint8_t* ring = is_k ? layer.k_win : layer.v_win;
    uint16_t* w = reinterpret_cast<uint16_t*>(ring + (size_t(h) * kv.ring_slots + size_t(pos) % kv.ring_slots) * 2 * d);
    for (int i = lane; i < d; i += 32) w[i] = float_to_half_bits(x[i]);
  }
  if (window_only) return;
  const KvType type = is_k ? kv.type_k : kv.type_v;
  if (kv_is_turbo(type)) {
    float* staged = stage + (size_t(is_k ? 0 : 1) * kv.n_head_kv + h) * d;
    for (int i = lane; i < d; i += 32) staged[i] = x[i];
    return;
  }
  const size_t bytes = is_k ? kv.k_bytes : kv.v_bytes;
  uint8_t* dst = (is_k ? layer.k : layer.v) + (size_t(h) * kv.n_ctx + size_t(pos)) * bytes;
  // Encode into shared memory, then copy the block out in one pass of the warp.
  warp_encode(type, is_k ? kv.rotate_k : kv.rotate_v, d, x, idx, block, tables, lane);
  for (size_t i = lane; i < bytes; i += 32) dst[i] = block[i];
}

}  // namespace kvant::cuda
