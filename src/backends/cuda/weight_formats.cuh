// backends/cuda/weight_formats.cuh — device decoders of the GGUF weight blocks the matvec kernels read
// in place (same element order as quant/*.cpp). A "unit" is 32 consecutive elements of a row; a block of
// QK elements holds QK/32 units. unit(b, u, out) writes the 32 values of unit u of the block at b (embed);
// quad(s, e) returns elements e..e+3 (e % 4 == 0) of a run of whole blocks staged at s (16-byte aligned),
// the matvec's per-lane step.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <type_traits>

#include "backends/cuda/cuda_common.cuh"
#include "quant/ggml_type.h"

namespace kvant::cuda {

// 4 bytes at a 2-byte aligned address (shared staging of 34/18/210-byte blocks), little-endian.
__device__ __forceinline__ uint32_t ld_u32_a2(const uint8_t* p) {
  const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
  return uint32_t(h[0]) | (uint32_t(h[1]) << 16);
}
__device__ __forceinline__ uint32_t ld_u32_a4(const uint8_t* p) { return *reinterpret_cast<const uint32_t*>(p); }
__device__ __forceinline__ float ld_half_a2(const uint8_t* p) {
  return half_bits_to_float(*reinterpret_cast<const uint16_t*>(p));
}
// Byte k of v as a signed / unsigned value.
__device__ __forceinline__ float s8f(uint32_t v, int k) { return float(int8_t(v >> (8 * k))); }

template <GgmlType T> struct WFmt;

template <> struct WFmt<GgmlType::F32> {
  static constexpr int kQK = 32, kBytes = 128, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) { return *reinterpret_cast<const float4*>(s + 4 * e); }
  __device__ static void unit(const uint8_t* b, int, float* o) {
    const float* p = reinterpret_cast<const float*>(b);
#pragma unroll
    for (int j = 0; j < 32; ++j) o[j] = p[j];
  }
};

template <> struct WFmt<GgmlType::F16> {
  static constexpr int kQK = 32, kBytes = 64, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint2 v = *reinterpret_cast<const uint2*>(s + 2 * e);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&v.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&v.y));
    return make_float4(a.x, a.y, b.x, b.y);
  }
  __device__ static void unit(const uint8_t* b, int, float* o) {
    const __half2* p = reinterpret_cast<const __half2*>(b);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const float2 f = __half22float2(p[j]);
      o[2 * j] = f.x;
      o[2 * j + 1] = f.y;
    }
  }
};

template <> struct WFmt<GgmlType::BF16> {
  static constexpr int kQK = 32, kBytes = 64, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint2 v = *reinterpret_cast<const uint2*>(s + 2 * e);
    return make_float4(__uint_as_float(v.x << 16), __uint_as_float(v.x & 0xFFFF0000u), __uint_as_float(v.y << 16),
                       __uint_as_float(v.y & 0xFFFF0000u));
  }
  __device__ static void unit(const uint8_t* b, int, float* o) {
    const uint32_t* p = reinterpret_cast<const uint32_t*>(b);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      o[2 * j] = __uint_as_float(p[j] << 16);
      o[2 * j + 1] = __uint_as_float(p[j] & 0xFFFF0000u);
    }
  }
};

// x = d * q
template <> struct WFmt<GgmlType::Q8_0> {
  static constexpr int kQK = 32, kBytes = 34, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint8_t* b = s + 34 * (e >> 5);
    const float d = ld_half_a2(b);
    const uint32_t q = ld_u32_a2(b + 2 + (e & 31));
    return make_float4(d * s8f(q, 0), d * s8f(q, 1), d * s8f(q, 2), d * s8f(q, 3));
  }
  __device__ static void unit(const uint8_t* b, int, float* o) {
    const float d = half_bits_to_float(load_u16(b));
#pragma unroll
    for (int j = 0; j < 32; ++j) o[j] = d * float(int8_t(b[2 + j]));
  }
};

