// backends/cuda/cuda_plan.cu — the fusion planner of CudaOps: walks the recorded ops of a forward pass
// and launches as few kernels as the patterns allow, checking by buffer liveness that every skipped
// intermediate (normed x, projection, gate/up) is not read again before it is overwritten:
//   rmsnorm + matmul×k        -> matvec with the norm fused into its input
//   matmul×k on one input     -> one launch over up to 3 weights of one type (Q/K/V)
//   matmul gate, up + swiglu  -> matvec with the SwiGLU epilogue
//   matmul + add              -> matvec with the residual-add epilogue
//   rope q, rope k + kv_write -> one RoPE + KV-encode kernel (decode with a window: the turbo_kv encode
//                                 moves to a side stream, joined before its K/V rows are overwritten)
//   attention                 -> attention (+ combine when the context is split)
//   rope q, rope k, kv_write, attention (decode, one row) -> the attention kernel ropes and writes the
//                                 token itself (FusedTokenWrite), one launch fewer per layer
#include <algorithm>
#include <cassert>

#include "backends/cuda/cuda_ops.h"
#include "kv/kv_cache.h"

namespace kvant::cuda {
namespace {

using Op = CudaOps::Op;
using OpKind = CudaOps::OpKind;

struct Range {
  const void* p;
  size_t bytes;
};

bool overlaps(Range a, Range b) {
  const auto* a0 = static_cast<const uint8_t*>(a.p);
  const auto* b0 = static_cast<const uint8_t*>(b.p);
  return a.p && b.p && a0 < b0 + b.bytes && b0 < a0 + a.bytes;
}

size_t kv_row_floats(const Op& op) {
  const KvCacheConfig& c = op.cache->config();
  return size_t(c.n_head_kv) * c.head_dim;
}

// Ranges an op reads.
int reads(const Op& op, Range out[2]) {
  const size_t f = sizeof(float);
  switch (op.kind) {
    case OpKind::Embed: return 0;
    case OpKind::RmsNorm: out[0] = {op.a, size_t(op.n_rows) * op.dim * f}; return 1;
    case OpKind::Matmul: out[0] = {op.a, size_t(op.n_rows) * op.w.n_in * f}; return 1;
    case OpKind::Rope: out[0] = {op.out, size_t(op.n_rows) * op.n_heads * op.rope.head_dim * f}; return 1;
    case OpKind::KvWrite:
      out[0] = {op.a, op.n_rows * kv_row_floats(op) * f};
      out[1] = {op.b, op.n_rows * kv_row_floats(op) * f};
      return 2;
    case OpKind::Attention:
      out[0] = {op.a, size_t(op.n_rows) * op.n_heads * op.cache->config().head_dim * f};
      return 1;
    case OpKind::SwiGlu: out[0] = {op.a, size_t(op.n) * f}; out[1] = {op.b, size_t(op.n) * f}; return 2;
    case OpKind::Add: out[0] = {op.out, size_t(op.n) * f}; out[1] = {op.a, size_t(op.n) * f}; return 2;
  }
  return 0;
}

// Base pointer an op overwrites without reading it first (nullptr if none).
const void* overwrites(const Op& op) {
  switch (op.kind) {
    case OpKind::Embed:
    case OpKind::RmsNorm:
    case OpKind::Matmul:
    case OpKind::Attention: return op.out;
    case OpKind::SwiGlu: return (op.out != op.a && op.out != op.b) ? op.out : nullptr;
    default: return nullptr;
  }
}

// Whether [p, p + bytes) is read by ops[from..] before an op overwrites it (the forward's end counts
// as dead: nothing reads activations between forward passes).
bool read_later(const std::vector<Op>& ops, size_t from, const void* p, size_t bytes) {
  for (size_t i = from; i < ops.size(); ++i) {
    Range r[2];
    const int n = reads(ops[i], r);
    for (int k = 0; k < n; ++k) {
      if (overlaps(r[k], {p, bytes})) return true;
    }
    if (overwrites(ops[i]) == p) return false;
  }
  return false;
}

size_t matmul_out_bytes(const Op& op) { return size_t(op.n_rows) * op.w.n_out * sizeof(float); }

}  // namespace

void CudaOps::execute(const std::vector<Op>& ops, bool graph_mode) {
  for (size_t i = 0; i < ops.size();) {
    const Op& op = ops[i];
    if (op.kind != OpKind::Matmul) busy_after_attention_ = 0;  // late shares only right after attention
    switch (op.kind) {
      case OpKind::Embed: {
        RopeTableArgs table;
        if (rope_table_op_ != nullptr) {
          table.rope = rope_params(*rope_table_op_);
          table.rope.table = nullptr;
          table.positions = d_positions_;
          table.table = rope_table_.as<float2>();
        }
        launch_embed(weight(op.w), d_tokens_, op.n_rows, op.out, stream_, rope_table_op_ ? &table : nullptr);
        ++i;
        break;
      }
      case OpKind::RmsNorm: {
        size_t m = 0;  // matmuls reading the normed rows right after
        while (i + 1 + m < ops.size() && ops[i + 1 + m].kind == OpKind::Matmul && ops[i + 1 + m].a == op.out &&
               ops[i + 1 + m].n_rows == op.n_rows && ops[i + 1 + m].w.n_in == op.dim) {
          ++m;
        }
        const size_t bytes = size_t(op.n_rows) * op.dim * sizeof(float);
        if (m > 0 && op.dim % 32 == 0 && !read_later(ops, i + 1 + m, op.out, bytes)) {
          size_t j = i + 1;
          while (j < i + 1 + m) j += emit_matmuls(ops, j, &op);
          i = j;
        } else {
          launch_rmsnorm(op.a, reinterpret_cast<const float*>(weight(op.w).data), op.n_rows, op.dim, op.eps, op.out,
                         stream_);
          ++i;
        }
        break;
      }
      case OpKind::Matmul: i += emit_matmuls(ops, i, nullptr); break;
      case OpKind::Rope: {
        const Op* next = i + 1 < ops.size() ? &ops[i + 1] : nullptr;
        const Op* next2 = i + 2 < ops.size() ? &ops[i + 2] : nullptr;
        if (next && next->kind == OpKind::Rope && next2 && next2->kind == OpKind::KvWrite && next2->a == next->out &&
            next->n_rows == op.n_rows && next2->n_rows == op.n_rows && next->ids == op.ids && next2->ids == op.ids) {
          const RopeKvArgs a = rope_kv_args(&op, next, next2);
          if (i + 3 < ops.size() && token_write_fuses(ops, i, a)) {
            emit_attention(ops[i + 3], graph_mode, &a);
            i += 4;
          } else {
            launch_rope_kv(a, stream_);
            i += 3;
          }
          fork_staged_encode(*next2, a);
        } else if (next && next->kind == OpKind::KvWrite && next->a == op.out && next->n_rows == op.n_rows &&
                   next->ids == op.ids) {
          emit_rope_kv(nullptr, &op, next);
          i += 2;
        } else {
          emit_rope_kv(&op, nullptr, nullptr);
          ++i;
        }
        break;
      }
      case OpKind::KvWrite: emit_rope_kv(nullptr, nullptr, &op); ++i; break;
      case OpKind::Attention: emit_attention(op, graph_mode); ++i; break;
      case OpKind::SwiGlu: launch_swiglu(op.a, op.b, op.n, op.out, stream_); ++i; break;
      case OpKind::Add: launch_add(op.out, op.a, op.n, stream_); ++i; break;
    }
  }
  join_side();
}

// Launches the matmul at ops[first] together with what fuses with it; returns the ops consumed.
size_t CudaOps::emit_matmuls(const std::vector<Op>& ops, size_t first, const Op* norm) {
  const Op& m0 = ops[first];
  MatvecArgs a;
  a.x = norm ? norm->a : m0.a;
  a.n_rows = m0.n_rows;
  a.scratch = &gemm_scratch_;
  if (norm) {
    a.norm_w = reinterpret_cast<const float*>(weight(norm->w).data);
    a.eps = norm->eps;
  }
  a.w[0] = weight(m0.w);
  a.y[0] = m0.out;
  a.evict_first = a.n_rows == 1 && evict_weights_;
  a.launch_dependents = a.n_rows == 1 && early_matvec_;
  if (a.n_rows == 1 && busy_after_attention_ > 0) a.late_blocks = busy_after_attention_, a.late_pct = late_pct_;
  busy_after_attention_ = 0;
  const Op* m1 = first + 1 < ops.size() ? &ops[first + 1] : nullptr;
  const bool same_input = m1 && m1->kind == OpKind::Matmul && m1->a == m0.a && m1->n_rows == m0.n_rows;
  // gate, up + swiglu
  if (same_input && first + 2 < ops.size()) {
    const Op& sw = ops[first + 2];
    const DeviceMatrix& w1 = weight(m1->w);
    if (sw.kind == OpKind::SwiGlu && sw.a == m0.out && sw.b == m1->out && w1.type == a.w[0].type &&
        w1.n_out == a.w[0].n_out && w1.n_in == a.w[0].n_in && sw.n == int64_t(m0.n_rows) * a.w[0].n_out &&
        (sw.out == m0.out || !read_later(ops, first + 3, m0.out, matmul_out_bytes(m0))) &&
        !read_later(ops, first + 3, m1->out, matmul_out_bytes(*m1))) {
      a.n_w = 2;
      a.w[1] = w1;
      a.y[0] = sw.out;
      a.epilogue = MatvecEpilogue::SwiGlu;
      launch_matvec(a, stream_);
      return 3;
    }
  }
  // matmul + residual add
  if (first + 1 < ops.size()) {
    const Op& add = ops[first + 1];
    if (add.kind == OpKind::Add && add.a == m0.out && add.n == int64_t(m0.n_rows) * a.w[0].n_out &&
        add.out != a.x && add.out != m0.a && !read_later(ops, first + 2, m0.out, matmul_out_bytes(m0))) {
      a.y[0] = add.out;
      a.epilogue = MatvecEpilogue::AddInto;
      launch_matvec(a, stream_);
      return 2;
    }
  }
  // Up to 3 weights on the same input (Q/K/V): a run of one type in one launch; a following run of a
  // second type (a K-quant mix's Q6_K V) joins it in one pair launch where the int8 kernels fuse the two
  // (pair_matvec_, on by default), else it is the next launch.
  auto take_run = [&](MatvecArgs& run, size_t at, size_t room) {
    run.n_w = 0;
    while (size_t(run.n_w) < room && at + size_t(run.n_w) < ops.size()) {
      const Op& mk = ops[at + size_t(run.n_w)];
      if (mk.kind != OpKind::Matmul || mk.a != m0.a || mk.n_rows != m0.n_rows) break;
      const DeviceMatrix& wk = weight(mk.w);
      if ((run.n_w > 0 && wk.type != run.w[0].type) || wk.n_in != a.w[0].n_in) break;
      run.w[run.n_w] = wk;
      run.y[run.n_w] = mk.out;
      ++run.n_w;
    }
  };
  take_run(a, first, 3);
  const size_t count = size_t(a.n_w);
  // The decode output projection writes the logits straight into the caller's mapped page-locked buffer
  // (MatvecArgs::host_rows) where the int8 kernel reads its weight: no copy after the forward.
  if (count == 1 && a.n_rows == 1 && m0.out == logits_.as<float>() && logits_mapped_ != nullptr &&
      int64_t(a.w[0].n_out) == int64_t(batch_.n_logits)) {
    MatvecArgs h = a;
    h.y[0] = logits_mapped_;
    h.host_rows = true;
    if (launch_matvec_host_rows(h, stream_)) {
      logits_written_ = true;
      return 1;
    }
  }
  if (pair_matvec_ && count < 3 && a.n_rows == 1) {
    MatvecArgs b = a;
    take_run(b, first + count, 3 - count);
    if (b.n_w > 0 && b.w[0].type != a.w[0].type && launch_matvec_pair(a, b, stream_)) return count + size_t(b.n_w);
  }
  launch_matvec(a, stream_);
  return count;
}

RopeParams CudaOps::rope_params(const Op& rope) {
  const RopeConfig& c = rope.rope;
  RopeParams p;
  p.head_dim = c.head_dim;
  p.rope_dim = c.rope_dim;
  p.freq_base = c.freq_base;
  p.freq_scale = c.freq_scale;
  p.neox = c.ordering == RopeOrdering::NeoX;
  p.freq_factors = freq_factors(c.freq_factors, c.rope_dim / 2);
  p.table = rope_table_op_ != nullptr && rope.n_rows == 1 ? rope_table_.as<float2>() : nullptr;
  return p;
}

RopeKvArgs CudaOps::rope_kv_args(const Op* rope_q, const Op* rope_k, const Op* kvw) {
  RopeKvArgs a;
  a.positions = d_positions_;
  const Op* any = rope_q ? rope_q : rope_k ? rope_k : kvw;
  a.n_rows = any->n_rows;
  if (rope_q || rope_k) a.rope = rope_params(*(rope_q ? rope_q : rope_k));
  if (rope_q) {
    a.rope_q = true;
    a.q = rope_q->out;
    a.n_head = rope_q->n_heads;
  }
  if (kvw) {
    DeviceKv& dk = kv(*kvw->cache);
    a.kv = dk.cfg;
    a.layer = dk.layers[size_t(kvw->layer)];
    a.write_kv = true;
    a.k = const_cast<float*>(kvw->a);
    a.v = kvw->b;
    a.rope.head_dim = dk.cfg.head_dim;
    a.tables = tables_;
    a.window_only = window_only_kv(dk.cfg);
    // Decode with a window: this token is attended through the f16 window ring, and its compressed copy
    // is first read window tokens later, so its turbo encode (a multi-warp search, the longest kernel of
    // a short-context layer) is deferred: each layer stages the roped K/V, and once the last layer has,
    // one launch on a side stream encodes every layer's vectors (fork_staged_encode), overlapping the
    // last layer's attention, the FFN and the output projection; the forward joins it at the end. A
    // prompt batch cannot defer: its later rows may read earlier rows' compressed copies.
    const bool defer = a.n_rows == 1 && a.kv.window > 0 && !a.window_only &&
                       (kv_type_is_turbo(a.kv.type_k) || kv_type_is_turbo(a.kv.type_v));
    if (defer) a.stage = dk.stage.as<float>() + size_t(kvw->layer) * 2 * dk.cfg.n_head_kv * dk.cfg.head_dim;
  }
  if (rope_k) {
    a.rope_k = true;
    a.k = rope_k->out;
    if (!kvw) {  // RoPE of a tensor that is not written to a cache: treat its heads as "query" heads
      a.rope_k = false;
      a.rope_q = true;
      a.q = rope_k->out;
      a.n_head = rope_k->n_heads;
    }
  }
  return a;
}

void CudaOps::emit_rope_kv(const Op* rope_q, const Op* rope_k, const Op* kvw) {
  const RopeKvArgs a = rope_kv_args(rope_q, rope_k, kvw);
  launch_rope_kv(a, stream_);
  if (kvw) fork_staged_encode(*kvw, a);
}

bool CudaOps::token_write_fuses(const std::vector<Op>& ops, size_t i, const RopeKvArgs& a) const {
  const Op &rope_q = ops[i], &rope_k = ops[i + 1], &kvw = ops[i + 2], &att = ops[i + 3];
  if (!fuse_token_write_ || att.kind != OpKind::Attention || att.n_rows != 1 || att.cache != kvw.cache ||
      att.layer != kvw.layer || att.a != rope_q.out || att.n_heads != rope_q.n_heads || att.ids != rope_q.ids) {
    return false;
  }
  // A turbo half without a window would need the multi-warp encode kernel.
  const bool turbo = kv_type_is_turbo(a.kv.type_k) || kv_type_is_turbo(a.kv.type_v);
  if (turbo && !a.window_only && a.stage == nullptr) return false;
  // The fused path leaves q and k unroped in their buffers: nothing after the attention may read them.
  const size_t f = sizeof(float);
  return !read_later(ops, i + 4, rope_q.out, size_t(rope_q.n_heads) * rope_q.rope.head_dim * f) &&
         !read_later(ops, i + 4, rope_k.out, size_t(rope_k.n_heads) * rope_k.rope.head_dim * f);
}

void CudaOps::fork_staged_encode(const Op& kvw, const RopeKvArgs& a) {
  DeviceKv& dk = kv(*kvw.cache);
  if (a.stage == nullptr || size_t(kvw.layer) + 1 != dk.layers.size()) return;
  KVANT_CUDA_CHECK(cudaEventRecord(fork_event_, stream_));
  KVANT_CUDA_CHECK(cudaStreamWaitEvent(side_stream_, fork_event_, 0));
  StagedTurboArgs e;
  e.stage = dk.stage.as<float>();
  e.layers = dk.layer_table.as<DeviceKvLayer>();
  e.n_layer = int(dk.layers.size());
  e.positions = d_positions_;
  e.kv = dk.cfg;
  e.tables = tables_;
  launch_turbo_encode_staged(e, side_stream_);
  KVANT_CUDA_CHECK(cudaEventRecord(join_event_, side_stream_));
  side_pending_ = true;
}

void CudaOps::join_side() {
  if (!side_pending_) return;
  KVANT_CUDA_CHECK(cudaStreamWaitEvent(stream_, join_event_, 0));
  side_pending_ = false;
}

void CudaOps::emit_attention(const Op& op, bool graph_mode, const RopeKvArgs* token) {
  DeviceKv& dk = kv(*op.cache);
  AttentionArgs a;
  a.q = op.a;
  a.out = op.out;
  a.n_rows = op.n_rows;
  a.n_head = op.n_heads;
  a.positions = d_positions_;
  a.kv = dk.cfg;
  a.layer = dk.layers[size_t(op.layer)];
  a.tables = tables_;
  a.splits_main = attention_splits(op, graph_mode, &a.splits_window, &a.warps);
  a.partial = partial_.as<float>();
  a.evict_kv = evict_kv_ && op.n_rows == 1;
  a.launch_dependents = early_dependents_;
  a.per_head_blocks = per_head_attention_;
  a.values_early = attention_values_early_;
  a.mma = mma_attention_;
  // Wide blocks hold one pair table for 16 warps: 32 replicas (conflict-free lookups); 4-warp blocks 16.
  a.lut_copies = attention_lut_copies_ > 0 ? attention_lut_copies_ : a.warps == kAttnWideWarps ? 32 : 16;
  a.stages = attention_stages_;
  a.step_keys = attention_step_keys_;
  a.combine_threads = combine_threads_;
  if (window_only_kv(dk.cfg)) {
    // Every position the cache can hold stays in its f16 window ring, slot = position (ring_slots ==
    // n_ctx): attend it as the f16 cache the ring is, through the same path and splits as an f16 cache.
    assert(dk.cfg.ring_slots == dk.cfg.n_ctx && a.splits_window == 0);
    a.kv.type_k = a.kv.type_v = KvType::F16;
    a.kv.rotate_k = a.kv.rotate_v = false;  // the ring holds K unrotated
    a.kv.k_bytes = a.kv.v_bytes = 2 * size_t(dk.cfg.head_dim);
    a.kv.window = a.kv.ring_slots = 0;
    a.layer = DeviceKvLayer{a.layer.k_win, a.layer.v_win, nullptr, nullptr};
  }
  if (token) {
    assert(op.n_rows == 1);
    a.token.on = true;
    a.token.rope_q = token->rope_q;
    a.token.rope_k = token->rope_k;
    a.token.rope = token->rope;
    a.token.k = token->k;
    a.token.v = token->v;
    a.token.stage = token->stage;
    a.stage_before_wait = attention_early_stage_;
  }
  wide_attention_launches_ += a.warps == kAttnWideWarps;
  const int busy = launch_attention(a, stream_);
  busy_after_attention_ = op.n_rows == 1 ? busy : 0;
}

}  // namespace kvant::cuda
