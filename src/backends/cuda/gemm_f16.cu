// backends/cuda/gemm_f16.cu — large-batch prefill GEMM in three kernels: prep_x (fused RMSNorm, per-row power
// of two that keeps |x| within f16 range, f16 conversion), dequant (weight rows → f16 rows in the scratch,
// SwiGlu gate/up rows interleaved in groups of 8), and gemm (128×128×32 block tiles, 8 warps of 64×32,
// mma.sync m16n8k16 with ldmatrix operands, a 4-stage 16-byte cp.async pipeline, epilogue from registers).
//
// Unlike matmul_tc.cu, which decodes the weight bytes inside every 64-row block tile, each weight is decoded
// once per matmul, so the GEMM's inner loop is format-independent; the cost is writing and re-reading the
// f16 weights (4 bytes per weight), small next to the MMA work when the batch has hundreds of rows.
#include "backends/cuda/gemm_f16.h"

#include "backends/cuda/matmul_tc.h"
#include "backends/cuda/weight_formats.cuh"

namespace kvant::cuda {
namespace {

constexpr int kBM = 128;        // activation rows per block
constexpr int kBN = 128;        // scratch weight rows (output columns) per block
constexpr int kBK = 32;         // K elements per pipeline stage
constexpr int kStages = 4;
constexpr int kThreads = 256;   // 8 warps: 2 (M) × 4 (N), 64×32 each
constexpr int kLd = kBK + 8;    // halves per staged row: 80 bytes, so 8 ldmatrix rows hit 8 distinct bank quads
constexpr int kStageHalves = (kBM + kBN) * kLd;
constexpr int kSmem = kStages * kStageHalves * 2;
constexpr float kF16Limit = 16384.0f;  // activations are scaled to |v| <= 2^14 before conversion
constexpr int kPrepThreads = 256;

template <typename T>
__device__ T block_reduce(T v, bool max_not_sum, T* red) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const T w = __shfl_xor_sync(0xffffffffu, v, o);
    v = max_not_sum ? (w > v ? w : v) : v + w;
  }
  __syncthreads();  // red may still be read by a previous reduction
  if (lane == 0) red[warp] = v;
  __syncthreads();
  v = red[0];
  for (int i = 1; i < warps; ++i) v = max_not_sum ? (red[i] > v ? red[i] : v) : v + red[i];
  return v;
}

