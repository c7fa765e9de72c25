// model/llama.h — the Llama family (llama.cpp arch "llama"): tensor table, loading, forward pass.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/ops.h"
#include "gguf/gguf.h"
#include "model/hparams.h"

namespace kvant {

class KvCache;

struct LlamaLayerWeights {
  WeightView attn_norm, wq, wk, wv, wo;     // norms [n_embd]; wq [n_embd -> n_embd_q]; wk/wv -> n_embd_kv
  WeightView ffn_norm, ffn_gate, ffn_up, ffn_down;
};

struct LlamaWeights {
  Hparams hp;
  WeightView tok_embd;     // [n_embd] x n_vocab
  WeightView output_norm;  // [n_embd]
  WeightView output;       // [n_embd] x n_vocab (token_embd when tied)
  bool tied_output = false;
  std::vector<float> rope_freqs;  // Llama 3 frequency divisors [rope_dim/2], empty when absent
  std::vector<LlamaLayerWeights> layers;
};

// Validates every tensor of the family against hp and binds views into the mapped file.
Expected<LlamaWeights> load_llama(const gguf::File& file, const Hparams& hp);

// Activations for up to `capacity` tokens per forward call, in the backend's memory (Ops owns it).
struct LlamaScratch {
  int capacity = 0;
  float *x = nullptr, *xn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr;  // [capacity][width]
  float *attn = nullptr, *proj = nullptr, *gate = nullptr, *up = nullptr;
  float* last_hidden = nullptr;  // [capacity][n_embd] after final norm
  void reserve(const Hparams& hp, int n_tokens, Ops& ops);
};

// Runs n tokens at the given positions through the model, writing K/V into the cache first and then
// attending over it. logits: [n - first_logit][n_vocab], the rows of tokens first_logit..n-1 (n-1: the
// last token only).
void llama_forward(const LlamaWeights& w, Ops& ops, KvCache& cache, const int32_t* tokens,
                   const int32_t* positions, int n, int first_logit, LlamaScratch& s, float* logits);

}  // namespace kvant
