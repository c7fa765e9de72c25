// backends/cuda/attention.cu — attention entry point: picks the K/V instantiation (attention_k_*.cu)
// and, when a row's keys were split over several blocks, merges the per-split partials (m, l, acc)
// into the output, rotating V's accumulator back and adding the f16 window's share (original basis).
// With a single split the attention kernel writes the output itself and no combine is launched.
#include "backends/cuda/attention.cuh"

#include <algorithm>

namespace kvant::cuda {

// Defined in attention_k_*.cu.
extern template void launch_attention_k<KvType::F32>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::F16>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::Q8_0>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::Q4_0>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::TURBO_2B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::TURBO_3B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::TURBO_4B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
extern template void launch_attention_k<KvType::TURBO_5B>(const AttentionArgs&, dim3, size_t, cudaStream_t);

namespace {

// Threads of a combine block: 256 so that at head_dim 64 / 128 four / two threads share an element's
// splits, each with 8 loads in flight (the partials' L2 round trips, not bandwidth, bound this kernel).
constexpr int kCombineThreads = 256;

// One block per (row, query head). Warp 0 finds the maximum and the split weights; then the threads sum
// the output elements over the splits (several threads per element when d < 256), main and window apart.
__global__ void attention_combine_kernel(AttentionArgs a) {
  if (a.launch_dependents) pdl_launch_dependents();
  pdl_prologue();
  extern __shared__ float comb_sm[];
  const int d = a.kv.head_dim;
  const int n_parts = a.splits_main + a.splits_window;
  const size_t head = blockIdx.x;  // r * n_head + query head
  const float* parts = a.partial + head * n_parts * (d + 2);
  float* wt = comb_sm;            // [n_parts]
  float* x_main = wt + n_parts;   // [d]
  float* x_win = x_main + d;      // [d]
  __shared__ float l_sh;
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    float m = -INFINITY;
    for (int s = lane; s < n_parts; s += 32) {
      const float* p = parts + size_t(s) * (d + 2);
      if (p[1] > 0.0f) m = fmaxf(m, p[0]);
    }
    m = warp_max(m);
    float l = 0.0f;
    for (int s = lane; s < n_parts; s += 32) {
      const float* p = parts + size_t(s) * (d + 2);
      const float w = p[1] > 0.0f ? expf(p[0] - m) : 0.0f;  // empty split: weight 0
      wt[s] = w;
      l += p[1] * w;
    }
    l = warp_sum(l);
    if (lane == 0) l_sh = l;
  }
  __syncthreads();
  // Element i's sums over the splits, `lanes` threads per element (each a stride of the splits, loads
  // independent and unconditional: a split whose block saw no key has weight 0 and its partial, maybe
  // stale, is selected away), then added up through shared memory.
  const int lanes = max(1, int(blockDim.x) / d), sub = int(threadIdx.x) / d, i = int(threadIdx.x) % d;
  float* const sums = x_win + d;  // [lanes][2][d]
  if (sub < lanes) {
    for (int e = i; e < d; e += int(blockDim.x)) {
      float xm = 0.0f, xw = 0.0f;
#pragma unroll 8
      for (int s = sub; s < a.splits_main; s += lanes) {
        const float v = parts[size_t(s) * (d + 2) + 2 + e];
        xm += wt[s] != 0.0f ? wt[s] * v : 0.0f;
      }
      for (int s = a.splits_main + sub; s < n_parts; s += lanes) {
        const float v = parts[size_t(s) * (d + 2) + 2 + e];
        xw += wt[s] != 0.0f ? wt[s] * v : 0.0f;
      }
      sums[(sub * 2) * d + e] = xm;
      sums[(sub * 2 + 1) * d + e] = xw;
    }
  }
  __syncthreads();
  for (int e = threadIdx.x; e < d; e += blockDim.x) {
    float xm = 0.0f, xw = 0.0f;
    for (int k = 0; k < lanes; ++k) xm += sums[(2 * k) * d + e], xw += sums[(2 * k + 1) * d + e];
    x_main[e] = xm;
    x_win[e] = xw;
  }
  __syncthreads();
  if (a.kv.rotate_v) rotate_shared(x_main, d, a.tables.signs, true, threadIdx.x, blockDim.x, BlockSync{});
  const float inv = 1.0f / l_sh;
  float* o = a.out + head * d;
  for (int i = threadIdx.x; i < d; i += blockDim.x) o[i] = (x_main[i] + x_win[i]) * inv;
}

}  // namespace

size_t attention_partial_floats(int n_rows, int n_head, int head_dim, int splits) {
  return size_t(n_rows) * n_head * splits * (head_dim + 2);
}

bool attention_supports(int head_dim, int group) {
  return head_dim > 0 && head_dim % 8 == 0 && head_dim <= 512 && group >= 1;
}

void launch_attention(const AttentionArgs& args, cudaStream_t stream) {
  // No compressed split (every key the launch can see is in the f16 window): the f16 instantiation, which
  // reads the window exactly as the others do, with no staging buffers or codebook set-up.
  AttentionArgs a = args;
  if (a.splits_main == 0 && a.kv.window > 0) a.kv.type_k = a.kv.type_v = KvType::F16;
  const int d = a.kv.head_dim;
  const int g_total = a.n_head / a.kv.n_head_kv;
  const int gm = attention_block_heads(a);
  const int n_gchunks = (g_total + gm - 1) / gm;
  const int n_parts = a.splits_main + a.splits_window;
  const dim3 grid(a.n_rows * a.kv.n_head_kv * n_gchunks, n_parts);
  const size_t smem =
      attention_smem(a.kv.type_k, a.kv.k_bytes, a.kv.type_v, a.kv.v_bytes, d, gm, a.stages, a.mma).bytes();
  a.launch_dependents = a.launch_dependents && int(grid.x * grid.y) <= device_sm_count();
  switch (a.kv.type_k) {
    case KvType::F32: launch_attention_k<KvType::F32>(a, grid, smem, stream); break;
    case KvType::F16: launch_attention_k<KvType::F16>(a, grid, smem, stream); break;
    case KvType::Q8_0: launch_attention_k<KvType::Q8_0>(a, grid, smem, stream); break;
    case KvType::Q4_0: launch_attention_k<KvType::Q4_0>(a, grid, smem, stream); break;
    case KvType::TURBO_2B: launch_attention_k<KvType::TURBO_2B>(a, grid, smem, stream); break;
    case KvType::TURBO_3B: launch_attention_k<KvType::TURBO_3B>(a, grid, smem, stream); break;
    case KvType::TURBO_4B: launch_attention_k<KvType::TURBO_4B>(a, grid, smem, stream); break;
    case KvType::TURBO_5B: launch_attention_k<KvType::TURBO_5B>(a, grid, smem, stream); break;
  }
  if (n_parts > 1) {
    const size_t floats = n_parts + 2 * d + 2 * std::max(1, kCombineThreads / d) * d;  // weights, x_main, x_win, sums
    launch_kernel(attention_combine_kernel, a.n_rows * a.n_head, kCombineThreads, floats * sizeof(float), stream, a);
    KVANT_CUDA_LAUNCHED();
  }
}

}  // namespace kvant::cuda
