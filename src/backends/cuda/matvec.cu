// backends/cuda/matvec.cu — weight matrix × activation rows for every natively read weight format, and
// the embedding lookup. Each warp owns one output row and walks it in tiles of whole blocks (~2 KB): the
// lanes load a tile with 16-byte streaming loads into registers (the next tile is in flight while the
// current one is decoded from shared memory), then each lane decodes 4 consecutive elements per 128-element
// step, so activation reads are coalesced float4s. Fused input RMSNorm (its scale applied to the sums) and
// epilogues (residual add, SwiGLU pair). Quantised formats with 16-byte aligned rows take the int8 dp4a
// path of matvec_q8.cuh instead; this float kernel serves F32/F16/BF16 and the rest.
#include "backends/cuda/kernels.h"
#include "backends/cuda/kv_device.cuh"
#include "backends/cuda/gemm_f16.h"
#include "backends/cuda/matmul_tc.h"
#include "backends/cuda/matvec_q8.cuh"
#include "backends/cuda/weight_formats.cuh"

#include <algorithm>
#include <cstdlib>

namespace kvant::cuda {
namespace {

constexpr int kWarps = 8;  // output rows per block

// Tile of one row a warp stages at a time: whole blocks, a multiple of 16 bytes, ~1-2.5 KB.
template <GgmlType T>
struct Tile {
  using F = WFmt<T>;
  static constexpr int kElems = T == GgmlType::F32                              ? 512
                                : (T == GgmlType::F16 || T == GgmlType::BF16)   ? 1024
                                : (T == GgmlType::Q4_0 || T == GgmlType::Q4_1 || T == GgmlType::Q4_K) ? 4096
                                                                                : 2048;
  static constexpr int kBytes = kElems / F::kQK * F::kBytes;
  static constexpr int kLoads = (kBytes / 16 + 31) / 32;  // uint4 per lane
  static_assert(kBytes % 16 == 0 && kElems % 128 == 0, "tile must be 16-byte and 128-element whole");
};

// Loads `bytes` bytes at src (16-byte aligned, bytes a multiple of 16) into the lanes' registers: lane l
// holds 16-byte pieces l, l+32, ...
template <int L>
__device__ __forceinline__ void tile_load(const uint8_t* src, int bytes, int lane, uint4 (&buf)[L]) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int at = 16 * (lane + 32 * i);
    if (at < bytes) buf[i] = ld_stream(reinterpret_cast<const uint4*>(src + at));
  }
}

template <int L>
__device__ __forceinline__ void tile_store(const uint4 (&buf)[L], int bytes, int lane, uint8_t* stage) {
#pragma unroll
  for (int i = 0; i < L; ++i) {
    const int idx = lane + 32 * i;
    if (16 * idx < bytes) reinterpret_cast<uint4*>(stage)[idx] = buf[i];
  }
}

__device__ __forceinline__ float4 ldg4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }

// Element i of a float-format row (the scalar path for rows whose length is not a multiple of 4).
template <GgmlType T>
__device__ __forceinline__ float float_elem(const uint8_t* row, int i) {
  if constexpr (T == GgmlType::F32) return reinterpret_cast<const float*>(row)[i];
  if constexpr (T == GgmlType::F16) return half_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  if constexpr (T == GgmlType::BF16) return bf16_bits_to_float(reinterpret_cast<const uint16_t*>(row)[i]);
  return 0.0f;
}