// x = d * (q - 8); low nibbles: elements 0..15, high: 16..31
template <> struct WFmt<GgmlType::Q4_0> {
  static constexpr int kQK = 32, kBytes = 18, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint8_t* b = s + 18 * (e >> 5);
    const float d = ld_half_a2(b);
    const int i = e & 31;
    const uint32_t q = ld_u32_a2(b + 2 + (i & 15)) >> (4 * (i >> 4));
    return make_float4(d * float(int(q & 0xF) - 8), d * float(int((q >> 8) & 0xF) - 8),
                       d * float(int((q >> 16) & 0xF) - 8), d * float(int((q >> 24) & 0xF) - 8));
  }
  __device__ static void unit(const uint8_t* b, int, float* o) {
    const float d = half_bits_to_float(load_u16(b));
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const int q = b[2 + j];
      o[j] = float((q & 0xF) - 8) * d;
      o[j + 16] = float((q >> 4) - 8) * d;
    }
  }
};

// x = d * q + m
template <> struct WFmt<GgmlType::Q4_1> {
  static constexpr int kQK = 32, kBytes = 20, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint8_t* b = s + 20 * (e >> 5);
    const float d = ld_half_a2(b), m = ld_half_a2(b + 2);
    const int i = e & 31;
    const uint32_t q = ld_u32_a4(b + 4 + (i & 15)) >> (4 * (i >> 4));
    return make_float4(float(q & 0xF) * d + m, float((q >> 8) & 0xF) * d + m, float((q >> 16) & 0xF) * d + m,
                       float((q >> 24) & 0xF) * d + m);
  }
  __device__ static void unit(const uint8_t* b, int, float* o) {
    const float d = half_bits_to_float(load_u16(b)), m = half_bits_to_float(load_u16(b + 2));
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const int q = b[4 + j];
      o[j] = float(q & 0xF) * d + m;
      o[j + 16] = float(q >> 4) * d + m;
    }
  }
};

// Q4_K/Q5_K 6-bit scale and min of sub-block j (ggml's get_scale_min_k4).
__device__ __forceinline__ void k4_scale_min(int j, const uint8_t* q, int* sc, int* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// 144 bytes: d, dmin, scales[12], qs[128]; unit u = sub-block u.
template <> struct WFmt<GgmlType::Q4_K> {
  static constexpr int kQK = 256, kBytes = 144, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint8_t* b = s + 144 * (e >> 8);
    const int u = (e >> 5) & 7, j = e & 31;
    int sc, mn;
    k4_scale_min(u, b + 4, &sc, &mn);
    const float dl = ld_half_a2(b) * float(sc), ml = ld_half_a2(b + 2) * float(mn);
    const uint32_t q = ld_u32_a4(b + 16 + 32 * (u >> 1) + j) >> (4 * (u & 1));
    return make_float4(dl * float(q & 0xF) - ml, dl * float((q >> 8) & 0xF) - ml, dl * float((q >> 16) & 0xF) - ml,
                       dl * float((q >> 24) & 0xF) - ml);
  }
  __device__ static void unit(const uint8_t* b, int u, float* o) {
    int sc, m;
    k4_scale_min(u, b + 4, &sc, &m);
    const float dl = half_bits_to_float(load_u16(b)) * float(sc);
    const float ml = half_bits_to_float(load_u16(b + 2)) * float(m);
    const uint8_t* qs = b + 16 + 32 * (u / 2);
    const int shift = 4 * (u % 2);
#pragma unroll
    for (int j = 0; j < 32; ++j) o[j] = dl * float((qs[j] >> shift) & 0xF) - ml;
  }
};

