// backends/cuda/kernels.h — host-side launchers of the CUDA kernels and their parameter structs.
// CudaOps (cuda_ops.cu) plans a forward pass and calls these; each .cu file implements one family.
// All pointers are device pointers unless a field says otherwise.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "kv/kv_types.h"
#include "quant/ggml_type.h"

namespace kvant::cuda {

// ---- matvec.cu: weight formats and matrix-vector products ----

// Weight types the matvec kernels read in their GGUF layout; others are dequantised to F32 at upload.
bool matvec_supports(GgmlType type);

struct DeviceMatrix {
  const uint8_t* data = nullptr;  // n_out rows of row_bytes
  GgmlType type = GgmlType::F32;
  int n_in = 0, n_out = 0;
  size_t row_bytes = 0;
};

enum class MatvecEpilogue { Store, AddInto, SwiGlu };
class GemmScratch;  // gemm_f16.h

// y_k[r][j] = W_k[j] · xin[r] for k < n_w weights of equal type and n_in (one launch), where
// xin = rmsnorm(x[r]) * norm_w when norm_w is set, else x[r]. Epilogues: AddInto: y_0 += W_0·xin
// (residual); SwiGlu (n_w = 2): y_0 = silu(W_0·xin) * (W_1·xin).  x: [n_rows][n_in], y_k: [n_rows][n_out_k]
struct MatvecArgs {
  int n_w = 1;
  DeviceMatrix w[3];
  float* y[3] = {nullptr, nullptr, nullptr};
  const float* x = nullptr;
  int n_rows = 1;
  const float* norm_w = nullptr;
  float eps = 0.0f;
  MatvecEpilogue epilogue = MatvecEpilogue::Store;
  GemmScratch* scratch = nullptr;  // lets batches of kGemmF16MinRows+ rows take the f16 GEMM (gemm_f16.h)
  bool evict_first = false;  // int8 decode kernels: read the weights with an L2 evict-first hint
  // int8 decode kernels: each block lets the next kernel launch once its warp 0 has issued its last weight
  // tile (pdl_launch_dependents), so the next kernel's blocks take SMs as this one's blocks leave them.
  bool launch_dependents = false;
  // int8 decode kernels: the last late_blocks blocks take late_pct % of an even share of the rows. They
  // start only when the previous kernel (decode attention, one block per SM) leaves their SMs, after the
  // early blocks have streamed most of their rows.
  int late_blocks = 0, late_pct = 100;
  // launch_matvec_host_rows only: y[0] is page-locked host memory mapped into the device (the session's
  // logits). Each warp takes a contiguous run of its block's rows and writes every 8 finished rows as one
  // 32-byte store, so the rows cross PCIe while the kernel streams its weights.
  bool host_rows = false;
};
void launch_matvec(const MatvecArgs& a, cudaStream_t stream);
// a with host_rows (one activation row, one weight, Store) through the one-row int8 kernel that writes y[0]
// (mapped host memory) in row runs; false, launching nothing, where that kernel does not apply (other weight
// types would write host memory one float per row).
bool launch_matvec_host_rows(const MatvecArgs& a, cudaStream_t stream);
// a0 and a1 (one activation row each, plain stores) as one launch when their weight types form a pair the
// int8 kernels fuse (Q4_K or Q5_K with Q6_K: Q/K and V of a K-quant mix); false, launching nothing, if not.
bool launch_matvec_pair(const MatvecArgs& a0, const MatvecArgs& a1, cudaStream_t stream);

// out[t][:] = row tokens[t] of table (tokens on the device).                 out: [n][table.n_in]
struct RopeTableArgs;  // below
void launch_embed(const DeviceMatrix& table, const int32_t* tokens, int n, float* out, cudaStream_t stream,
                  const RopeTableArgs* rope_table = nullptr);

// ---- elementwise.cu ----
// out[r] = x[r] / rms(x[r]) * w (sum of squares in double, as the CPU does).
void launch_rmsnorm(const float* x, const float* w, int n_rows, int dim, float eps, float* out, cudaStream_t stream);
void launch_add(float* x, const float* y, int64_t n, cudaStream_t stream);
void launch_swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);

// ---- kv_write.cu: RoPE and KV encode ----

// Constant tables the KV kernels read: rotation signs and the Lloyd–Max codebooks (2..5 bits).
struct KvTables {
  const float* signs = nullptr;          // [kKvMaxHeadDim]
  const float* centroids[4] = {};        // bits 2..5: [2^bits]
  const float* boundaries[4] = {};       // bits 2..5: [2^bits - 1]
};

