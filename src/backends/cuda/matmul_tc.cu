// backends/cuda/matmul_tc.cu — prefill GEMM on tensor cores: y[r][j] = W[j] · xin[r] for 64 activation rows ×
// 128 weight rows per block (8 warps of 32×32, nvcuda::wmma 16×16×16, f16 operands, f32 accumulation).
//
// Per block and K step of 64 elements: the raw weight bytes of the tile (whole GGUF blocks; for K-quants a
// whole 256-element super-block covers 4 steps) are copied global → shared with 4-byte cp.async, one chunk
// ahead (double buffer); each thread decodes one 32-element unit (WFmt::unit) to f16 in shared memory; the
// activations are prefetched into registers one step ahead and written as f16 (times norm_w when set). The
// f16 operand tiles are double-buffered too, so a step needs one barrier and decoding overlaps the MMAs.
//
// f16 range: a pre-pass over the block's activation rows finds max|x·g| per row; rows above 2^14 are
// scaled by an exact power of two before the f16 conversion and scaled back in the epilogue, so large
// activations cannot overflow. The same pass sums x² (double, as the CPU) for the fused RMSNorm, whose
// 1/rms is applied to the f32 sums like launch_matvec does. The epilogue goes through shared memory:
// Store / AddInto per column (columns may span the n_w weights), SwiGlu pairs gate column c (tile columns
// 0..63) with up column c (64..127) of the same block.
#include <mma.h>

#include <cfloat>

#include "backends/cuda/matmul_tc.h"
#include "backends/cuda/weight_formats.cuh"

