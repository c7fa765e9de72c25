// model/llama.cpp — Llama family: tensor table and the forward pass, top to bottom.
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

void LlamaScratch::reserve(const Hparams& hp, int n_tokens) {
  if (n_tokens <= capacity) return;
  capacity = n_tokens;
  const size_t n = size_t(n_tokens);
  x.resize(n * hp.n_embd);
  xn.resize(n * hp.n_embd);
  q.resize(n * hp.n_embd_q());
  k.resize(n * hp.n_embd_kv());
  v.resize(n * hp.n_embd_kv());
  attn.resize(n * hp.n_embd_q());
  proj.resize(n * hp.n_embd);
  gate.resize(n * hp.n_ff);
  up.resize(n * hp.n_ff);
  last_hidden.resize(n * hp.n_embd);
}

void llama_forward(const LlamaWeights& w, Ops& ops, KvCache& cache, const int32_t* tokens,
                   const int32_t* positions, int n, bool all_logits, LlamaScratch& s, float* logits) {
  const Hparams& hp = w.hp;
  s.reserve(hp, n);
  const int E = int(hp.n_embd);
  RopeConfig rope;
  rope.head_dim = int(hp.head_dim);
  rope.rope_dim = int(hp.rope_dim);
  rope.freq_base = hp.rope_freq_base;
  rope.freq_scale = hp.rope_freq_scale;
  rope.ordering = hp.rope_ordering;
  rope.freq_factors = w.rope_freqs.empty() ? nullptr : w.rope_freqs.data();

  // x: [n][E] residual stream
  ops.embed(w.tok_embd, tokens, n, s.x.data());

  for (uint32_t il = 0; il < hp.n_layer; ++il) {
    const LlamaLayerWeights& l = w.layers[il];

    // Attention block: norm -> Q/K/V -> RoPE(Q, K) -> write K/V to the cache -> attend -> output proj.
    ops.rmsnorm(s.x.data(), l.attn_norm, n, E, hp.rms_eps, s.xn.data());
    ops.matmul(l.wq, s.xn.data(), n, s.q.data());   // q: [n][n_head*head_dim]
    ops.matmul(l.wk, s.xn.data(), n, s.k.data());   // k: [n][n_head_kv*head_dim]
    ops.matmul(l.wv, s.xn.data(), n, s.v.data());   // v: [n][n_head_kv*head_dim]
    ops.rope(s.q.data(), n, int(hp.n_head), positions, rope);
    ops.rope(s.k.data(), n, int(hp.n_head_kv), positions, rope);
    ops.kv_write(cache, int(il), s.k.data(), s.v.data(), n, positions);
    ops.attention(cache, int(il), s.q.data(), n, int(hp.n_head), positions, s.attn.data());
    ops.matmul(l.wo, s.attn.data(), n, s.proj.data());
    ops.add(s.x.data(), s.proj.data(), int64_t(n) * E);

    // Feed-forward block: norm -> SwiGLU(gate, up) -> down.
    ops.rmsnorm(s.x.data(), l.ffn_norm, n, E, hp.rms_eps, s.xn.data());
    ops.matmul(l.ffn_gate, s.xn.data(), n, s.gate.data());  // [n][n_ff]
    ops.matmul(l.ffn_up, s.xn.data(), n, s.up.data());      // [n][n_ff]
    ops.swiglu(s.gate.data(), s.up.data(), int64_t(n) * hp.n_ff, s.gate.data());
    ops.matmul(l.ffn_down, s.gate.data(), n, s.proj.data());
    ops.add(s.x.data(), s.proj.data(), int64_t(n) * E);
  }

  // Output: final norm and the vocabulary projection (all rows, or only the last).
  const int first = all_logits ? 0 : n - 1;
  const int rows = n - first;
  ops.rmsnorm(s.x.data() + size_t(first) * E, w.output_norm, rows, E, hp.rms_eps, s.last_hidden.data());
  ops.matmul(w.output, s.last_hidden.data(), rows, logits);
}

}  // namespace kvant
