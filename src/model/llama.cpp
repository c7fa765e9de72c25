// model/llama.cpp — Llama family: tensor table and the forward pass, top to bottom.
#include <cassert>
#include "model/llama.h"

#include "model/tensor_binding.h"
#include "quant/quant.h"

namespace kvant {

namespace {

std::string blk(uint32_t layer, const char* name) {
  return "blk." + std::to_string(layer) + "." + name + ".weight";
}

}  // namespace

Expected<LlamaWeights> load_llama(const gguf::File& file, const Hparams& hp) {
  LlamaWeights w;
  w.hp = hp;
  const gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
  if (embd == nullptr) return Status::error(file.path() + ": missing required tensor 'token_embd.weight'");
  const uint64_t n_vocab = embd->ne[1];
  if (n_vocab == 0 || n_vocab > (1u << 24)) {
    return Status::error(file.path() + ": token_embd.weight has " + std::to_string(n_vocab) + " rows");
  }
  w.hp.n_vocab = uint32_t(n_vocab);
  const uint64_t E = hp.n_embd, Q = hp.n_embd_q(), KV = hp.n_embd_kv(), F = hp.n_ff;

  KVANT_ASSIGN_OR_RETURN(w.tok_embd, bind_tensor(file, {"token_embd.weight", {E, n_vocab}, TensorRole::Embedding}));
  KVANT_ASSIGN_OR_RETURN(w.output_norm, bind_tensor(file, {"output_norm.weight", {E}, TensorRole::Norm}));
  KVANT_ASSIGN_OR_RETURN(w.output, bind_tensor(file, {"output.weight", {E, n_vocab}, TensorRole::Matrix, false}));
  if (w.output.data == nullptr) {
    w.output = w.tok_embd;
    w.tied_output = true;
  }
  WeightView rope_freqs;
  KVANT_ASSIGN_OR_RETURN(rope_freqs, bind_tensor(file, {"rope_freqs.weight", {hp.rope_dim / 2}, TensorRole::Norm, false}));
  if (rope_freqs.data != nullptr) {
    const float* f = static_cast<const float*>(rope_freqs.data);
    w.rope_freqs.assign(f, f + hp.rope_dim / 2);
  }

  w.layers.resize(hp.n_layer);
  for (uint32_t i = 0; i < hp.n_layer; ++i) {
    LlamaLayerWeights& l = w.layers[i];
    KVANT_ASSIGN_OR_RETURN(l.attn_norm, bind_tensor(file, {blk(i, "attn_norm"), {E}, TensorRole::Norm}));
    KVANT_ASSIGN_OR_RETURN(l.wq, bind_tensor(file, {blk(i, "attn_q"), {E, Q}}));
    KVANT_ASSIGN_OR_RETURN(l.wk, bind_tensor(file, {blk(i, "attn_k"), {E, KV}}));
    KVANT_ASSIGN_OR_RETURN(l.wv, bind_tensor(file, {blk(i, "attn_v"), {E, KV}}));
    KVANT_ASSIGN_OR_RETURN(l.wo, bind_tensor(file, {blk(i, "attn_output"), {Q, E}}));
    KVANT_ASSIGN_OR_RETURN(l.ffn_norm, bind_tensor(file, {blk(i, "ffn_norm"), {E}, TensorRole::Norm}));
    KVANT_ASSIGN_OR_RETURN(l.ffn_gate, bind_tensor(file, {blk(i, "ffn_gate"), {E, F}}));
    KVANT_ASSIGN_OR_RETURN(l.ffn_up, bind_tensor(file, {blk(i, "ffn_up"), {E, F}}));
    KVANT_ASSIGN_OR_RETURN(l.ffn_down, bind_tensor(file, {blk(i, "ffn_down"), {F, E}}));
  }
  return w;
}

void LlamaScratch::reserve(const Hparams& hp, int n_tokens, Ops& ops) {
  if (n_tokens <= capacity) return;
  capacity = n_tokens;
  const size_t n = size_t(n_tokens);
  x = ops.alloc_activations(n * hp.n_embd);
  xn = ops.alloc_activations(n * hp.n_embd);
  q = ops.alloc_activations(n * hp.n_embd_q());
  k = ops.alloc_activations(n * hp.n_embd_kv());
  v = ops.alloc_activations(n * hp.n_embd_kv());
  attn = ops.alloc_activations(n * hp.n_embd_q());
  proj = ops.alloc_activations(n * hp.n_embd);
  gate = ops.alloc_activations(n * hp.n_ff);
  up = ops.alloc_activations(n * hp.n_ff);
  last_hidden = ops.alloc_activations(n * hp.n_embd);
}

void llama_forward(const LlamaWeights& w, Ops& ops, KvCache& cache, const int32_t* tokens,
                   const int32_t* positions, int n, int first_logit, LlamaScratch& s, float* logits) {
  const Hparams& hp = w.hp;
  s.reserve(hp, n, ops);
  const int E = int(hp.n_embd);
  RopeConfig rope;
  rope.head_dim = int(hp.head_dim);
  rope.rope_dim = int(hp.rope_dim);
  rope.freq_base = hp.rope_freq_base;
  rope.freq_scale = hp.rope_freq_scale;
  rope.ordering = hp.rope_ordering;
  rope.freq_factors = w.rope_freqs.empty() ? nullptr : w.rope_freqs.data();

  // Output rows first_logit..n-1 (n-1: only the last). The backend says where the logits are written
  // (on a GPU, a device buffer copied out in end_forward).
  assert(first_logit >= 0 && first_logit < n);
  const int first = first_logit;
  const int rows = n - first;
  float* out_logits = ops.begin_forward({tokens, positions, n, logits, size_t(rows) * hp.n_vocab});

  // x: [n][E] residual stream
  ops.embed(w.tok_embd, tokens, n, s.x);

  for (uint32_t il = 0; il < hp.n_layer; ++il) {
    const LlamaLayerWeights& l = w.layers[il];

    // Attention block: norm -> Q/K/V -> RoPE(Q, K) -> write K/V to the cache -> attend -> output proj.
    ops.rmsnorm(s.x, l.attn_norm, n, E, hp.rms_eps, s.xn);
    // q: [n][n_head*head_dim], k and v: [n][n_head_kv*head_dim]
    const WeightView* qkv[] = {&l.wq, &l.wk, &l.wv};
    float* const qkv_out[] = {s.q, s.k, s.v};
    ops.matmul_same_input(qkv, qkv_out, 3, s.xn, n);
    ops.rope(s.q, n, int(hp.n_head), positions, rope);
    ops.rope(s.k, n, int(hp.n_head_kv), positions, rope);
    ops.kv_write(cache, int(il), s.k, s.v, n, positions);
    ops.attention(cache, int(il), s.q, n, int(hp.n_head), positions, s.attn);
    ops.matmul(l.wo, s.attn, n, s.proj);
    ops.add(s.x, s.proj, int64_t(n) * E);

    // Feed-forward block: norm -> SwiGLU(gate, up) -> down.
    ops.rmsnorm(s.x, l.ffn_norm, n, E, hp.rms_eps, s.xn);
    const WeightView* gate_up[] = {&l.ffn_gate, &l.ffn_up};
    float* const gate_up_out[] = {s.gate, s.up};  // [n][n_ff] each
    ops.matmul_same_input(gate_up, gate_up_out, 2, s.xn, n);
    ops.swiglu(s.gate, s.up, int64_t(n) * hp.n_ff, s.gate);
    ops.matmul(l.ffn_down, s.gate, n, s.proj);
    ops.add(s.x, s.proj, int64_t(n) * E);
  }

  // Output: final norm and the vocabulary projection.
  ops.rmsnorm(s.x + size_t(first) * E, w.output_norm, rows, E, hp.rms_eps, s.last_hidden);
  ops.matmul(w.output, s.last_hidden, rows, out_logits);
  ops.end_forward();
}

}  // namespace kvant