// One block per activation row: xh[r] = f16(x[r] · inv_rms · g · 2^-e), row_post[r] = 2^e (e ≥ 0 only when
// the row would leave f16 range), inv_rms as the CPU computes it (sum of squares in double).
__global__ void __launch_bounds__(kPrepThreads) prep_x_kernel(const float* x, const float* norm_w, float eps,
                                                             int n_in, __half* xh, float* row_post) {
  __shared__ double red_d[kPrepThreads / 32];
  __shared__ float red_f[kPrepThreads / 32];
  const int r = blockIdx.x;
  const float4* xr = reinterpret_cast<const float4*>(x + size_t(r) * n_in);
  const float4* g = reinterpret_cast<const float4*>(norm_w);
  const int n4 = n_in / 4;
  float inv = 1.0f;
  if (norm_w != nullptr) {
    double s = 0.0;
    for (int i = threadIdx.x; i < n4; i += blockDim.x) {
      const float4 v = xr[i];
      s += double(v.x) * v.x + double(v.y) * v.y + double(v.z) * v.z + double(v.w) * v.w;
    }
    s = block_reduce(s, false, red_d);
    inv = 1.0f / sqrtf(float(s / n_in) + eps);
  }
  auto input = [&](int i) {
    float4 v = xr[i];
    if (norm_w != nullptr) {
      const float4 w = g[i];
      v.x = v.x * inv * w.x, v.y = v.y * inv * w.y, v.z = v.z * inv * w.z, v.w = v.w * inv * w.w;
    }
    return v;
  };
  float amax = 0.0f;
  for (int i = threadIdx.x; i < n4; i += blockDim.x) {
    const float4 v = input(i);
    amax = fmaxf(amax, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
  }
  amax = block_reduce(amax, true, red_f);
  float scale = 1.0f, post = 1.0f;
  if (amax > kF16Limit) {  // amax / limit = f · 2^e with f < 1: amax · 2^-e < limit
    int e = 0;
    frexpf(amax / kF16Limit, &e);
    scale = ldexpf(1.0f, -e);
    post = ldexpf(1.0f, e);
  }
  __half2* out = reinterpret_cast<__half2*>(xh + size_t(r) * n_in);
  for (int i = threadIdx.x; i < n4; i += blockDim.x) {
    const float4 v = input(i);
    out[2 * i] = __floats2half2_rn(v.x * scale, v.y * scale);
    out[2 * i + 1] = __floats2half2_rn(v.z * scale, v.w * scale);
  }
  if (threadIdx.x == 0) row_post[r] = post;
}

// Scratch row s of a chunk is global row first + s of the matmul's column order: the weights' rows one
// after another (Store / AddInto), or for SwiGlu groups of 16 = 8 gate rows then the same 8 up rows.
struct DequantJob {
  const uint8_t* data[3];
  int n_out[3];
  int n_w;
  size_t row_bytes;
  int n_in;
  bool swiglu;
  int first, rows;
  __half* out;  // [rows][n_in]
};

__device__ __forceinline__ void column_source(const DequantJob& j, int g, int* k, int* row) {
  if (j.swiglu) {
    *k = (g >> 3) & 1;
    *row = (g >> 4) * 8 + (g & 7);
    return;
  }
  int kk = 0, rr = g;
  while (kk + 1 < j.n_w && rr >= j.n_out[kk]) rr -= j.n_out[kk++];
  *k = kk;
  *row = rr;
}

// One thread per 32-element unit: decoded (weight_formats.cuh) and written as 64 bytes of f16.
template <GgmlType T>
__global__ void __launch_bounds__(256) dequant_kernel(DequantJob j) {
  using F = WFmt<T>;
  const int units_per_row = j.n_in / 32;
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= int64_t(j.rows) * units_per_row) return;
  const int s = int(idx / units_per_row), u = int(idx % units_per_row);
  int k = 0, row = 0;
  column_source(j, j.first + s, &k, &row);
  const int e = 32 * u;
  const uint8_t* block = j.data[k] + size_t(row) * j.row_bytes + size_t(e / F::kQK) * F::kBytes;
  float v[32];
  F::unit(block, (e % F::kQK) / 32, v);
  uint4* dst = reinterpret_cast<uint4*>(j.out + size_t(s) * j.n_in + e);
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    uint4 o;
    uint32_t* w = &o.x;
#pragma unroll
    for (int h = 0; h < 4; ++h) {
      const __half2 p = __floats2half2_rn(v[8 * q + 2 * h], v[8 * q + 2 * h + 1]);
      w[h] = *reinterpret_cast<const uint32_t*>(&p);
    }
    dst[q] = o;
  }
}

struct GemmJob {
  const __half* x;         // [m][k]
  const __half* w;         // [n][k], this chunk's scratch rows
  const float* row_post;   // [m]
  int m, n, k;
  int first;               // global column of scratch row 0
  MatvecEpilogue epilogue;
  float* y[3];
  int n_out[3];
  int n_w;
};

__device__ __forceinline__ void copy16_or_zero(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void copy_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// d += a (16×16, row-major fragment) · b (16×8, column-major fragment), f16 operands, f32 accumulators.
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__global__ void __launch_bounds__(kThreads, 2) gemm_kernel(GemmJob j) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int wm = warp >> 2, wn = warp & 3;
  const int m0 = blockIdx.x * kBM, n0 = blockIdx.y * kBN;  // M fastest: the blocks sharing a weight tile run together
  const uint32_t base = uint32_t(__cvta_generic_to_shared(smem));

  // This thread's two 16-byte pieces of the A tile and of the B tile per stage: piece c = tid + 256·i is
  // row c / 4, halves 8·(c % 4).. of the stage.
  const __half* a_src[2];
  const __half* b_src[2];
  bool a_ok[2], b_ok[2];
  uint32_t a_dst[2], b_dst[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const int c = tid + kThreads * i, row = c >> 2, col = (c & 3) * 8;
    a_ok[i] = m0 + row < j.m;
    b_ok[i] = n0 + row < j.n;
    a_src[i] = j.x + size_t(a_ok[i] ? m0 + row : 0) * j.k + col;
    b_src[i] = j.w + size_t(b_ok[i] ? n0 + row : 0) * j.k + col;
    a_dst[i] = base + uint32_t((row * kLd + col) * 2);
    b_dst[i] = base + uint32_t(((kBM + row) * kLd + col) * 2);
  }
  const int k_tiles = j.k / kBK;
  auto load = [&](int kt) {
    if (kt < k_tiles) {
      const uint32_t st = uint32_t((kt % kStages) * kStageHalves * 2);
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        copy16_or_zero(a_dst[i] + st, a_src[i] + size_t(kt) * kBK, a_ok[i]);
        copy16_or_zero(b_dst[i] + st, b_src[i] + size_t(kt) * kBK, b_ok[i]);
      }
    }
    copy_commit();
  };

  float acc[4][4][4];