// One layer's cache storage on the device, same layout as the host KvCache:
// k: [n_head_kv][n_ctx][k_bytes], window k_win: [n_head_kv][ring_slots][2*d] (f16, unrotated).
struct DeviceKvLayer {
  uint8_t *k = nullptr, *v = nullptr, *k_win = nullptr, *v_win = nullptr;
};
struct DeviceKvConfig {
  KvType type_k = KvType::F16, type_v = KvType::F16;
  bool rotate_k = false, rotate_v = false;  // effective (turbo always rotates)
  int head_dim = 0, n_head_kv = 0, n_ctx = 0;
  size_t k_bytes = 0, v_bytes = 0;
  int window = 0, ring_slots = 0;
};

struct RopeParams {
  int head_dim = 0, rope_dim = 0;
  float freq_base = 10000.0f, freq_scale = 1.0f;
  bool neox = false;
  const float* freq_factors = nullptr;  // device [rope_dim/2] or null
  // Decode (one row): {cos, sin} of every pair's angle at the row's position, written by the embed kernel
  // (launch_embed's RopeTableArgs) with the same arithmetic as rope_shared; null: computed per use.
  const float2* table = nullptr;
};
// launch_embed's optional work: the RoPE table of positions[0] (RopeParams::table) for a decode step.
struct RopeTableArgs {
  RopeParams rope;
  const int32_t* positions = nullptr;
  float2* table = nullptr;  // [rope_dim/2]
};

// For each row r (position positions[r]): optionally RoPE q's n_head heads in place, RoPE k's
// n_head_kv heads in place, and encode k and v heads into the cache at cell positions[r] (and into
// the f16 window ring). q, k, v: [n_rows][heads*d].
struct RopeKvArgs {
  float* q = nullptr;
  int n_head = 0;
  bool rope_q = false, rope_k = false, write_kv = false;
  // Decode with a window (CudaOps::emit_rope_kv): turbo_kv vectors are not encoded here but written, roped,
  // to stage ([2][n_head_kv][d] f32: K then V) for launch_turbo_encode_staged. nullptr: encode here.
  float* stage = nullptr;
  // The cache's capacity fits its f16 window (window_only_kv): K/V go to the window ring only; their
  // compressed copies would never be read.
  bool window_only = false;
  float* k = nullptr;
  const float* v = nullptr;
  int n_rows = 0;
  const int32_t* positions = nullptr;
  RopeParams rope;
  DeviceKvConfig kv;
  DeviceKvLayer layer;
  KvTables tables;
};
void launch_rope_kv(const RopeKvArgs& a, cudaStream_t stream);

// Whether every position a cache can hold stays in its f16 window: then attention reads only the ring
// and the compressed form is never written or read (short contexts decode as fast as an f16 cache).
inline bool window_only_kv(int64_t window, int64_t n_ctx) { return window > 0 && n_ctx <= window; }
inline bool window_only_kv(const DeviceKvConfig& c) { return window_only_kv(c.window, c.n_ctx); }

// The staged turbo_kv vectors of one decode token, all layers, encoded into each layer's compressed
// cache at cell positions[0] (one block of warps per vector).
struct StagedTurboArgs {
  const float* stage = nullptr;          // [n_layer][2][n_head_kv][d] f32 (RopeKvArgs::stage per layer)
  const DeviceKvLayer* layers = nullptr;  // device [n_layer]
  int n_layer = 0;
  const int32_t* positions = nullptr;     // device [1]
  DeviceKvConfig kv;
  KvTables tables;
};
void launch_turbo_encode_staged(const StagedTurboArgs& a, cudaStream_t stream);

// ---- attention*.cu: flash-decoding over the compressed cache ----
// A decode token's RoPE and K/V write done by the attention kernel itself (CudaOps fuses rope q, rope k,
// kv_write and attention when one row is decoded): every block ropes its query heads, and the blocks
// whose keys end at the token rope its K head and write K and V (window ring, then the stage of a
// deferred turbo encode or the encoded cell) before they attend. Saves one launch per layer.
struct FusedTokenWrite {
  bool on = false, rope_q = false, rope_k = false;
  RopeParams rope;
  const float* k = nullptr;  // [n_head_kv][d], not yet roped
  const float* v = nullptr;
  float* stage = nullptr;    // RopeKvArgs::stage
};

