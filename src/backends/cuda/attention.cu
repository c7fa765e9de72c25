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

// The partials' L2 round trips, not bandwidth, bound the combine kernel, so each thread issues a batch of
// kCombineBatch loads at once, the first batch before the split weights are known; combine_threads gives a
// block enough threads per element that each thread's splits fit one batch.
constexpr int kCombineBatch = 16;
constexpr int kCombineMinThreads = 256, kCombineMaxThreads = 1024;
constexpr int kCombineWeightRegs = 4;  // (m, l) pairs warp 0 keeps per lane: 128 splits in one pass

// One block per (row, query head). Warp 0 finds the maximum and the split weights while the other threads'
// first loads are in flight; then the threads sum the output elements over the splits (several threads per
// element when d < 256, each a stride of the splits), main and window apart, and add their sums in order.
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
  float* const sums = x_win + d;  // [lanes][2][d]
  __shared__ float l_sh;
  const int tid = int(threadIdx.x);
  const int lanes = max(1, int(blockDim.x) / d), sub = tid / d, i = tid % d;
  const bool summing = sub < lanes;
  // Batch of partial elements e of splits s0, s0 + lanes, ...: all loads independent and unconditional
  // on the weights (a split whose block saw no key has weight 0, and its partial, maybe stale, is
  // selected away below).
  float v[kCombineBatch];
  auto load_batch = [&](int e, int s0) {
#pragma unroll
    for (int j = 0; j < kCombineBatch; ++j) {
      const int s = s0 + j * lanes;
      v[j] = s < n_parts ? parts[size_t(s) * (d + 2) + 2 + e] : 0.0f;
    }
  };
  if (summing) load_batch(i, sub);
  if (tid < 32) {
    const int lane = tid;
    auto ml_of = [&](int s) { return *reinterpret_cast<const float2*>(parts + size_t(s) * (d + 2)); };
    float2 ml[kCombineWeightRegs];
    float m = -INFINITY;
#pragma unroll
    for (int k = 0; k < kCombineWeightRegs; ++k) {
      const int s = lane + 32 * k;
      ml[k] = s < n_parts ? ml_of(s) : make_float2(0.0f, 0.0f);
    }
#pragma unroll
    for (int k = 0; k < kCombineWeightRegs; ++k)
      if (ml[k].y > 0.0f) m = fmaxf(m, ml[k].x);
    for (int s = lane + 32 * kCombineWeightRegs; s < n_parts; s += 32) {
      const float2 p = ml_of(s);
      if (p.y > 0.0f) m = fmaxf(m, p.x);
    }
    m = warp_max(m);
    float l = 0.0f;
    auto weigh = [&](int s, float2 p) {
      const float w = p.y > 0.0f ? expf(p.x - m) : 0.0f;  // empty split: weight 0
      wt[s] = w;
      l += p.y * w;
    };
#pragma unroll
    for (int k = 0; k < kCombineWeightRegs; ++k)
      if (lane + 32 * k < n_parts) weigh(lane + 32 * k, ml[k]);
    for (int s = lane + 32 * kCombineWeightRegs; s < n_parts; s += 32) weigh(s, ml_of(s));
    l = warp_sum(l);
    if (lane == 0) l_sh = l;
  }
  __syncthreads();
  if (summing) {
    for (int e = i; e < d; e += int(blockDim.x)) {
      float xm = 0.0f, xw = 0.0f;
      for (int s0 = sub; s0 < n_parts; s0 += kCombineBatch * lanes) {
        if (e != i || s0 != sub) load_batch(e, s0);
#pragma unroll
        for (int j = 0; j < kCombineBatch; ++j) {
          const int s = s0 + j * lanes;
          if (s < n_parts) {
            const float w = wt[s];
            const float x = w != 0.0f ? w * v[j] : 0.0f;
            if (s < a.splits_main) xm += x;
            else xw += x;
          }
        }
      }
      sums[(sub * 2) * d + e] = xm;
      sums[(sub * 2 + 1) * d + e] = xw;
    }
  }
  __syncthreads();
  for (int e = tid; e < d; e += int(blockDim.x)) {
    float xm = 0.0f, xw = 0.0f;
    for (int k = 0; k < lanes; ++k) xm += sums[(2 * k) * d + e], xw += sums[(2 * k + 1) * d + e];
    x_main[e] = xm;
    x_win[e] = xw;
  }
  __syncthreads();
  if (a.kv.rotate_v) {  // one warp: its stages need no block barrier
    if (tid < 32) rotate_shared(x_main, d, a.tables.signs, true, tid, 32, WarpSync{});
    __syncthreads();
  }
  const float inv = 1.0f / l_sh;
  float* o = a.out + head * d;
  for (int e = tid; e < d; e += int(blockDim.x)) o[e] = (x_main[e] + x_win[e]) * inv;
}

