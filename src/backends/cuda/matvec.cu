// backends/cuda/matvec.cu — weight matrix × activation rows for every natively read weight format, and
// the embedding lookup. Each warp owns one output row: it streams the row's blocks through shared
// memory in 16-byte loads (each block read once), decodes 32-element units and multiplies with up to
// NR activation rows. Optional fused input RMSNorm and epilogues (residual add, SwiGLU pair).
#include "backends/cuda/kernels.h"
#include "backends/cuda/weight_formats.cuh"

namespace kvant::cuda {
namespace {

constexpr int kWarps = 4;  // output rows per block

template <GgmlType T>
__host__ __device__ constexpr int stage_bytes() {
  using F = WFmt<T>;
  return 32 * F::kUnitsPerLane / (F::kQK / 32) * F::kBytes;
}

// Copies n bytes from global src to shared dst (16-byte aligned), the warp cooperating.
__device__ __forceinline__ void stage_copy(const uint8_t* src, uint8_t* dst, int n, int lane) {
  if (((reinterpret_cast<uintptr_t>(src) | uintptr_t(n)) & 15) == 0) {
    const uint4* s = reinterpret_cast<const uint4*>(src);
    uint4* d = reinterpret_cast<uint4*>(dst);
    for (int i = lane; i < n / 16; i += 32) d[i] = __ldg(s + i);
  } else {
    for (int i = lane; i < n; i += 32) dst[i] = src[i];
  }
}

// Element i of a float-format row (the tail past the last whole 32-element unit).
template <GgmlType T>
__device__ __forceinline__ float float_elem(const uint8_t* row, int i) {
  if constexpr (T == GgmlType::F32) return reinterpret_cast<const float*>(row)[i];
  if constexpr (T == GgmlType::F16) return half_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  if constexpr (T == GgmlType::BF16) return bf16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  return 0.0f;
}

// acc[r] += W_row · xin[r] over one whole row, the warp cooperating (lane partial sums).
template <GgmlType T, int NR>
__device__ __forceinline__ void row_dot(const uint8_t* wrow, int n_in, size_t row_bytes, const float* x, int nr,
                                        const float* norm_w, const float* norm_scale, uint8_t* stage,
                                        int lane, float* acc) {
  using F = WFmt<T>;
  constexpr int kUnitsPerBlock = F::kQK / 32;
  constexpr int kStageUnits = 32 * F::kUnitsPerLane;
  constexpr int kStageBytes = stage_bytes<T>();
  const int n_units = n_in / 32;
  for (int unit0 = 0; unit0 < n_units; unit0 += kStageUnits) {
    const size_t off = size_t(unit0 / kUnitsPerBlock) * F::kBytes;
    const int bytes = int(min(size_t(kStageBytes), row_bytes - off));
    __syncwarp();
    stage_copy(wrow + off, stage, bytes, lane);
    __syncwarp();
#pragma unroll
    for (int t = 0; t < F::kUnitsPerLane; ++t) {
      const int local = lane + 32 * t;
      const int unit = unit0 + local;
      if (unit < n_units) {
        float w[32];
        F::unit(stage + (local / kUnitsPerBlock) * F::kBytes, local % kUnitsPerBlock, w);
        const int base = unit * 32;
#pragma unroll
        for (int r = 0; r < NR; ++r) {
          if (r < nr) {
            const float4* xr = reinterpret_cast<const float4*>(x + size_t(r) * n_in + base);
            float s = 0.0f;
            if (n_in % 4 != 0) {  // rows not 16-byte aligned: scalar loads
              const float* xs = x + size_t(r) * n_in + base;
              for (int e = 0; e < 32; ++e) s += w[e] * (norm_w ? xs[e] * norm_scale[r] * norm_w[base + e] : xs[e]);
            } else if (norm_w) {
              const float4* nw = reinterpret_cast<const float4*>(norm_w + base);
#pragma unroll
              for (int e = 0; e < 8; ++e) {
                const float4 xv = xr[e], gv = nw[e];
                s += w[4 * e] * (xv.x * norm_scale[r] * gv.x) + w[4 * e + 1] * (xv.y * norm_scale[r] * gv.y) +
                     w[4 * e + 2] * (xv.z * norm_scale[r] * gv.z) + w[4 * e + 3] * (xv.w * norm_scale[r] * gv.w);
              }
            } else {
#pragma unroll
              for (int e = 0; e < 8; ++e) {
                const float4 xv = xr[e];
                s += w[4 * e] * xv.x + w[4 * e + 1] * xv.y + w[4 * e + 2] * xv.z + w[4 * e + 3] * xv.w;
              }
            }
            acc[r] += s;
          }
        }
      }
    }
  }
  if constexpr (F::kQK == 32) {  // float formats may end in a partial unit
    for (int i = n_units * 32 + lane; i < n_in; i += 32) {
      const float wv = float_elem<T>(wrow, i);
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        if (r < nr) {
          const float xv = x[size_t(r) * n_in + i];
          acc[r] += wv * (norm_w ? xv * norm_scale[r] * norm_w[i] : xv);
        }
      }
    }
  }
}

template <GgmlType T, int NR>
__global__ void __launch_bounds__(kWarps * 32) matvec_kernel(MatvecArgs a, int total_out) {
  constexpr int kStageBytes = (stage_bytes<T>() + 15) / 16 * 16;
  __shared__ __align__(16) uint8_t stages[kWarps][kStageBytes];
  __shared__ float norm_scale[NR];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.y * NR;
  const int nr = min(NR, a.n_rows - row0);
  const int n_in = a.w[0].n_in;
  const float* x = a.x + size_t(row0) * n_in;
  if (a.norm_w) {
    for (int r = warp; r < nr; r += kWarps) {
      double sum = 0.0;  // the CPU sums squares in double too
      for (int i = lane; i < n_in; i += 32) sum += double(x[size_t(r) * n_in + i]) * double(x[size_t(r) * n_in + i]);
      sum = warp_sum(sum);
      if (lane == 0) norm_scale[r] = 1.0f / sqrtf(float(sum / n_in) + a.eps);
    }
  }
  __syncthreads();
  int j = blockIdx.x * kWarps + warp;
  if (j >= total_out) return;
  const bool swiglu = a.epilogue == MatvecEpilogue::SwiGlu;
  int k = 0;
  if (!swiglu) {
    while (k + 1 < a.n_w && j >= a.w[k].n_out) j -= a.w[k++].n_out;
  }
  float acc[NR], acc_up[NR];
#pragma unroll
  for (int r = 0; r < NR; ++r) acc[r] = acc_up[r] = 0.0f;
  const DeviceMatrix& m = a.w[k];
  row_dot<T, NR>(m.data + size_t(j) * m.row_bytes, n_in, m.row_bytes, x, nr, a.norm_w, norm_scale, stages[warp],
                 lane, acc);
  if (swiglu) {
    const DeviceMatrix& mu = a.w[1];
    row_dot<T, NR>(mu.data + size_t(j) * mu.row_bytes, n_in, mu.row_bytes, x, nr, a.norm_w, norm_scale,
                   stages[warp], lane, acc_up);
  }
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    acc[r] = warp_sum(acc[r]);
    if (swiglu) acc_up[r] = warp_sum(acc_up[r]);
  }
  if (lane == 0) {
    const int n_out = m.n_out;
#pragma unroll
    for (int r = 0; r < NR; ++r) {
      if (r >= nr) break;
      float* y = a.y[k] + size_t(row0 + r) * n_out + j;
      switch (a.epilogue) {
        case MatvecEpilogue::Store: *y = acc[r]; break;
        case MatvecEpilogue::AddInto: *y += acc[r]; break;
        case MatvecEpilogue::SwiGlu: *y = acc[r] / (1.0f + expf(-acc[r])) * acc_up[r]; break;
      }
    }
  }
}