// The launches whose compressed segment runs on tensor cores (attend_warp_mma; AttentionArgs::mma on):
// turbo_kv_4b K and V at head_dim 64 or 128. Their blocks hold a pair table of the 4-bit codebook.
__host__ __device__ constexpr bool attention_mma_types(KvType tk, KvType tv) {
  return tk == KvType::TURBO_4B && tv == KvType::TURBO_4B;
}
__host__ __device__ constexpr bool attention_uses_mma(KvType tk, KvType tv, int d) {
  return attention_mma_types(tk, tv) && (d == 64 || d == 128);
}
// Wide blocks (AttentionArgs::warps): 16 warps, one block per SM, for a decode step on tensor cores that
// sees at least kAttnWideMinKeys compressed keys, so that one 32-replica pair table (conflict-free
// lookups) serves 16 warps where 4-warp blocks each hold a 16-replica one (CudaOps::attention_wide).
constexpr int kAttnWideWarps = 16, kAttnWideMinKeys = 49152;

struct AttentionArgs {
  const float* q = nullptr;  // [n_rows][n_head*d] (not yet roped when token.on && token.rope_q)
  float* out = nullptr;      // [n_rows][n_head*d]
  int n_rows = 0, n_head = 0;
  const int32_t* positions = nullptr;
  DeviceKvConfig kv;
  DeviceKvLayer layer;
  KvTables tables;
  int splits_main = 1, splits_window = 0;  // sequence splits of the compressed part and the window
  float* partial = nullptr;  // [n_rows][n_head][splits][d + 2] (m, l, acc)
  FusedTokenWrite token;     // n_rows = 1 only
  bool evict_kv = false;     // stage turbo K/V with an L2 evict-first hint (decode: each block reads its keys once)
  // Let the next kernel (the output projection) launch at once and load its weights on the idle SMs
  // while this runs; launch_attention keeps it only when the attention grid has at most one block per
  // SM, and the combine kernel (decode: one block per query head) then does the same.
  bool launch_dependents = false;
  // Decode with one split per head on an f16 cache/window: one query head per block instead of a GQA
  // group (attention_block_heads); KVANT_CUDA_ATTN_PER_HEAD=0 turns it off (A/B).
  bool per_head_blocks = false;
  // Such a launch loads a step's values together with its keys instead of after the softmax (attend_warp);
  // KVANT_CUDA_ATTN_VALUES_EARLY=0 turns it off (A/B).
  bool values_early = false;
  // The compressed segment of a turbo_kv_4b K and V cache at head_dim 64 or 128 on tensor cores
  // (attention_uses_mma); KVANT_CUDA_ATTN_MMA=0 keeps it on the CUDA-core loop (A/B).
  // Its warps stage each step's K and V with two bulk copies (TMA, sm_90) completing on an mbarrier.
  bool mma = false;
  int lut_copies = 16;  // replicas of its pair table, 16 or 32 (mma_lut_bytes); KVANT_CUDA_ATTN_LUT
  int stages = 0;  // staging buffers per warp (turbo halves); 0: attention_smem's rule. KVANT_CUDA_ATTN_STAGES
  // Keys per staging step of the tensor-core path, 32 or 64: a 64-key step's K and V arrive by one set of
  // bulk copies and one barrier wait and are attended as two 32-key sub-steps. launch_attention keeps 64
  // for wide blocks at d = 64 only (attention_step_keys); KVANT_CUDA_ATTN_STEP=32 (A/B).
  int step_keys = 64;
  // A decode step's first staging copies of the compressed segment go out before the wait for the previous
  // kernel (griddepcontrol.wait): those keys were written by earlier forwards (this forward's token is in the
  // window, or stored by the block whose keys end at it, which waits as before), and the positions come
  // from the upload that precedes the forward. Set for the fused token write (decode) only;
  // KVANT_CUDA_ATTN_EARLY_STAGE=0 turns it off (A/B).
  bool stage_before_wait = false;
  // Warps per block: 4, or 16 (kAttnWideWarps, one block per SM) for a tensor-core launch over a long
  // context (attention_wide_ok; CudaOps::attention_shape decides; KVANT_CUDA_ATTN_WARPS=4 keeps 4, A/B).
  int warps = 4;
  // Threads of a split-combine block; 0: combine_threads' rule (enough that each thread sums at most 16
  // splits of an element, 256..1024). KVANT_CUDA_COMBINE_THREADS=N fixes it (A/B).
  int combine_threads = 0;
};
// Threads of the combine block for n_parts partials at head_dim (fixed > 0: that many).
int combine_threads(int n_parts, int head_dim, int fixed = 0);
// Floats of AttentionArgs::partial the launch needs.
size_t attention_partial_floats(int n_rows, int n_head, int head_dim, int splits);
// Whether the attention kernels handle this head_dim and group size.
bool attention_supports(int head_dim, int group);
// Returns how many blocks its last kernel runs when they are at most one per SM (the SMs that the next
// kernel's early blocks cannot take until it ends), else 0.
int launch_attention(const AttentionArgs& a, cudaStream_t stream);

}  // namespace kvant::cuda
