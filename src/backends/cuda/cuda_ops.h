// backends/cuda/cuda_ops.h — CudaOps: the CUDA implementation of Ops. Ops calls between begin_forward
// and end_forward are recorded, not run; end_forward uploads what they reference (weights once, in
// their GGUF format; the KV cache mirror), plans fused kernels (RMSNorm into the matvec input, Q/K/V
// and gate/up in one launch, SwiGLU and the residual add in the matvec epilogue, RoPE + KV encode,
// split attention + combine) and launches them. A one-token forward is captured as a CUDA graph once
// and replayed while the recorded op sequence is unchanged; token and position live in a device
// buffer written by one async copy before each launch. Ops called outside a forward run at once.
#pragma once

#include <unordered_map>
#include <vector>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/gemm_f16.h"
#include "backends/cuda/kernels.h"
#include "backends/ops.h"

namespace kvant {

class KvCache;

namespace cuda {

class CudaOps final : public Ops {
 public:
  CudaOps();
  ~CudaOps() override;

  const char* name() const override { return "cuda"; }
  float* alloc_activations(size_t n) override;
  float* begin_forward(const ForwardBatch& batch) override;
  void end_forward() override;
  int kernels_per_token() const override { return graph_nodes_; }
  bool matvec_pairs() const { return pair_matvec_; }  // whether mixed-type Q/K/V take one pair launch
  int attention_wide_launches() const { return wide_attention_launches_; }  // attentions emitted as wide blocks
  bool keeps_kv_on_device() const override { return true; }
  Status download_kv(KvCache& cache, KvCache& host) override;
  Status upload_kv(KvCache& cache, const KvCache& host) override;
  float* host_logit_buffer(size_t n) override;

  void embed(const WeightView& table, const int32_t* tokens, int n, float* out) override;
  void rmsnorm(const float* x, const WeightView& weight, int n_rows, int dim, float eps, float* out) override;
  void matmul(const WeightView& w, const float* x, int n_rows, float* y) override;
  void rope(float* x, int n_rows, int n_heads, const int32_t* positions, const RopeConfig& cfg) override;
  void kv_write(KvCache& cache, int layer, const float* k, const float* v, int n_rows,
                const int32_t* positions) override;
  void attention(const KvCache& cache, int layer, const float* q, int n_rows, int n_heads,
                 const int32_t* positions, float* out) override;
  void swiglu(const float* gate, const float* up, int64_t n, float* out) override;
  void add(float* x, const float* y, int64_t n) override;

  // Graphs can be switched off (KVANT_CUDA_GRAPHS=0, or tests comparing graph and eager runs).
  void set_graphs_enabled(bool on) { graphs_enabled_ = on; }
  // Decode's RoPE + K/V write inside the attention kernel (KVANT_CUDA_FUSE_KV=0 turns it off; tests, A/B).
  void set_token_write_fused(bool on) { fuse_token_write_ = on; }
  cudaStream_t stream() const { return stream_; }
  // Tests: copies the device copy of one encoded vector (K or V) of the cache to dst.
  void download_vector(KvCache& cache, bool k, int layer, int head, int cell, uint8_t* dst);

  enum class OpKind { Embed, RmsNorm, Matmul, Rope, KvWrite, Attention, SwiGlu, Add };
  struct Op {
    OpKind kind;
    WeightView w;                     // Embed table, RmsNorm weight, Matmul weight
    const float* a = nullptr;         // input: x, k, q, gate, or y of Add
    const float* b = nullptr;         // second input: v, up
    float* out = nullptr;             // output (Rope and Add: in place)
    int n_rows = 0, dim = 0, n_heads = 0, layer = 0;
    int64_t n = 0;
    float eps = 0.0f;
    RopeConfig rope;
    KvCache* cache = nullptr;
    const int32_t* ids = nullptr;     // tokens (Embed) or positions (host pointers)
  };

 private:
  struct DeviceWeight {
    DeviceBuffer buf;
    DeviceMatrix m;
  };
  struct DeviceKv {
    DeviceBuffer storage;
    DeviceKvConfig cfg;
    std::vector<DeviceKvLayer> layers;
    DeviceBuffer layer_table;  // layers, on the device (for the batched turbo encode)
    DeviceBuffer stage;        // turbo caches with a window: [n_layer][2][n_head_kv][d] f32 of the decode token
  };