// a.step_keys for a wide tensor-core launch at d = 64 (attend_warp_mma attends a 64-key step as two
// sub-steps there only) whose blocks still fit as many per SM as their kernel is built for
// (attention_blocks_per_sm; this guards KVANT_CUDA_ATTN_STAGES), else 32. H200, twentieth session: wide
// 131,072 keys at d = 64 45.7 against 49.2 µs per attention; 4-warp blocks at d = 64 gained nothing (1B
// tg64 @32K 998 against 1,004 t/s: their four blocks' buffers then fill the SM's shared memory).
int attention_step_keys(const AttentionArgs& a, int gm) {
  const int d = a.kv.head_dim;
  if (a.step_keys <= kAttnStep || !a.mma || !attention_uses_mma(a.kv.type_k, a.kv.type_v, d) || d > 64 ||
      a.warps <= kAttnWarps)
    return kAttnStep;
  const AttnSmem p = attention_smem(a.kv.type_k, a.kv.k_bytes, a.kv.type_v, a.kv.v_bytes, d, gm, a.stages, a.mma,
                                    a.lut_copies, a.warps, a.step_keys);
  const int blocks = attention_blocks_per_sm(a.warps, gm, 1);  // d = 64: one 8-element chunk per lane
  return blocks * (p.bytes() + 1024) <= kAttnSmemPerSm ? a.step_keys : kAttnStep;  // 1 KiB a block: the system's
}

}  // namespace

int combine_threads(int n_parts, int head_dim, int fixed) {
  if (fixed > 0) return fixed;
  const int lanes = (n_parts + kCombineBatch - 1) / kCombineBatch;  // threads per element
  const int threads = std::clamp(lanes * head_dim, kCombineMinThreads, kCombineMaxThreads);
  return (threads + 31) / 32 * 32;
}

size_t attention_partial_floats(int n_rows, int n_head, int head_dim, int splits) {
  return size_t(n_rows) * n_head * splits * (head_dim + 2);
}

bool attention_supports(int head_dim, int group) {
  return head_dim > 0 && head_dim % 8 == 0 && head_dim <= 512 && group >= 1;
}

int launch_attention(const AttentionArgs& args, cudaStream_t stream) {
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
  if (!attention_wide_ok(a)) a.warps = kAttnWarps;  // e.g. every key in the window: the f16 launch above
  a.step_keys = attention_step_keys(a, gm);
  const size_t smem = attention_smem(a.kv.type_k, a.kv.k_bytes, a.kv.type_v, a.kv.v_bytes, d, gm, a.stages, a.mma,
                                     a.lut_copies, a.warps, a.step_keys)
                          .bytes();
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
    const int threads = combine_threads(n_parts, d, a.combine_threads);
    const size_t floats = n_parts + 2 * d + 2 * std::max(1, threads / d) * d;  // weights, x_main, x_win, sums
    launch_kernel(attention_combine_kernel, a.n_rows * a.n_head, threads, floats * sizeof(float), stream, a);
    KVANT_CUDA_LAUNCHED();
    return a.n_rows * a.n_head <= device_sm_count() ? a.n_rows * a.n_head : 0;
  }
  return a.launch_dependents ? int(grid.x * grid.y) : 0;
}

}  // namespace kvant::cuda