namespace kvant::cuda {
namespace {

using namespace nvcuda;

constexpr int kBM = 64;          // activation rows per block
constexpr int kBN = 128;         // weight rows (output columns) per block; SwiGlu: 64 gate + 64 up
constexpr int kBK = 64;          // K elements per step
constexpr int kThreads = 256;    // 8 warps: 2 (M) × 4 (N) of 32×32
constexpr int kLdAB = kBK + 8;   // halves per As / Bs row (16-byte pad: conflict-free ldmatrix)
constexpr int kLdC = kBN + 4;    // floats per Cs row
constexpr float kF16Limit = 16384.0f;  // activations are scaled to |v| <= 2^14 before f16 conversion

// Raw bytes of one row the block stages at a time: 64 elements (2 blocks) for 32-element formats,
// one super-block (4 K steps) for K-quants.
template <GgmlType T>
struct Chunk {
  using F = WFmt<T>;
  static constexpr int kElems = F::kQK == 32 ? 64 : F::kQK;
  static constexpr int kBytes = kElems / F::kQK * F::kBytes;
  static constexpr int kSteps = kElems / kBK;
  static constexpr int kUnitsPerBlock = F::kQK / 32;
  // A row's chunk starts 2-byte aligned: staged as the 4-byte words covering it, at the same offset mod 4.
  static constexpr int kWords = (kBytes + 5) / 4;
  static constexpr int kStride = (kBytes + 4 + 15) / 16 * 16;  // bytes per staged row (16-byte multiple)
  static constexpr int kRawBytes = 2 * kBN * kStride;          // double buffer
  static constexpr int kPipeBytes = kRawBytes + 2 * (kBM + kBN) * kLdAB * 2;  // + double As|Bs
  static constexpr int kEpiBytes = kBM * kLdC * 4;
  static constexpr int kSmem = kPipeBytes > kEpiBytes ? kPipeBytes : kEpiBytes;
  static_assert(kElems % kBK == 0 && F::kQK % 32 == 0, "chunk must hold whole K steps");
  static_assert(4 * kWords <= kStride, "staged words must fit the row stride");
  static_assert(kRawBytes % 128 == 0, "As must stay 128-byte aligned");
};

__device__ __forceinline__ void cp_async4(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Two floats as f16 (round to nearest), low half first.
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ float4 ldg4(const float* p) { return __ldg(reinterpret_cast<const float4*>(p)); }

// Starts copying chunk c of every valid tile row (rowp[n], null = past n_out) into raw. Row n's bytes
// [p0, p1) land at raw + n*kStride + (p0 & 3) + (p - p0): whole words by cp.async, the 2-byte edge
// pieces (p0 or p1 not 4-aligned) by plain loads. Never reads outside [p0, p1). 8 threads share a row.
template <GgmlType T>
__device__ __forceinline__ void stage_chunk(const uint8_t* const* rowp, size_t row_bytes, int c, uint8_t* raw) {
  using C = Chunk<T>;
  constexpr int kPerRow = 8;
  const size_t start = size_t(c) * C::kBytes;
  const size_t len = min(size_t(C::kBytes), row_bytes - start);
  for (int n = threadIdx.x / kPerRow; n < kBN; n += kThreads / kPerRow) {
    if (rowp[n] == nullptr) continue;
    const uintptr_t p0 = reinterpret_cast<uintptr_t>(rowp[n]) + start, p1 = p0 + len;
    const uintptr_t a0 = p0 & ~uintptr_t(3);
    uint8_t* const dst_row = raw + n * C::kStride;
#pragma unroll
    for (int w = threadIdx.x % kPerRow; w < C::kWords; w += kPerRow) {
      const uintptr_t q = a0 + 4 * uintptr_t(w);
      if (q >= p1) break;
      uint8_t* dst = dst_row + 4 * w;
      if (q >= p0 && q + 4 <= p1) {
        cp_async4(dst, reinterpret_cast<const void*>(q));
      } else {  // p0 = q + 2 (head) or p1 = q + 2 (tail): two valid bytes
        const uintptr_t s = q < p0 ? p0 : q;
        *reinterpret_cast<uint16_t*>(dst + (s - q)) = *reinterpret_cast<const uint16_t*>(s);
      }
    }
  }
}

// Unit of a Q8_0 block as 16 f16 pairs: f16(q) · f16 d in half precision, one rounding of the exact
// product d·q, so the same values as rounding WFmt::unit's floats.
__device__ __forceinline__ void q8_0_unit_half(const uint8_t* b, uint32_t* h) {
  const uint16_t* p = reinterpret_cast<const uint16_t*>(b);  // blocks are 2-byte aligned
  const __half2 d2 = __half2half2(__ushort_as_half(p[0]));
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    const uint16_t v = p[1 + j];
    const __half2 q = __halves2half2(__short2half_rn(short(int8_t(v & 0xFF))), __short2half_rn(short(int8_t(v >> 8))));
    const __half2 r = __hmul2(q, d2);
    h[j] = *reinterpret_cast<const uint32_t*>(&r);
  }
}

// Decodes K step s of the staged chunk c into Bs[n][0..64) as f16: thread → (row n, unit half sub).
template <GgmlType T>
__device__ __forceinline__ void decode_step(const uint8_t* raw, const uint8_t* const* rowp, int c, int s, int k0,
                                            int n_in, __half* Bs) {
  using C = Chunk<T>;
  const int n = threadIdx.x >> 1, sub = threadIdx.x & 1;
  uint32_t h[16];  // f16 pairs
  if (rowp[n] != nullptr && k0 + 32 * sub < n_in) {
    const int unit = 2 * s + sub;  // within the chunk
    const int off = int((reinterpret_cast<uintptr_t>(rowp[n]) + size_t(c) * C::kBytes) & 3);
    const uint8_t* block = raw + n * C::kStride + off + (unit / C::kUnitsPerBlock) * WFmt<T>::kBytes;
    if constexpr (T == GgmlType::Q8_0) {
      q8_0_unit_half(block, h);
    } else {
      float f[32];
      WFmt<T>::unit(block, unit % C::kUnitsPerBlock, f);
#pragma unroll
      for (int j = 0; j < 16; ++j) h[j] = pack_half2(f[2 * j], f[2 * j + 1]);
    }
  } else {
#pragma unroll
    for (int j = 0; j < 16; ++j) h[j] = 0u;
  }
  uint4* dst = reinterpret_cast<uint4*>(Bs + n * kLdAB + 32 * sub);
#pragma unroll
  for (int q = 0; q < 4; ++q) dst[q] = make_uint4(h[4 * q], h[4 * q + 1], h[4 * q + 2], h[4 * q + 3]);
}

// The block's activations for one K step: 64 rows × 64 floats, 4 float4 per thread (row = i / 16).
struct XStep {
  float4 v[4];
};

__device__ __forceinline__ void load_x(XStep& xs, const float* x, int m0, int n_rows, int n_in, int k0) {
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int i = threadIdx.x + kThreads * q, m = i >> 4, k = k0 + 4 * (i & 15);
    xs.v[q] = m0 + m < n_rows && k < n_in ? ldg4(x + size_t(m0 + m) * n_in + k) : make_float4(0.f, 0.f, 0.f, 0.f);
  }
}

// As[m][..] = f16(x · g · row_scale[m]) (g = norm_w or 1).
__device__ __forceinline__ void store_x(const XStep& xs, const float* g, const float* row_scale, int n_in, int k0,
                                        __half* As) {
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    const int i = threadIdx.x + kThreads * q, m = i >> 4, kk = 4 * (i & 15), k = k0 + kk;
    float4 v = xs.v[q];
    if (g != nullptr && k < n_in) {
      const float4 gv = ldg4(g + k);
      v.x *= gv.x, v.y *= gv.y, v.z *= gv.z, v.w *= gv.w;
    }
    const float sc = row_scale[m];
    *reinterpret_cast<uint2*>(As + m * kLdAB + kk) =
        make_uint2(pack_half2(v.x * sc, v.y * sc), pack_half2(v.z * sc, v.w * sc));
  }
}