// acc[r] += Σ_i W_row[i] · g[i] · x[r][i] over one row (g = norm weight or none), the warp cooperating
// (lane partial sums). buf holds the row's first tile on entry; on exit it holds next_row's first tile
// (when next_row is set and the rows are aligned). Needs n_in % 4 == 0.
template <GgmlType T, int NR>
__device__ __forceinline__ void row_dot(const uint8_t* wrow, size_t row_bytes, bool aligned, int n_in,
                                        const float* x, int nr, const float* g, uint8_t* stage,
                                        uint4 (&buf)[Tile<T>::kLoads], const uint8_t* next_row, int lane,
                                        float* acc) {
  using F = WFmt<T>;
  constexpr int E = Tile<T>::kElems, C = Tile<T>::kBytes;
  const int n_tiles = (n_in + E - 1) / E;
  for (int t = 0; t < n_tiles; ++t) {
    const int bytes = int(min(size_t(C), row_bytes - size_t(t) * C));
    __syncwarp();
    if (aligned) {
      tile_store(buf, bytes, lane, stage);
    } else {  // rows not 16-byte aligned (odd block counts): plain byte copy, no prefetch
      for (int b = lane; b < bytes; b += 32) stage[b] = wrow[size_t(t) * C + b];
    }
    __syncwarp();
    if (aligned) {
      if (t + 1 < n_tiles) {
        tile_load(wrow + size_t(t + 1) * C, int(min(size_t(C), row_bytes - size_t(t + 1) * C)), lane, buf);
      } else if (next_row != nullptr) {
        tile_load(next_row, int(min(size_t(C), row_bytes)), lane, buf);
      }
    }
    const int e0 = t * E, n_el = min(E, n_in - e0);
#pragma unroll(NR <= 2 ? 4 : 1)
    for (int step = 0; step < E / 128; ++step) {
      const int e = step * 128 + 4 * lane;
      if (e < n_el) {
        float4 w = F::quad(stage, e);
        if (g != nullptr) {
          const float4 gv = ldg4(g + e0 + e);
          w.x *= gv.x, w.y *= gv.y, w.z *= gv.z, w.w *= gv.w;
        }
#pragma unroll
        for (int r = 0; r < NR; ++r) {
          if (r < nr) {
            const float4 xv = ldg4(x + size_t(r) * n_in + e0 + e);
            acc[r] += w.x * xv.x + w.y * xv.y + w.z * xv.z + w.w * xv.w;
          }
        }
      }
    }
  }
}

// Scalar row dot for float formats whose rows are not a multiple of 4 elements.
template <GgmlType T, int NR>
__device__ __forceinline__ void row_dot_scalar(const uint8_t* wrow, int n_in, const float* x, int nr, const float* g,
                                               int lane, float* acc) {
  if constexpr (WFmt<T>::kQK == 32 && (T == GgmlType::F32 || T == GgmlType::F16 || T == GgmlType::BF16)) {
    for (int i = lane; i < n_in; i += 32) {
      const float wv = float_elem<T>(wrow, i) * (g ? g[i] : 1.0f);
#pragma unroll
      for (int r = 0; r < NR; ++r)
        if (r < nr) acc[r] += wv * x[size_t(r) * n_in + i];
    }
  }
}