  void record(const Op& op);
  void prepare(const std::vector<Op>& ops, bool graph_mode);  // uploads/allocations
  void execute(const std::vector<Op>& ops, bool graph_mode);                  // kernel launches
  size_t emit_matmuls(const std::vector<Op>& ops, size_t first, const Op* norm);
  RopeParams rope_params(const Op& rope);
  RopeKvArgs rope_kv_args(const Op* rope_q, const Op* rope_k, const Op* kv);
  void emit_rope_kv(const Op* rope_q, const Op* rope_k, const Op* kv);
  // Whether ops[i..i+3] (rope q, rope k, kv_write, attention) run as one attention launch.
  bool token_write_fuses(const std::vector<Op>& ops, size_t i, const RopeKvArgs& a) const;
  void fork_staged_encode(const Op& kv_write, const RopeKvArgs& a);
  void emit_attention(const Op& op, bool graph_mode, const RopeKvArgs* token = nullptr);
  void upload_ids(const int32_t* tokens, const int32_t* positions, int n);
  uint64_t signature(const std::vector<Op>& ops) const;
  void run_immediately(const Op& op);

  const DeviceMatrix& weight(const WeightView& w);
  const float* freq_factors(const float* host, int n);
  DeviceKv& kv(KvCache& cache);
  // Bytes of one layer's K, V and each window ring of the device mirror (the host cache's layout).
  struct KvLayerBytes {
    size_t k, v, window;
  };
  static KvLayerBytes kv_layer_bytes(const KvCache& cache);
  Status check_kv_copy(const KvCache& cache, const KvCache& host) const;  // same layout, host storage
  // Sequence splits of an attention's compressed segment (returned) and of its window; warps: the
  // launch's warps per block (AttentionArgs::warps).
  int attention_splits(const Op& op, bool graph_mode, int* splits_window, int* warps = nullptr) const;
  bool attention_wide(const Op& op) const;  // whether an attention runs wide blocks (AttentionArgs::warps)
  void bump_epoch() { ++epoch_; }