template <GgmlType T>
__global__ void __launch_bounds__(kThreads, 2) matmul_tc_kernel(MatvecArgs a, int total_cols) {
  pdl_prologue();
  using C = Chunk<T>;
  extern __shared__ __align__(128) uint8_t smem[];
  __shared__ const uint8_t* rowp[kBN];  // weight row of each tile column, null past n_out
  __shared__ int col_mat[kBN], col_row[kBN];
  __shared__ float row_scale[kBM], row_post[kBM];  // f16 pre-scale; epilogue factor (1/scale · 1/rms)

  const bool swiglu = a.epilogue == MatvecEpilogue::SwiGlu;
  const int n_in = a.w[0].n_in, n_rows = a.n_rows, m0 = blockIdx.y * kBM;
  const size_t row_bytes = a.w[0].row_bytes;

  if (threadIdx.x < kBN) {
    const int v = threadIdx.x;
    int k = -1, j = 0;
    if (swiglu) {
      j = blockIdx.x * (kBN / 2) + v % (kBN / 2);
      if (j < a.w[0].n_out) k = v < kBN / 2 ? 0 : 1;
    } else {
      j = blockIdx.x * kBN + v;
      if (j < total_cols) {
        k = 0;
        while (k + 1 < a.n_w && j >= a.w[k].n_out) j -= a.w[k++].n_out;
      }
    }
    col_mat[v] = k;
    col_row[v] = j;
    rowp[v] = k >= 0 ? a.w[k].data + size_t(j) * row_bytes : nullptr;
  }
  __syncthreads();

  auto raw = [&](int c) { return smem + (c & 1) * (kBN * C::kStride); };  // chunk c's staging buffer
  // Operand tiles As [kBM][kLdAB] | Bs [kBN][kLdAB], double-buffered by K step: step t writes buffer t & 1
  // while other warps may still multiply step t - 1 (one barrier a step).
  __half* const ab = reinterpret_cast<__half*>(smem + C::kRawBytes);
  stage_chunk<T>(rowp, row_bytes, 0, raw(0));
  cp_async_commit();

  // Pre-pass over the block's rows (while chunk 0 is in flight): f16 scale and 1/rms.
  {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float* g = a.norm_w;
    for (int m = warp; m < kBM; m += kThreads / 32) {
      double ss = 0.0;
      float mx = 0.0f;
      if (m0 + m < n_rows) {
        const float* xr = a.x + size_t(m0 + m) * n_in;
        for (int i = 4 * lane; i < n_in; i += 128) {
          float4 v = ldg4(xr + i);
          if (g != nullptr) {
            ss += double(v.x) * v.x + double(v.y) * v.y + double(v.z) * v.z + double(v.w) * v.w;
            const float4 gv = ldg4(g + i);
            v.x *= gv.x, v.y *= gv.y, v.z *= gv.z, v.w *= gv.w;
          }
          mx = fmaxf(mx, fmaxf(fmaxf(fabsf(v.x), fabsf(v.y)), fmaxf(fabsf(v.z), fabsf(v.w))));
        }
      }
      ss = warp_sum(ss);
      mx = warp_max(mx);
      if (lane == 0) {
        float scale = 1.0f, post = 1.0f;
        if (mx > kF16Limit && mx <= FLT_MAX) {  // mx / 2^14 < 2^e  =>  mx · 2^-e < 2^14
          int e = 0;
          frexpf(mx / kF16Limit, &e);
          scale = ldexpf(1.0f, -e);
          post = ldexpf(1.0f, e);
        }
        if (g != nullptr) post *= 1.0f / sqrtf(float(ss / n_in) + a.eps);
        row_scale[m] = scale;
        row_post[m] = post;
      }
    }
  }
  __syncthreads();

  const int warp = threadIdx.x / 32, wm = warp / 4, wn = warp % 4;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  XStep xs;
  load_x(xs, a.x, m0, n_rows, n_in, 0);
  const int n_chunks = (n_in + C::kElems - 1) / C::kElems;
  for (int c = 0; c < n_chunks; ++c) {
    if (c + 1 < n_chunks) {  // raw(c + 1) was last read in chunk c - 1, before its closing barrier
      stage_chunk<T>(rowp, row_bytes, c + 1, raw(c + 1));
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    for (int s = 0; s < C::kSteps; ++s) {
      const int k0 = c * C::kElems + s * kBK;
      if (k0 >= n_in) break;  // uniform over the block
      // Buffer (t & 1) was last read by the MMAs of step t - 2, which every thread finished before the
      // barrier of step t - 1.
      __half* const As = ab + ((c * C::kSteps + s) & 1) * ((kBM + kBN) * kLdAB);
      __half* const Bs = As + kBM * kLdAB;
      decode_step<T>(raw(c), rowp, c, s, k0, n_in, Bs);
      store_x(xs, a.norm_w, row_scale, n_in, k0, As);
      __syncthreads();
      if (k0 + kBK < n_in) load_x(xs, a.x, m0, n_rows, n_in, k0 + kBK);
#pragma unroll
      for (int kk = 0; kk < kBK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
#pragma unroll
        for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(fa[i], As + (wm * 32 + i * 16) * kLdAB + kk, kLdAB);
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(fb[j], Bs + (wn * 32 + j * 16) * kLdAB + kk, kLdAB);
#pragma unroll
        for (int i = 0; i < 2; ++i)
#pragma unroll
          for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
    }
  }

  // Epilogue through shared memory, over the pipeline buffers (all copies waited; the barrier ends their reads).
  __syncthreads();
  float* Cs = reinterpret_cast<float*>(smem);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(Cs + (wm * 32 + i * 16) * kLdC + wn * 32 + j * 16, acc[i][j], kLdC, wmma::mem_row_major);
  __syncthreads();
  if (swiglu) {
    constexpr int kHalf = kBN / 2;
    const int n_out = a.w[0].n_out;
    for (int i = threadIdx.x; i < kBM * kHalf; i += kThreads) {
      const int m = i / kHalf, v = i % kHalf;
      if (m0 + m >= n_rows || col_mat[v] < 0) continue;
      const float gate = Cs[m * kLdC + v] * row_post[m], up = Cs[m * kLdC + v + kHalf] * row_post[m];
      a.y[0][size_t(m0 + m) * n_out + col_row[v]] = gate / (1.0f + expf(-gate)) * up;
    }
  } else {
    const bool add = a.epilogue == MatvecEpilogue::AddInto;
    for (int i = threadIdx.x; i < kBM * kBN; i += kThreads) {
      const int m = i / kBN, v = i % kBN, k = col_mat[v];
      if (m0 + m >= n_rows || k < 0) continue;
      const float val = Cs[m * kLdC + v] * row_post[m];
      float* y = a.y[k] + size_t(m0 + m) * a.w[k].n_out + col_row[v];
      *y = add ? *y + val : val;
    }
  }
}

template <GgmlType T>
void launch_typed(const MatvecArgs& a, cudaStream_t stream) {
  using C = Chunk<T>;
  static const bool smem_set = [] {  // > 48 KB of dynamic shared memory needs an opt-in (once per type)
    KVANT_CUDA_CHECK(
        cudaFuncSetAttribute(matmul_tc_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmem));
    return true;
  }();
  (void)smem_set;
  int total = 0, tiles = 0;
  if (a.epilogue == MatvecEpilogue::SwiGlu) {
    total = a.w[0].n_out;
    tiles = ceil_div(total, kBN / 2);
  } else {
    for (int k = 0; k < a.n_w; ++k) total += a.w[k].n_out;
    tiles = ceil_div(total, kBN);
  }
  if (tiles == 0 || a.n_rows <= 0) return;
  const dim3 grid(tiles, ceil_div(a.n_rows, kBM));
  launch_kernel(matmul_tc_kernel<T>, grid, kThreads, C::kSmem, stream, a, total);
  KVANT_CUDA_LAUNCHED();
}

// Block size (elements, bytes) of a weight type the kernel reads; false for others.
bool block_geometry(GgmlType t, int* qk, int* bytes) {
  switch (t) {
#define KVANT_CASE(T)             \
  case GgmlType::T:               \
    *qk = WFmt<GgmlType::T>::kQK; \
    *bytes = WFmt<GgmlType::T>::kBytes; \
    return true;
    KVANT_CASE(F32) KVANT_CASE(F16) KVANT_CASE(BF16) KVANT_CASE(Q8_0) KVANT_CASE(Q4_0) KVANT_CASE(Q4_1)
    KVANT_CASE(Q4_K) KVANT_CASE(Q5_K) KVANT_CASE(Q6_K)
#undef KVANT_CASE
    default: return false;
  }
}

}  // namespace

bool matmul_tc_supports(const MatvecArgs& a) {
  if (a.n_w < 1 || a.n_w > 3 || a.n_rows < 1 || a.x == nullptr) return false;
  if (a.epilogue == MatvecEpilogue::SwiGlu && (a.n_w != 2 || a.w[1].n_out != a.w[0].n_out)) return false;
  const GgmlType type = a.w[0].type;
  const int n_in = a.w[0].n_in;
  int qk = 0, block_bytes = 0;
  if (!block_geometry(type, &qk, &block_bytes) || n_in <= 0 || n_in % 32 != 0 || n_in % qk != 0) return false;
  // Float formats decode with 4-byte loads from the staged copy, which keeps the source address mod 4.
  const bool float_fmt = type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
  const uintptr_t data_align = float_fmt ? 4 : 2;
  const size_t row_bytes = size_t(n_in / qk) * block_bytes;
  for (int k = 0; k < a.n_w; ++k) {
    const DeviceMatrix& m = a.w[k];
    if (m.type != type || m.n_in != n_in || m.row_bytes != row_bytes || m.n_out < 0 || m.data == nullptr ||
        reinterpret_cast<uintptr_t>(m.data) % data_align != 0)
      return false;
  }
  const int n_y = a.epilogue == MatvecEpilogue::SwiGlu ? 1 : a.n_w;
  for (int k = 0; k < n_y; ++k)
    if (a.y[k] == nullptr) return false;
  if (reinterpret_cast<uintptr_t>(a.x) % 16 != 0 || reinterpret_cast<uintptr_t>(a.norm_w) % 16 != 0) return false;
  return true;
}

void launch_matmul_tc(const MatvecArgs& a, cudaStream_t stream) {
  with_weight_format(a.w[0].type, "matmul_tc", [&](auto t) { launch_typed<decltype(t)::value>(a, stream); });
}

}  // namespace kvant::cuda