template <GgmlType T>
__global__ void embed_kernel(DeviceMatrix table, const int32_t* tokens, float* out) {
  using F = WFmt<T>;
  constexpr int kUnitsPerBlock = F::kQK / 32;
  const int t = blockIdx.x;
  const uint8_t* row = table.data + size_t(tokens[t]) * table.row_bytes;
  float* o = out + size_t(t) * table.n_in;
  for (int unit = threadIdx.x; unit < table.n_in / 32; unit += blockDim.x) {
    float w[32];
    F::unit(row + size_t(unit / kUnitsPerBlock) * F::kBytes, unit % kUnitsPerBlock, w);
#pragma unroll
    for (int e = 0; e < 32; ++e) o[unit * 32 + e] = w[e];
  }
  if constexpr (F::kQK == 32) {
    for (int i = table.n_in / 32 * 32 + threadIdx.x; i < table.n_in; i += blockDim.x) o[i] = float_elem<T>(row, i);
  }
}

template <GgmlType T, int NR>
void launch_typed(const MatvecArgs& a, cudaStream_t stream) {
  int total = 0;
  if (a.epilogue == MatvecEpilogue::SwiGlu) {
    total = a.w[0].n_out;
  } else {
    for (int k = 0; k < a.n_w; ++k) total += a.w[k].n_out;
  }
  const dim3 grid(ceil_div(total, kWarps), ceil_div(a.n_rows, NR));
  matvec_kernel<T, NR><<<grid, kWarps * 32, 0, stream>>>(a, total);
  KVANT_CUDA_LAUNCHED();
}

template <GgmlType T>
void launch_rows(const MatvecArgs& a, cudaStream_t stream) {
  if (a.n_rows >= 8) return launch_typed<T, 8>(a, stream);
  if (a.n_rows >= 4) return launch_typed<T, 4>(a, stream);
  if (a.n_rows >= 2) return launch_typed<T, 2>(a, stream);
  launch_typed<T, 1>(a, stream);
}

#define KVANT_WEIGHT_TYPES(X) X(F32) X(F16) X(BF16) X(Q8_0) X(Q4_0) X(Q4_1) X(Q4_K) X(Q5_K) X(Q6_K)

}  // namespace

bool matvec_supports(GgmlType type) {
  switch (type) {
#define KVANT_CASE(T) case GgmlType::T:
    KVANT_WEIGHT_TYPES(KVANT_CASE)
#undef KVANT_CASE
    return true;
    default: return false;
  }
}

void launch_matvec(const MatvecArgs& a, cudaStream_t stream) {
  switch (a.w[0].type) {
#define KVANT_CASE(T) case GgmlType::T: return launch_rows<GgmlType::T>(a, stream);
    KVANT_WEIGHT_TYPES(KVANT_CASE)
#undef KVANT_CASE
    default: std::fprintf(stderr, "kvant cuda: matvec: unsupported weight type %u\n", unsigned(a.w[0].type)); std::abort();
  }
}

void launch_embed(const DeviceMatrix& table, const int32_t* tokens, int n, float* out, cudaStream_t stream) {
  switch (table.type) {
#define KVANT_CASE(T) \
  case GgmlType::T: embed_kernel<GgmlType::T><<<n, 128, 0, stream>>>(table, tokens, out); break;
    KVANT_WEIGHT_TYPES(KVANT_CASE)
#undef KVANT_CASE
    default: std::fprintf(stderr, "kvant cuda: embed: unsupported type %u\n", unsigned(table.type)); std::abort();
  }
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
