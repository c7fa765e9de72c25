// kvant/kvant.h — the public API of libkvant: load a GGUF model, open inference sessions over a
// (compressed) KV cache, tokenize, sample, score perplexity. No backend or kernel types appear here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kvant/status.h"

namespace kvant {

// What `kvant info` prints about a model.
struct ModelInfo {
  std::string path;
  std::string architecture;
  std::string name;
  uint32_t n_vocab = 0, n_ctx_train = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0;
  uint32_t head_dim = 0, n_ff = 0, rope_dim = 0;
  float rope_freq_base = 10000.0f, rms_eps = 1e-5f;
  bool rope_neox = false, tied_output = false, has_rope_freqs = false;
  std::string tokenizer_model, tokenizer_pre;
  int32_t bos_id = -1, eos_id = -1, eot_id = -1;
  bool add_bos = false;
  uint64_t n_params = 0, weight_bytes = 0;
  struct Tensor {
    std::string name, type;
    std::vector<uint64_t> ne;
    uint64_t bytes = 0;
  };
  std::vector<Tensor> tensors;
  std::string chat_template;
};

class Model {
 public:
  // Opens and validates a GGUF model (architecture, hparams, every tensor's presence, type and shape).
  static Expected<std::shared_ptr<Model>> load(const std::string& path);

  const ModelInfo& info() const;
  std::vector<int32_t> tokenize(std::string_view text, bool add_special, bool parse_special) const;
  std::string token_to_piece(int32_t token, bool render_special = false) const;
  std::string detokenize(const std::vector<int32_t>& tokens, bool render_special = false) const;
  bool is_end_of_generation(int32_t token) const;
  int32_t bos_id() const;
  bool add_bos() const;
  int32_t n_vocab() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  ~Model();

 private:
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct SessionParams {
  uint32_t n_ctx = 0;             // 0: the model's training context
  uint32_t n_threads = 0;         // 0: physical cores
  uint32_t n_batch = 512;         // prompt tokens per forward call
  std::string cache_type_k = "f16";
  std::string cache_type_v = "f16";
  std::string kv_rotate = "auto";  // auto|on|off (rotation for q8_0/q4_0)
  int32_t kv_window = -1;          // recent tokens also kept in f16 for compressed caches; -1: default (128)
  std::string backend = "auto";    // auto|cpu|cuda (auto: CUDA when a device is present and the model fits)
};

// A sequence being decoded: owns the KV cache and the logits of the last evaluated batch.
class Session {
 public:
  static Expected<std::unique_ptr<Session>> create(std::shared_ptr<const Model> model,
                                                   const SessionParams& params);
  // Appends tokens at the current position and runs the model. When all_logits is false only the
  // last token's logits are kept. Errors when the context would overflow.
  Status eval(const std::vector<int32_t>& tokens, bool all_logits = false);
  // The same, keeping the logits of tokens first_logit..end only (perplexity scores the second half of
  // a chunk: the output layer then runs on those rows only).
  Status eval_logits_from(const std::vector<int32_t>& tokens, uint32_t first_logit);
  // Logits of token i of the last eval (i = -1: its last token; i must be a kept row); n_vocab floats.
  const float* logits(int i = -1) const;
  uint32_t n_past() const;
  uint32_t n_ctx() const;
  void reset();  // forgets all cached tokens
  // Every token evaluated so far (n_past() of them), in order.
  const std::vector<int32_t>& tokens() const;
  // Forgets the tokens after the first n_tokens (no-op when n_tokens >= n_past()). With an f16 window
  // (compressed caches) at most n_batch tokens can be dropped at once; more is an error (then reset()).
  Status truncate(uint32_t n_tokens);
  // Saves the evaluated tokens and their KV cache to a file (format: docs/FORMATS.md, "Saved KV
  // context"); load_kv replaces this session's cache with a saved one after checking model, K/V types,
  // rotation, window, context capacity and the checksum. After load_kv there are no logits: evaluate
  // at least one token (e.g. truncate(n_past() - 1) and eval the last token again). A backend that keeps
  // the cache on its device (cuda) copies it through host memory the size of the whole cache meanwhile.
  Status save_kv(const std::string& path) const;
  Status load_kv(const std::string& path);
  // KV cache accounting.
  uint64_t kv_bytes_per_token() const;
  uint64_t kv_bytes_f16_per_token() const;
  uint64_t kv_window_bytes() const;  // fixed bytes of the recent-token f16 window
  std::string kv_description() const;  // "K f16, V f16"
  std::string backend_name() const;    // "cpu" or "cuda": the backend this session runs on
  int kernels_per_token() const;       // CUDA: kernel nodes of the captured decode graph (0 on CPU / before)

  // For benchmarks only: appends n_tokens positions whose K and V are seeded N(0,1) values, encoded
  // through the same cache write path as eval, without running the model (no logits change). Attention
  // at the resulting depth costs exactly what it costs after a real prompt. Errors when it overflows.
  Status fill_for_benchmark(uint32_t n_tokens, uint64_t seed = 0);

  ~Session();
  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// KV-cache memory for a model and session parameters, computed without allocating the cache.
struct KvFootprint {
  uint64_t bytes_per_token = 0;       // K + V over all layers and KV heads
  uint64_t f16_bytes_per_token = 0;   // the same cache in f16
  uint64_t window_bytes = 0;          // fixed: the f16 copy of the most recent tokens (--kv-window)
  double k_bits_per_element = 0, v_bits_per_element = 0;
  uint32_t n_ctx = 0;
  std::string description;            // "K turbo_kv_4b, V f16"
};
Expected<KvFootprint> kv_footprint(const Model& model, const SessionParams& params);

struct SamplerParams {
  float temperature = 0.8f;  // <= 0: greedy
  int32_t top_k = 40;        // <= 0: off
  float top_p = 0.95f;       // >= 1: off
  float min_p = 0.05f;       // <= 0: off
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  uint64_t seed = 0xFFFFFFFFFFFFFFFFull;  // default: random
};

class Sampler {
 public:
  explicit Sampler(const SamplerParams& params);
  int32_t sample(const float* logits, int32_t n_vocab);
  void accept(int32_t token);
  ~Sampler();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Perplexity with llama.cpp's method (llama-perplexity): tokenize with BOS, cut into chunks of n_ctx,
// replace each chunk's first token with BOS, score the second half of every chunk.
struct PerplexityParams {
  uint32_t n_ctx = 512;
  int32_t n_chunks = -1;        // -1: every whole chunk of the text
  std::string kl_base_save;     // write this run's log-probabilities here
  std::string kl_base;          // compare against log-probabilities saved earlier
};

struct PerplexityResult {
  double ppl = 0, ppl_err = 0;
  uint64_t n_tokens_scored = 0;
  int32_t n_chunks = 0;
  bool has_kl = false;
  double kld_mean = 0, kld_err = 0, same_top_pct = 0;
};

// progress(chunk_index_1_based, running_ppl) is called after every chunk.
Expected<PerplexityResult> compute_perplexity(std::shared_ptr<const Model> model, const SessionParams& session,
                                              const std::string& text, const PerplexityParams& params,
                                              const std::function<void(int, double)>& progress = nullptr);

}  // namespace kvant