#pragma unroll
  for (int mi = 0; mi < 4; ++mi)
#pragma unroll
    for (int ni = 0; ni < 4; ++ni)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][ni][e] = 0.0f;

  // ldmatrix row addresses: A 16×16 tiles (lanes 0-15 rows at k, 16-31 the same rows at k + 8); B two 8-row
  // tiles × two k halves (lanes 0-7 / 8-15 / 16-23 / 24-31 = rows 0-7 k, rows 0-7 k+8, rows 8-15 k, 8-15 k+8).
  const uint32_t a_frag = base + uint32_t(((wm * 64 + (lane & 15)) * kLd + (lane >> 4) * 8) * 2);
  const uint32_t b_frag =
      base + uint32_t(((kBM + wn * 32 + (lane & 7) + ((lane >> 4) << 3)) * kLd + ((lane >> 3) & 1) * 8) * 2);

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) load(s);
  for (int kt = 0; kt < k_tiles; ++kt) {
    copy_wait<kStages - 2>();
    __syncthreads();  // stage kt is complete for all threads; stage kt - 1 is no longer read
    load(kt + kStages - 1);
    const uint32_t st = uint32_t((kt % kStages) * kStageHalves * 2);
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      uint32_t af[4][4], bf[2][4];
#pragma unroll
      for (int mi = 0; mi < 4; ++mi) ldmatrix_x4(af[mi], a_frag + st + uint32_t((mi * 16 * kLd + kk) * 2));
#pragma unroll
      for (int nj = 0; nj < 2; ++nj) ldmatrix_x4(bf[nj], b_frag + st + uint32_t((nj * 16 * kLd + kk) * 2));
#pragma unroll
      for (int mi = 0; mi < 4; ++mi)
#pragma unroll
        for (int ni = 0; ni < 4; ++ni)
          mma_16816(acc[mi][ni], af[mi], bf[ni >> 1][(ni & 1) * 2], bf[ni >> 1][(ni & 1) * 2 + 1]);
    }
  }
  copy_wait<0>();

  // Epilogue: accumulator e of tile (mi, ni) is row lane/4 (+8 for e ≥ 2), column 2·(lane%4) + e%2.
#pragma unroll
  for (int mi = 0; mi < 4; ++mi) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int m = m0 + wm * 64 + mi * 16 + (lane >> 2) + 8 * h;
      if (m >= j.m) continue;
      const float post = j.row_post[m];
      if (j.epilogue == MatvecEpilogue::SwiGlu) {
#pragma unroll
        for (int ni = 0; ni < 4; ni += 2) {  // tiles ni (gate rows) and ni + 1 (the same outputs' up rows)
          const int n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3);
          if (n >= j.n) continue;
          const int g = j.first + n, out = (g >> 4) * 8 + (g & 7);
          float* y = j.y[0] + size_t(m) * j.n_out[0] + out;
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float gate = acc[mi][ni][2 * h + e] * post, up = acc[mi][ni + 1][2 * h + e] * post;
            y[e] = gate / (1.0f + expf(-gate)) * up;
          }
        }
      } else {
#pragma unroll
        for (int ni = 0; ni < 4; ++ni) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int n = n0 + wn * 32 + ni * 8 + 2 * (lane & 3) + e;
            if (n >= j.n) continue;
            int k = 0, col = j.first + n;
            while (k + 1 < j.n_w && col >= j.n_out[k]) col -= j.n_out[k++];
            float* y = j.y[k] + size_t(m) * j.n_out[k] + col;
            const float v = acc[mi][ni][2 * h + e] * post;
            *y = j.epilogue == MatvecEpilogue::AddInto ? *y + v : v;
          }
        }
      }
    }
  }
}