template <GgmlType T, int NR>
__global__ void __launch_bounds__(kWarps * 32, NR <= 2 ? 3 : 2) matvec_kernel(MatvecArgs a, int total_out) {
  pdl_prologue();
  constexpr int L = Tile<T>::kLoads;
  __shared__ __align__(16) uint8_t stages[kWarps][Tile<T>::kBytes];
  __shared__ double partial[kWarps][NR];
  __shared__ float norm_scale[NR];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.y * NR;
  const int nr = min(NR, a.n_rows - row0);
  const int n_in = a.w[0].n_in;
  const bool vec = n_in % 4 == 0;
  const float* x = a.x + size_t(row0) * n_in;
  const bool swiglu = a.epilogue == MatvecEpilogue::SwiGlu;

  // Which weight and row this warp owns; its first tile is requested before the norm is computed.
  int j = blockIdx.x * kWarps + warp;
  const bool active = j < total_out;
  int k = 0;
  if (!swiglu) {
    while (k + 1 < a.n_w && j >= a.w[k].n_out) j -= a.w[k++].n_out;
  }
  const DeviceMatrix& m = a.w[k];
  const uint8_t* wrow = m.data + size_t(j) * m.row_bytes;
  const uint8_t* up_row = swiglu ? a.w[1].data + size_t(j) * a.w[1].row_bytes : nullptr;
  const bool aligned = ((reinterpret_cast<uintptr_t>(m.data) | m.row_bytes |
                         (swiglu ? reinterpret_cast<uintptr_t>(a.w[1].data) : 0)) & 15) == 0;
  uint4 buf[L];
  if (active && vec && aligned) tile_load(wrow, int(min(size_t(Tile<T>::kBytes), m.row_bytes)), lane, buf);

  if (a.norm_w) block_rows_inv_rms<kWarps, NR>(x, n_in, nr, a.eps, vec, partial, norm_scale);
  __syncthreads();
  if (!active) return;

  float acc[NR], acc_up[NR];
#pragma unroll
  for (int r = 0; r < NR; ++r) acc[r] = acc_up[r] = 0.0f;
  if (vec) {
    row_dot<T, NR>(wrow, m.row_bytes, aligned, n_in, x, nr, a.norm_w, stages[warp], buf, up_row, lane, acc);
    if (swiglu)
      row_dot<T, NR>(up_row, m.row_bytes, aligned, n_in, x, nr, a.norm_w, stages[warp], buf, nullptr, lane, acc_up);
  } else {
    row_dot_scalar<T, NR>(wrow, n_in, x, nr, a.norm_w, lane, acc);
    if (swiglu) row_dot_scalar<T, NR>(up_row, n_in, x, nr, a.norm_w, lane, acc_up);
  }
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    const float sc = a.norm_w ? norm_scale[r < nr ? r : 0] : 1.0f;
    acc[r] = warp_sum(acc[r]) * sc;
    if (swiglu) acc_up[r] = warp_sum(acc_up[r]) * sc;
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

// Rows tokens[t] of the table; with rope.table set (a decode step), block 0's first threads also write the
// RoPE {cos, sin} of every pair at positions[0], thread i forming θ_i by i products as rope_shared does.
template <GgmlType T>
__global__ void embed_kernel(DeviceMatrix table, const int32_t* tokens, float* out, RopeTableArgs rope) {
  pdl_prologue();
  if (rope.table != nullptr && blockIdx.x == 0) {
    const float theta_scale = rope_theta_scale(rope.rope);
    for (int i = threadIdx.x; i < rope.rope.rope_dim / 2; i += blockDim.x) {
      float theta = float(rope.positions[0]) * rope.rope.freq_scale;
      for (int k = 0; k < i; ++k) theta *= theta_scale;
      rope.table[i] = rope_cos_sin(theta, rope.rope, i);
    }
  }
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

// Output rows of a launch: the weights' rows (SwiGlu: the gate's).
int matvec_total_out(const MatvecArgs& a) {
  if (a.epilogue == MatvecEpilogue::SwiGlu) return a.w[0].n_out;
  int total = 0;
  for (int k = 0; k < a.n_w; ++k) total += a.w[k].n_out;
  return total;
}

template <GgmlType T, int NR>
void launch_typed(const MatvecArgs& a, cudaStream_t stream) {
  const int total = matvec_total_out(a);
  const dim3 grid(ceil_div(total, kWarps), ceil_div(a.n_rows, NR));
  launch_kernel(matvec_kernel<T, NR>, grid, kWarps * 32, 0, stream, a, total);
  KVANT_CUDA_LAUNCHED();
}

template <GgmlType T>
void launch_rows(const MatvecArgs& a, cudaStream_t stream) {
  if (a.n_rows >= 8) return launch_typed<T, 8>(a, stream);
  if (a.n_rows >= 4) return launch_typed<T, 4>(a, stream);
  if (a.n_rows >= 2) return launch_typed<T, 2>(a, stream);
  launch_typed<T, 1>(a, stream);
}

// ---- int8 (dp4a) path ----

// Largest dynamic shared memory a block of this kernel may opt in to: the device's per-block opt-in limit
// (device of the first call) less the kernel's static shared memory; set as the kernel's limit once.
template <typename Kernel>
size_t raise_smem_limit(Kernel kernel) {
  int dev = 0, bytes = 48 << 10;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
  cudaFuncAttributes attr{};
  KVANT_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  const size_t dyn = size_t(bytes) - attr.sharedSizeBytes;
  KVANT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(dyn)));
  return dyn;
}
template <GgmlType T, int NR, int kW, bool kHostRows = false>
size_t q8_smem_limit() {
  static const size_t limit = raise_smem_limit(q8::matvec_q8_kernel<T, NR, kW, kHostRows>);
  return limit;
}

// KVANT_CUDA_MATVEC_SPLIT=1 / 0 deals every int8 matvec's rows to warps tile by tile / row by row (tests,
// A/B); unset: q8::split_tiles decides. Returns 1, 0, or -1 (unset).
int q8_split_mode() {
  static const int mode = [] {
    const char* v = std::getenv("KVANT_CUDA_MATVEC_SPLIT");
    return v == nullptr || *v == '\0' ? -1 : (std::atoi(v) != 0 ? 1 : 0);
  }();
  return mode;
}

