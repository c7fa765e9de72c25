// backends/cuda/kv_write.cu — RoPE of Q and K fused with the KV-cache write: one warp per head vector
// ropes it in shared memory, writes it back, and (K and V) encodes it into the cache at the cell of its
// position, plus the f16 copy in the recent-token window ring. When K or V is turbo_kv, a second kernel
// gives each head vector a block of kTurboStarts warps so the scale search runs its starts in parallel
// (one start per warp) instead of one after another. In decode with a window, CudaOps stages the turbo
// vectors of every layer (RopeKvArgs::stage) and encodes them all in one launch on a side stream
// (launch_turbo_encode_staged) once the last layer's K/V are written.
#include "backends/cuda/kv_device.cuh"
#include "backends/cuda/turbo_encode.cuh"

namespace kvant::cuda {
namespace {

constexpr int kWarps = 4;

// RoPE in place of query head h of row r, through the warp's shared scratch x (head_dim floats).
__device__ void rope_query_head(const RopeKvArgs& a, int r, int h, int pos, float* x, int lane) {
  const int d = a.rope.head_dim;
  float* q = a.q + (size_t(r) * a.n_head + h) * d;
  for (int i = lane; i < d; i += 32) x[i] = q[i];
  __syncwarp();
  rope_shared(x, pos, a.rope, lane);
  for (int i = lane; i < d; i += 32) q[i] = x[i];
}

__global__ void __launch_bounds__(kWarps * 32) rope_kv_kernel(RopeKvArgs a, int tasks_per_row) {
  pdl_prologue();
  extern __shared__ float smem[];  // per warp: x[d] floats, idx[d] ints, the encoded block (<= 4d bytes)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int d = a.rope.head_dim;
  float* x = smem + size_t(warp) * 3 * d;
  int* idx = reinterpret_cast<int*>(x + d);
  uint8_t* block = reinterpret_cast<uint8_t*>(x + 2 * d);
  const int task = blockIdx.x * kWarps + warp;
  if (task >= a.n_rows * tasks_per_row) return;
  const int r = task / tasks_per_row;
  int t = task % tasks_per_row;
  const int pos = a.positions[r];
  const int n_kv = a.kv.n_head_kv;
  const int n_q = a.rope_q ? a.n_head : 0;
  if (t < n_q) return rope_query_head(a, r, t, pos, x, lane);
  t -= n_q;
  const bool is_k = t < n_kv;
  const int h = is_k ? t : t - n_kv;
  const float* src = (is_k ? a.k : a.v) + (size_t(r) * n_kv + h) * d;
  for (int i = lane; i < d; i += 32) x[i] = src[i];
  __syncwarp();
  if (is_k && a.rope_k) {
    rope_shared(x, pos, a.rope, lane);
    float* k = a.k + (size_t(r) * n_kv + h) * d;
    for (int i = lane; i < d; i += 32) k[i] = x[i];
  }
  if (!a.write_kv) return;
  store_token_vector(a.kv, a.layer, a.tables, a.window_only, a.stage, is_k, h, pos, x, idx, block, lane);
}

// The turbo_kv encode of one vector by a whole block of kTurboStarts warps: x is this warp's own copy of
// the (roped, unrotated) vector in shared memory; every warp rotates it, warp w fits start w, and the
// warp with the best start writes the block to dst (identical bytes to the CPU codec's sequential
// search: each start's fit is deterministic) to cell pos of head h of `half` (TurboHalf layout). Every
// thread of the block must call it.
__device__ void turbo_encode_by_block(KvType type, float* x, int* idx, uint8_t* block, int d, size_t bytes,
                                      const TurboHalf& half, int h, int pos, const KvTables& tables, int warp,
                                      int lane) {
  __shared__ double captured[kTurboStarts];
  __shared__ float scales[kTurboStarts];
  __shared__ float codebook[64];  // centroids then boundaries of the vector's bit width
  const TurboCodebook cb = turbo_codebook_shared(type, tables, codebook);
  __syncwarp();
  rotate_shared(x, d, tables.signs, false, lane, 32, WarpSync{});
  const float sigma = warp_rms(x, d, lane);
  const bool fit = sigma > 0.0f && isfinite(sigma);
  __syncthreads();  // codebook staged
  if (fit) {
    const TurboFit f = turbo_fit_from(x, idx, d, cb, sigma * turbo_start_factor(warp), lane);
    if (lane == 0) {
      captured[warp] = f.captured;
      scales[warp] = f.scale;
    }
  }
  __syncthreads();
  int best = 0;
  if (fit) {
    double best_captured = -2.0;
    for (int k = 0; k < kTurboStarts; ++k) {
      if (captured[k] > best_captured) {
        best_captured = captured[k];
        best = k;
      }
    }
  }
  if (warp != best) return;
  if (!fit) {
    for (int i = lane; i < d; i += 32) idx[i] = 0;
    __syncwarp();
  }
  // Encode into this warp's shared block, then copy it out in one pass (as the single-warp kernel does).
  turbo_store(idx, d, cb.bits, fit ? scales[best] : 0.0f, block, lane);
  __syncwarp();
  uint8_t* const codes = half.code_row(h, pos);
  for (size_t i = lane; i + 2 < bytes; i += 32) codes[i] = block[2 + i];
  if (lane < 2) half.scale_at(h, pos)[lane] = block[lane];
}

// One block of kTurboStarts warps per task (task order as rope_kv_kernel). Query heads and non-turbo K/V
// vectors are handled by warp 0 alone; a turbo vector is roped by every warp in its own copy and encoded
// by the whole block (turbo_encode_by_block). Staged turbo writes (a.stage) go to rope_kv_kernel.
__global__ void __launch_bounds__(kTurboStarts * 32) rope_kv_turbo_kernel(RopeKvArgs a, int tasks_per_row) {
  pdl_prologue();
  extern __shared__ float smem[];  // per warp: x[d] floats, idx[d] ints, encoded block (<= 4d bytes)
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int d = a.rope.head_dim;
  float* x = smem + size_t(warp) * 3 * d;
  int* idx = reinterpret_cast<int*>(x + d);
  uint8_t* block = reinterpret_cast<uint8_t*>(x + 2 * d);
  const int r = blockIdx.x / tasks_per_row;
  int t = blockIdx.x % tasks_per_row;
  const int pos = a.positions[r];
  const int n_kv = a.kv.n_head_kv;
  const int n_q = a.rope_q ? a.n_head : 0;
  if (t < n_q) {  // query head: warp 0 alone
    if (warp == 0) rope_query_head(a, r, t, pos, x, lane);
    return;
  }
  t -= n_q;
  const bool is_k = t < n_kv;
  const int h = is_k ? t : t - n_kv;
  const KvType type = is_k ? a.kv.type_k : a.kv.type_v;
  const bool turbo = a.write_kv && kv_is_turbo(type) && a.stage == nullptr;
  if (!turbo && warp != 0) return;
  const float* src = (is_k ? a.k : a.v) + (size_t(r) * n_kv + h) * d;
  for (int i = lane; i < d; i += 32) x[i] = src[i];
  // Every warp must have read k before warp 0 writes the roped k back over it.
  if (turbo) __syncthreads();
  __syncwarp();
  if (is_k && a.rope_k) {
    rope_shared(x, pos, a.rope, lane);
    if (warp == 0) {
      float* k = a.k + (size_t(r) * n_kv + h) * d;
      for (int i = lane; i < d; i += 32) k[i] = x[i];
    }
  }
  if (!a.write_kv) return;
  if (!turbo) {  // warp 0 alone: an f32/f16/q8_0/q4_0 half, or a staged turbo half
    store_token_vector(a.kv, a.layer, a.tables, false, a.stage, is_k, h, pos, x, idx, block, lane);
    return;
  }
  // Turbo: the whole block is here (no warp returned above), so block barriers are safe.
  if (a.kv.window > 0 && warp == 0) {
    uint8_t* ring = is_k ? a.layer.k_win : a.layer.v_win;
    uint16_t* w = reinterpret_cast<uint16_t*>(ring + (size_t(h) * a.kv.ring_slots + size_t(pos) % a.kv.ring_slots) * 2 * d);
    for (int i = lane; i < d; i += 32) w[i] = float_to_half_bits(x[i]);
  }
  const size_t bytes = is_k ? a.kv.k_bytes : a.kv.v_bytes;
  const TurboHalf half(is_k ? a.layer.k : a.layer.v, a.kv.n_head_kv, a.kv.n_ctx, bytes);
  turbo_encode_by_block(type, x, idx, block, d, bytes, half, h, pos, a.tables, warp, lane);
}

// One block of kTurboStarts warps per (layer, K or V, head): the staged roped vector of the decode token
// encoded into that layer's compressed cache at the token's cell. Non-turbo halves return at once.
__global__ void __launch_bounds__(kTurboStarts * 32) turbo_encode_staged_kernel(StagedTurboArgs a) {
  pdl_prologue();
  extern __shared__ float smem[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int d = a.kv.head_dim, n_kv = a.kv.n_head_kv;
  float* x = smem + size_t(warp) * 3 * d;
  int* idx = reinterpret_cast<int*>(x + d);
  uint8_t* block = reinterpret_cast<uint8_t*>(x + 2 * d);
  const int layer = blockIdx.x / (2 * n_kv);
  const int t = blockIdx.x % (2 * n_kv);
  const bool is_k = t < n_kv;
  const int h = is_k ? t : t - n_kv;
  const KvType type = is_k ? a.kv.type_k : a.kv.type_v;
  if (!kv_is_turbo(type)) return;  // uniform over the block
  const float* staged = a.stage + ((size_t(layer) * 2 + (is_k ? 0 : 1)) * n_kv + h) * d;
  for (int i = lane; i < d; i += 32) x[i] = staged[i];
  const size_t bytes = is_k ? a.kv.k_bytes : a.kv.v_bytes;
  const DeviceKvLayer& L = a.layers[layer];
  const TurboHalf half(is_k ? L.k : L.v, n_kv, a.kv.n_ctx, bytes);
  turbo_encode_by_block(type, x, idx, block, d, bytes, half, h, a.positions[0], a.tables, warp, lane);
}

}  // namespace

void launch_rope_kv(const RopeKvArgs& a, cudaStream_t stream) {
  const int tasks_per_row = (a.rope_q ? a.n_head : 0) + (a.rope_k || a.write_kv ? 2 * a.kv.n_head_kv : 0);
  if (tasks_per_row == 0 || a.n_rows == 0) return;
  const bool turbo = kv_type_is_turbo(a.kv.type_k) || kv_type_is_turbo(a.kv.type_v);
  assert((a.stage == nullptr || turbo) && "staging is for turbo caches");
  if (a.write_kv && !a.window_only && a.stage == nullptr && turbo) {
    const size_t smem = size_t(kTurboStarts) * 3 * a.rope.head_dim * sizeof(float);
    launch_kernel(rope_kv_turbo_kernel, a.n_rows * tasks_per_row, kTurboStarts * 32, smem, stream, a, tasks_per_row);
    KVANT_CUDA_LAUNCHED();
    return;
  }
  const int total = a.n_rows * tasks_per_row;
  const size_t smem = size_t(kWarps) * 3 * a.rope.head_dim * sizeof(float);
  launch_kernel(rope_kv_kernel, ceil_div(total, kWarps), kWarps * 32, smem, stream, a, tasks_per_row);
  KVANT_CUDA_LAUNCHED();
}

void launch_turbo_encode_staged(const StagedTurboArgs& a, cudaStream_t stream) {
  const size_t smem = size_t(kTurboStarts) * 3 * a.kv.head_dim * sizeof(float);
  launch_kernel(turbo_encode_staged_kernel, a.n_layer * 2 * a.kv.n_head_kv, kTurboStarts * 32, smem, stream, a);
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