// 176 bytes: d, dmin, scales[12], qh[32], qs[128].
template <> struct WFmt<GgmlType::Q5_K> {
  static constexpr int kQK = 256, kBytes = 176, kUnitsPerLane = 1;
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint8_t* b = s + 176 * (e >> 8);
    const int u = (e >> 5) & 7, j = e & 31;
    int sc, mn;
    k4_scale_min(u, b + 4, &sc, &mn);
    const float dl = ld_half_a2(b) * float(sc), ml = ld_half_a2(b + 2) * float(mn);
    const uint32_t q = ld_u32_a4(b + 48 + 32 * (u >> 1) + j) >> (4 * (u & 1));
    const uint32_t h = ld_u32_a4(b + 16 + j) >> u;
    float4 o;
    o.x = dl * float((q & 0xF) | ((h & 1) << 4)) - ml;
    o.y = dl * float(((q >> 8) & 0xF) | (((h >> 8) & 1) << 4)) - ml;
    o.z = dl * float(((q >> 16) & 0xF) | (((h >> 16) & 1) << 4)) - ml;
    o.w = dl * float(((q >> 24) & 0xF) | (((h >> 24) & 1) << 4)) - ml;
    return o;
  }
  __device__ static void unit(const uint8_t* b, int u, float* o) {
    int sc, m;
    k4_scale_min(u, b + 4, &sc, &m);
    const float dl = half_bits_to_float(load_u16(b)) * float(sc);
    const float ml = half_bits_to_float(load_u16(b + 2)) * float(m);
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + 48 + 32 * (u / 2);
    const int shift = 4 * (u % 2);
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int q = ((qs[j] >> shift) & 0xF) | (((qh[j] >> u) & 1) << 4);
      o[j] = dl * float(q) - ml;
    }
  }
};

// 210 bytes: ql[128], qh[64], int8 scales[16], d. Element i = 32u + j: half h = u/4, quarter k = u%4.
template <> struct WFmt<GgmlType::Q6_K> {
  static constexpr int kQK = 256, kBytes = 210, kUnitsPerLane = 2;  // 2 units a lane: 16-byte stages
  __device__ static float4 quad(const uint8_t* s, int e) {
    const uint8_t* b = s + 210 * (e >> 8);
    const int u = (e >> 5) & 7, j = e & 31, h = u >> 2, k = u & 3;
    const float d = ld_half_a2(b + 208) * float(int8_t(b[192 + 2 * u + (j >> 4)]));
    const uint32_t ql = ld_u32_a2(b + 64 * h + 32 * (k & 1) + j) >> (4 * (k >> 1));
    const uint32_t qh = ld_u32_a2(b + 128 + 32 * h + j) >> (2 * k);
    float4 o;
    o.x = d * float(int((ql & 0xF) | ((qh & 3) << 4)) - 32);
    o.y = d * float(int(((ql >> 8) & 0xF) | (((qh >> 8) & 3) << 4)) - 32);
    o.z = d * float(int(((ql >> 16) & 0xF) | (((qh >> 16) & 3) << 4)) - 32);
    o.w = d * float(int(((ql >> 24) & 0xF) | (((qh >> 24) & 3) << 4)) - 32);
    return o;
  }
  __device__ static void unit(const uint8_t* b, int u, float* o) {
    const float d = half_bits_to_float(load_u16(b + 208));
    const int h = u / 4, k = u % 4;
    const uint8_t* ql = b + 64 * h + 32 * (k & 1);
    const uint8_t* qh = b + 128 + 32 * h;
    const int8_t* scales = reinterpret_cast<const int8_t*>(b + 192);
    const int lshift = 4 * (k / 2), hshift = 2 * k;
    const float d0 = d * float(scales[2 * u]), d1 = d * float(scales[2 * u + 1]);
#pragma unroll
    for (int j = 0; j < 32; ++j) {
      const int q = (((ql[j] >> lshift) & 0xF) | (((qh[j] >> hshift) & 3) << 4)) - 32;
      o[j] = (j < 16 ? d0 : d1) * float(q);
    }
  }
};

// Calls f(std::integral_constant<GgmlType, T>{}) with T = type, for the formats WFmt decodes (the prefill
// GEMMs' type dispatch). Callers check support first, so another type is a programmer error: the message
// names the caller and the process aborts.
template <class F>
void with_weight_format(GgmlType type, const char* caller, F&& f) {
  switch (type) {
#define KVANT_CASE(T) \
  case GgmlType::T: return f(std::integral_constant<GgmlType, GgmlType::T>{});
    KVANT_CASE(F32) KVANT_CASE(F16) KVANT_CASE(BF16) KVANT_CASE(Q8_0) KVANT_CASE(Q4_0) KVANT_CASE(Q4_1)
    KVANT_CASE(Q4_K) KVANT_CASE(Q5_K) KVANT_CASE(Q6_K)
#undef KVANT_CASE
    default:
      std::fprintf(stderr, "kvant cuda: %s: unsupported weight type %u\n", caller, unsigned(type));
      std::abort();
  }
}

}  // namespace kvant::cuda