  cudaStream_t stream_ = nullptr;
  // Side stream for the batched turbo_kv encode of a decode step (emit_rope_kv): forked after the last
  // layer's staged K/V write, joined at the end of every forward (it reads only DeviceKv::stage).
  cudaStream_t side_stream_ = nullptr;
  cudaEvent_t fork_event_ = nullptr, join_event_ = nullptr;
  bool side_pending_ = false;
  void join_side();
  bool graphs_enabled_ = true;
  bool fuse_token_write_ = true;
  // Decode reads streamed once per token with an L2 evict-first hint: the weights of the int8 matvecs
  // (KVANT_CUDA_EVICT_WEIGHTS=0 turns it off) and the staged turbo K/V (KVANT_CUDA_EVICT_KV=0).
  bool evict_weights_ = true, evict_kv_ = true;
  // Decode attention lets the next kernel launch at its start (AttentionArgs::launch_dependents);
  // KVANT_CUDA_EARLY_LAUNCH=0 turns it off (A/B).
  bool early_dependents_ = true;
  // Decode matvecs let the next kernel launch once their weight tiles are all issued
  // (MatvecArgs::launch_dependents); KVANT_CUDA_EARLY_MATVEC=0 turns it off (A/B).
  bool early_matvec_ = true;
  bool per_head_attention_ = true;  // AttentionArgs::per_head_blocks; KVANT_CUDA_ATTN_PER_HEAD=0 (A/B)
  bool attention_values_early_ = true;  // AttentionArgs::values_early; KVANT_CUDA_ATTN_VALUES_EARLY=0
  bool mma_attention_ = true;       // AttentionArgs::mma; KVANT_CUDA_ATTN_MMA=0 (A/B)
  int attention_lut_copies_ = 0;    // AttentionArgs::lut_copies, 0: 32 in wide blocks, else 16; KVANT_CUDA_ATTN_LUT
  int attention_stages_ = 0;        // AttentionArgs::stages; KVANT_CUDA_ATTN_STAGES=N (2..8, A/B)
  int attention_step_keys_ = 64;    // AttentionArgs::step_keys; KVANT_CUDA_ATTN_STEP=32 (A/B)
  bool attention_early_stage_ = true;  // AttentionArgs::stage_before_wait; KVANT_CUDA_ATTN_EARLY_STAGE=0 (A/B)
  int attention_warps_ = kAttnWideWarps;  // wide blocks where they apply; KVANT_CUDA_ATTN_WARPS=4 (A/B)
  int attention_wide_keys_ = kAttnWideMinKeys;  // KVANT_CUDA_ATTN_WIDE_KEYS=N (A/B)
  int wide_attention_launches_ = 0;
  int combine_threads_ = 0;         // AttentionArgs::combine_threads; KVANT_CUDA_COMBINE_THREADS=N (A/B; 0: rule)
  int attention_splits_ = 0;        // sequence splits of a compressed segment; KVANT_CUDA_ATTN_SPLITS=N (1..256, A/B; 0: rule)
  // Q/K/V of two weight types (Q4_K/Q5_K with Q6_K) as one pair launch (launch_matvec_pair);
  // KVANT_CUDA_MATVEC_PAIR=0 gives two launches (A/B).
  bool pair_matvec_ = true;
  // The decode matvec after an attention whose last kernel holds busy_after_attention_ SMs (launch_attention)
  // gives its last that many blocks late_pct_ % of a share (MatvecArgs::late_pct); KVANT_CUDA_LATE_PCT=N
  // (1..100; 100: even shares, A/B). H200, same binary, means of three rounds: 20 % vs even 1B Q8_0 tg128
  // 1,489 vs 1,457 t/s, 8B Q4_K_M 445.8 vs 442.8 (40 %: 1,474 and 448.1).
  int late_pct_ = 20;
  int busy_after_attention_ = 0;
  std::vector<DeviceBuffer> activations_;
  GemmScratch gemm_scratch_;  // the large-batch prefill GEMM's f16 operands
  std::unordered_map<const void*, DeviceWeight> weights_;
  std::unordered_map<const float*, DeviceBuffer> freq_factors_;
  std::unordered_map<const KvCache*, DeviceKv> kvs_;
  DeviceBuffer tables_buf_;
  KvTables tables_;
  DeviceBuffer partial_, logits_, io_, staging_;
  int32_t* host_io_ = nullptr;  // pinned [2 * io_capacity_]: tokens then positions
  bool pinned_logits_ = true;     // KVANT_CUDA_PINNED_LOGITS=0: the caller's pageable buffer (A/B)
  float* host_logits_ = nullptr;  // pinned [host_logits_capacity_] (host_logit_buffer)
  float* host_logits_device_ = nullptr;  // host_logits_ as the device addresses it
  size_t host_logits_capacity_ = 0;
  // A decode forward whose logits go to host_logits_: the output projection writes them there itself
  // (MatvecArgs::host_rows; KVANT_CUDA_LOGITS_DIRECT=0 copies them after the forward instead, A/B). H200,
  // same binary, three rounds: 1B Q8_0 tg128 1,535 / 1,513 / 1,530 against 1,491 / 1,497 / 1,498 t/s.
  bool logits_direct_ = true;
  float* logits_mapped_ = nullptr;  // this forward's batch_.logits as the device addresses it, or null
  bool logits_written_ = false;     // the planned forward wrote its logits to batch_.logits itself
  bool graph_logits_written_ = false;  // logits_written_ of the captured graph
  // Decode: the embed kernel writes the RoPE {cos, sin} table of the token's position once, and the RoPE ops
  // (all with rope_table_op_'s angles) read it (RopeParams::table); KVANT_CUDA_ROPE_TABLE=0 turns it off.
  bool rope_table_enabled_ = true;
  const Op* rope_table_op_ = nullptr;  // set by prepare() for the forward being planned, else null
  DeviceBuffer rope_table_;            // [kKvMaxHeadDim / 2] float2
  int io_capacity_ = 0;
  const int32_t *d_tokens_ = nullptr, *d_positions_ = nullptr;

  bool in_forward_ = false;
  ForwardBatch batch_;
  std::vector<Op> ops_;
  uint64_t epoch_ = 0;  // bumped whenever a device buffer a graph could reference is (re)allocated

  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t graph_exec_ = nullptr;
  uint64_t graph_signature_ = 0;
  int graph_nodes_ = 0;
};

}  // namespace cuda
}  // namespace kvant
