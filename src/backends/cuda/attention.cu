// backends/cuda/attention.cu — attention entry point: picks the K/V instantiation (attention_k_*.cu)
// and merges the per-split partials (m, l, acc) into the output, rotating V's accumulator back and
// adding the f16 window's share (kept in the original basis).
#include "backends/cuda/attention.cuh"

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

__global__ void attention_combine_kernel(AttentionArgs a) {
  extern __shared__ float sm[];
  const int d = a.kv.head_dim;
  const int n_parts = a.splits_main + a.splits_window;
  const size_t head = blockIdx.x;  // r * n_head + query head
  const float* parts = a.partial + head * n_parts * (d + 2);
  float* x_main = sm;     // [d]
  float* x_win = sm + d;  // [d]
  float m = -INFINITY;
  for (int s = 0; s < n_parts; ++s) {
    const float* p = parts + size_t(s) * (d + 2);
    if (p[1] > 0.0f) m = fmaxf(m, p[0]);
  }
  float l = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) x_main[i] = x_win[i] = 0.0f;
  for (int s = 0; s < n_parts; ++s) {
    const float* p = parts + size_t(s) * (d + 2);
    if (!(p[1] > 0.0f)) continue;  // empty split: its acc was never written
    const float w = expf(p[0] - m);
    l += p[1] * w;
    float* x = s < a.splits_main ? x_main : x_win;
    for (int i = threadIdx.x; i < d; i += blockDim.x) x[i] += w * p[2 + i];
  }
  __syncthreads();
  if (a.kv.rotate_v) rotate_shared(x_main, d, a.tables.signs, true, threadIdx.x, blockDim.x, BlockSync{});
  const float inv = 1.0f / l;
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

void launch_attention(const AttentionArgs& a, cudaStream_t stream) {
  const int d = a.kv.head_dim;
  const int g_total = a.n_head / a.kv.n_head_kv;
  const int n_gchunks = (g_total + kAttnMaxG - 1) / kAttnMaxG;
  const dim3 grid(a.n_rows * a.kv.n_head_kv * n_gchunks, a.splits_main + a.splits_window);
  const size_t smem = attention_smem_floats(d) * sizeof(float);
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
  attention_combine_kernel<<<a.n_rows * a.n_head, 128, 2 * d * sizeof(float), stream>>>(a);
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