// Whether a block of kW warps deals its rows to them tile by tile (q8::split_tiles, or the forced mode).
bool q8_split(int total, int blocks, int parts, int kW, int nr) {
  return q8_split_mode() < 0 ? q8::split_tiles(total, blocks, parts, kW, nr) : q8_split_mode() == 1;
}

// Tiles per output row of the int8 kernel (SwiGlu: gate and up rows).
template <GgmlType T>
int q8_row_parts(const MatvecArgs& a) {
  return (a.epilogue == MatvecEpilogue::SwiGlu ? 2 : 1) * ceil_div(a.w[0].n_in, q8::Q8Tile<T>::kElems);
}

template <GgmlType T, int NR, int kW, bool kHostRows = false>
void launch_q8_rows(const MatvecArgs& a, int total, cudaStream_t stream) {
  const auto kernel = q8::matvec_q8_kernel<T, NR, kW, kHostRows>;
  const size_t smem = q8::smem_bytes<T>(kW, NR, a.w[0].n_in);
  if constexpr (kHostRows) q8_smem_limit<T, NR, kW, kHostRows>();  // opts the kernel in to its shared memory
  int per_sm = 0;
  KVANT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kW * 32, smem));
  const int grid_y = ceil_div(a.n_rows, NR);
  // Persistent blocks: each quantises x once and its warps share an even slice of the output rows.
  const int resident = std::max(1, device_sm_count() * std::max(per_sm, 1) / grid_y);
  const dim3 grid(std::min(total, resident), grid_y);
  const int parts = q8_row_parts<T>(a);
  const bool split = !kHostRows && q8_split(total, int(grid.x), parts, kW, NR);  // host rows: row runs
  launch_kernel(kernel, grid, kW * 32, smem, stream, a, total, split);
  KVANT_CUDA_LAUNCHED();
}

// Wide blocks (one per SM) for a single activation row: KVANT_CUDA_MATVEC_WIDE=0 turns them off (A/B).
bool q8_wide_enabled() {
  static const bool on = env_switch_on("KVANT_CUDA_MATVEC_WIDE");
  return on;
}

// Whether the int8 path reads a (16-byte aligned rows, x and norm weights; a row's per-tile sums fit a
// block's shared buffer), and whether one activation row takes the wide blocks.
template <GgmlType T>
bool q8_applies(const MatvecArgs& a) {
  uintptr_t bits = reinterpret_cast<uintptr_t>(a.x) | reinterpret_cast<uintptr_t>(a.norm_w);
  for (int k = 0; k < a.n_w; ++k) bits |= reinterpret_cast<uintptr_t>(a.w[k].data) | a.w[k].row_bytes;
  // A block finishes rows from per-tile sums held in shared memory: one row's must fit (n_rows ≤ 16).
  return (bits & 15) == 0 && a.w[0].n_in % 32 == 0 && q8_row_parts<T>(a) * 16 <= q8::kPartialFloats;
}
template <GgmlType T>
bool q8_wide_fits(const MatvecArgs& a) {
  return a.n_rows == 1 && q8_wide_enabled() &&
         q8::smem_bytes<T>(q8::kWideWarps, 1, a.w[0].n_in) <= q8_smem_limit<T, 1, q8::kWideWarps>();
}

// Launches the int8 path when it applies (quantised type, q8_applies, shared memory for one activation
// row); false to use the float kernel.
template <GgmlType T>
bool launch_q8(const MatvecArgs& a, int total, cudaStream_t stream) {
  const int n_in = a.w[0].n_in;
  if (!q8_applies<T>(a)) return false;
  if (q8_wide_fits<T>(a)) {
    launch_q8_rows<T, 1, q8::kWideWarps>(a, total, stream);
    return true;
  }
  // Fewest rows per block that cover n_rows (at most 16), halved while the block's shared memory is too big.
  auto fits = [&](int rows) {
    const size_t need = q8::smem_bytes<T>(q8::kWarps, rows, n_in);
    switch (rows) {
      case 16: return need <= q8_smem_limit<T, 16, q8::kWarps>();
      case 8: return need <= q8_smem_limit<T, 8, q8::kWarps>();
      case 4: return need <= q8_smem_limit<T, 4, q8::kWarps>();
      case 2: return need <= q8_smem_limit<T, 2, q8::kWarps>();
      default: return need <= q8_smem_limit<T, 1, q8::kWarps>();
    }
  };
  int nr = 16;
  while (nr > 1 && nr / 2 >= a.n_rows) nr /= 2;
  while (nr > 1 && !fits(nr)) nr /= 2;
  if (!fits(nr)) return false;
  switch (nr) {
    case 16: launch_q8_rows<T, 16, q8::kWarps>(a, total, stream); break;
    case 8: launch_q8_rows<T, 8, q8::kWarps>(a, total, stream); break;
    case 4: launch_q8_rows<T, 4, q8::kWarps>(a, total, stream); break;
    case 2: launch_q8_rows<T, 2, q8::kWarps>(a, total, stream); break;
    default: launch_q8_rows<T, 1, q8::kWarps>(a, total, stream); break;
  }
  return true;
}