template <GgmlType T>
void launch_dequant(const DequantJob& j, cudaStream_t stream) {
  const int64_t units = int64_t(j.rows) * (j.n_in / 32);
  dequant_kernel<T><<<ceil_div(units, 256), 256, 0, stream>>>(j);
}

void dequant(GgmlType type, const DequantJob& j, cudaStream_t stream) {
  with_weight_format(type, "gemm_f16", [&](auto t) { launch_dequant<decltype(t)::value>(j, stream); });
}

}  // namespace

bool gemm_f16_supports(const MatvecArgs& a) {
  if (!matmul_tc_supports(a)) return false;
  return a.epilogue != MatvecEpilogue::SwiGlu || a.w[0].n_out % 8 == 0;
}

bool launch_gemm_f16(const MatvecArgs& a, GemmScratch& scratch, cudaStream_t stream) {
  static const bool smem_set = [] {  // > 48 KB of dynamic shared memory needs an opt-in
    KVANT_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    return true;
  }();
  (void)smem_set;
  const int n_in = a.w[0].n_in, m = a.n_rows;
  const bool swiglu = a.epilogue == MatvecEpilogue::SwiGlu;
  int total = 0;
  for (int k = 0; k < a.n_w; ++k) total += a.w[k].n_out;
  if (m <= 0 || total == 0) return true;

  auto* xh = static_cast<__half*>(scratch.slot(0, size_t(m) * n_in * sizeof(__half)));
  auto* row_post = static_cast<float*>(scratch.slot(1, size_t(m) * sizeof(float)));
  // Chunks of whole 128-row tiles (SwiGlu: 64 outputs per tile) that fit the weight scratch cap, halved
  // while the device cannot hold them.
  const size_t row_f16 = size_t(n_in) * sizeof(__half);
  const int cap_tiles = int(std::max<size_t>(1, scratch.max_weight_bytes() / (row_f16 * kBN)));
  int chunk = int(std::min<int64_t>(total, int64_t(cap_tiles) * kBN));
  auto* wh = static_cast<__half*>(scratch.slot(2, size_t(chunk) * row_f16));
  while (wh == nullptr && chunk > kBN) {
    chunk = std::max(kBN, chunk / 2 / kBN * kBN);
    wh = static_cast<__half*>(scratch.slot(2, size_t(chunk) * row_f16));
  }
  if (xh == nullptr || row_post == nullptr || wh == nullptr) return false;
  prep_x_kernel<<<m, kPrepThreads, 0, stream>>>(a.x, a.norm_w, a.eps, n_in, xh, row_post);
  KVANT_CUDA_LAUNCHED();

  DequantJob dj{};
  GemmJob gj{};
  for (int k = 0; k < a.n_w; ++k) {
    dj.data[k] = a.w[k].data;
    dj.n_out[k] = gj.n_out[k] = a.w[k].n_out;
    gj.y[k] = a.y[k];
  }
  dj.n_w = gj.n_w = a.n_w;
  dj.row_bytes = a.w[0].row_bytes;
  dj.n_in = n_in;
  dj.swiglu = swiglu;
  dj.out = wh;
  gj.x = xh;
  gj.w = wh;
  gj.row_post = row_post;
  gj.m = m;
  gj.k = n_in;
  gj.epilogue = a.epilogue;
  if (swiglu) gj.n_out[0] = a.w[0].n_out;
  for (int first = 0; first < total; first += chunk) {
    const int rows = std::min(chunk, total - first);
    dj.first = gj.first = first;
    dj.rows = gj.n = rows;
    dequant(a.w[0].type, dj, stream);
    KVANT_CUDA_LAUNCHED();
    const dim3 grid(ceil_div(m, kBM), ceil_div(rows, kBN));
    gemm_kernel<<<grid, kThreads, kSmem, stream>>>(gj);
    KVANT_CUDA_LAUNCHED();
  }
  return true;
}

}  // namespace kvant::cuda