// Two wide int8 matvecs of one activation row as one launch (matvec_q8_pair_kernel); the blocks are
// shared out in proportion to the weight bytes. False when either does not take the wide int8 path.
template <GgmlType T0, GgmlType T1>
bool launch_q8_pair(const MatvecArgs& a0, const MatvecArgs& a1, cudaStream_t stream) {
  if (!q8_applies<T0>(a0) || !q8_applies<T1>(a1) || !q8_wide_fits<T0>(a0) || !q8_wide_fits<T1>(a1)) return false;
  const auto kernel = q8::matvec_q8_pair_kernel<T0, T1>;
  static const size_t limit = raise_smem_limit(kernel);
  const size_t smem = std::max(q8::smem_bytes<T0>(q8::kWideWarps, 1, a0.w[0].n_in),
                               q8::smem_bytes<T1>(q8::kWideWarps, 1, a1.w[0].n_in));
  int per_sm = 0;
  KVANT_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, q8::kWideWarps * 32, smem));
  const int total0 = matvec_total_out(a0), total1 = matvec_total_out(a1);
  const int blocks = device_sm_count() * std::max(per_sm, 1);
  if (smem > limit || blocks < 2 || total0 <= 0 || total1 <= 0) return false;
  const auto weight_bytes = [](const MatvecArgs& a) {
    double bytes = 0;
    for (int k = 0; k < a.n_w; ++k) bytes += double(a.w[k].n_out) * double(a.w[k].row_bytes);
    return bytes;
  };
  // KVANT_CUDA_PAIR_COST=N weighs the second part's bytes N % (A/B; default 100). Weighing the Q6_K part
  // more (its decode costs more per byte) was inconclusive on the H200: 8B Q4_K_M tg128 at 125 % measured
  // 482.2 / 482.4 / 484.1 t/s against 475.6 / 474.8 / 481.9 at 100 % in one call, 471.7 / 476.2 against
  // 475.4 / 477.0 in another.
  static const double cost1 = [] {
    const char* v = std::getenv("KVANT_CUDA_PAIR_COST");
    return v != nullptr && *v != 0 ? std::clamp(std::atof(v), 10.0, 1000.0) / 100.0 : 1.0;
  }();
  const double bytes0 = weight_bytes(a0), bytes1 = cost1 * weight_bytes(a1);
  const int blocks0 = std::clamp(int(std::lround(blocks * bytes0 / (bytes0 + bytes1))), 1, blocks - 1);
  const int blocks1 = std::min(blocks - blocks0, total1);
  const int b0 = std::min(blocks0, total0);
  const q8::PairPart p0{a0, total0, q8_split(total0, b0, q8_row_parts<T0>(a0), q8::kWideWarps, 1)};
  const q8::PairPart p1{a1, total1, q8_split(total1, blocks1, q8_row_parts<T1>(a1), q8::kWideWarps, 1)};
  launch_kernel(kernel, b0 + blocks1, q8::kWideWarps * 32, smem, stream, p0, p1, b0);
  KVANT_CUDA_LAUNCHED();
  return true;
}

// The dp4a path for the formats it reads; false when it does not apply.
bool launch_matvec_q8(const MatvecArgs& a, cudaStream_t stream) {
  const int total = matvec_total_out(a);
  if (total <= 0 || a.n_rows <= 0) return false;
  switch (a.w[0].type) {
#define KVANT_CASE(T) case GgmlType::T: return launch_q8<GgmlType::T>(a, total, stream);
    KVANT_CASE(Q8_0) KVANT_CASE(Q4_0) KVANT_CASE(Q4_1) KVANT_CASE(Q4_K) KVANT_CASE(Q5_K) KVANT_CASE(Q6_K)
#undef KVANT_CASE
    default: return false;
  }
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
  // Large prefill batches: weights dequantised once, f16 GEMM (gemm_f16.cu; KVANT_CUDA_GEMM_F16=0 turns it
  // off); smaller batches: tensor-core tiles decoding the weights in place (matmul_tc.cu); decode: int8
  // dp4a kernels, else the float kernel. F32 weights stay on the float kernel: an F32 file is the precision
  // reference, and f16 operands would move its logits by ~1e-3.
  static const bool gemm_f16_on = env_switch_on("KVANT_CUDA_GEMM_F16");
  if (a.n_rows >= kGemmF16MinRows && a.w[0].type != GgmlType::F32 && a.scratch != nullptr && gemm_f16_on &&
      gemm_f16_supports(a) && launch_gemm_f16(a, *a.scratch, stream))
    return;
  if (a.n_rows >= 16 && a.w[0].type != GgmlType::F32 && matmul_tc_supports(a)) return launch_matmul_tc(a, stream);
  if (launch_matvec_q8(a, stream)) return;
  switch (a.w[0].type) {
#define KVANT_CASE(T) case GgmlType::T: return launch_rows<GgmlType::T>(a, stream);
    KVANT_WEIGHT_TYPES(KVANT_CASE)
#undef KVANT_CASE
    default: std::fprintf(stderr, "kvant cuda: matvec: unsupported weight type %u\n", unsigned(a.w[0].type)); std::abort();
  }
}

bool launch_matvec_host_rows(const MatvecArgs& a, cudaStream_t stream) {
  if (!a.host_rows || a.n_rows != 1 || a.n_w != 1 || a.epilogue != MatvecEpilogue::Store) return false;
  const int total = matvec_total_out(a);
  switch (a.w[0].type) {
#define KVANT_CASE(T)                                                                \
  case GgmlType::T:                                                                  \
    if (total <= 0 || !q8_applies<GgmlType::T>(a) || !q8_wide_fits<GgmlType::T>(a)) return false; \
    launch_q8_rows<GgmlType::T, 1, q8::kWideWarps, true>(a, total, stream);          \
    return true;
    KVANT_CASE(Q8_0) KVANT_CASE(Q4_0) KVANT_CASE(Q4_1) KVANT_CASE(Q4_K) KVANT_CASE(Q5_K) KVANT_CASE(Q6_K)
#undef KVANT_CASE
    default: return false;
  }
}

bool launch_matvec_pair(const MatvecArgs& a0, const MatvecArgs& a1, cudaStream_t stream) {
  if (a0.n_rows != 1 || a1.n_rows != 1 || a0.epilogue != MatvecEpilogue::Store ||
      a1.epilogue != MatvecEpilogue::Store)
    return false;
  const GgmlType t0 = a0.w[0].type, t1 = a1.w[0].type;
  if (t1 == GgmlType::Q6_K && t0 == GgmlType::Q4_K) return launch_q8_pair<GgmlType::Q4_K, GgmlType::Q6_K>(a0, a1, stream);
  if (t1 == GgmlType::Q6_K && t0 == GgmlType::Q5_K) return launch_q8_pair<GgmlType::Q5_K, GgmlType::Q6_K>(a0, a1, stream);
  return false;
}

void launch_embed(const DeviceMatrix& table, const int32_t* tokens, int n, float* out, cudaStream_t stream,
                  const RopeTableArgs* rope_table) {
  const RopeTableArgs rope = rope_table ? *rope_table : RopeTableArgs{};
  switch (table.type) {
#define KVANT_CASE(T) \
  case GgmlType::T: launch_kernel(embed_kernel<GgmlType::T>, n, 128, 0, stream, table, tokens, out, rope); break;
    KVANT_WEIGHT_TYPES(KVANT_CASE)
#undef KVANT_CASE
    default: std::fprintf(stderr, "kvant cuda: embed: unsupported type %u\n", unsigned(table.type)); std::abort();
  }
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
