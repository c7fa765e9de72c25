// runtime/session.cpp — Session: KV cache creation from params, batched evaluation, logits.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "backends/cpu/cpu_ops.h"
#include "backends/cuda/cuda_backend.h"
#include "backends/profiling_ops.h"
#include "kv/kv_cache.h"
#include "kv/kv_serialize.h"
#include "runtime/fingerprint.h"
#include "runtime/model_impl.h"

namespace kvant {

struct Session::Impl {
  std::shared_ptr<const Model> model;
  SessionParams params;
  std::unique_ptr<Ops> ops;  // CpuOps or the CUDA backend (SessionParams::backend)
  KvCache cache;
  LlamaScratch scratch;
  float* logits = nullptr;          // [n_logit_rows][n_vocab]: the backend's host_logit_buffer or own_logits
  std::vector<float> own_logits;
  int n_logit_rows = 0;
  int first_logit = 0;        // token index (in the last eval) of logits row 0
  uint32_t n_past = 0;
  std::vector<int32_t> positions;
  std::vector<int32_t> tokens;  // every token evaluated so far, in position order (n_past of them)

  Impl(std::shared_ptr<const Model> m, const SessionParams& p, std::unique_ptr<Ops> o, KvCache c)
      : model(std::move(m)), params(p), ops(std::move(o)), cache(std::move(c)) {}
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

namespace {

Expected<bool> resolve_rotation(const std::string& flag, KvType type, uint32_t head_dim) {
  const bool quantised = type == KvType::Q8_0 || type == KvType::Q4_0;
  if (flag == "off") return false;
  if (flag == "on") return quantised;
  if (flag == "auto") return quantised && kv_rotation_supported(int(head_dim));
  return Status::error("--kv-rotate: invalid value '" + flag + "' (expected auto, on or off)");
}

Expected<KvCacheConfig> make_kv_config(const Model& model, const SessionParams& params) {
  const Hparams& hp = model.impl().weights.hp;
  KvCacheConfig config;
  config.n_layer = hp.n_layer;
  config.n_head_kv = hp.n_head_kv;
  config.head_dim = hp.head_dim;
  config.n_ctx = params.n_ctx == 0 ? hp.n_ctx_train : params.n_ctx;
  if (config.n_ctx > (1u << 24)) return Status::error("context size " + std::to_string(config.n_ctx) + " is too large");
  KVANT_ASSIGN_OR_RETURN(config.type_k, parse_kv_type(params.cache_type_k));
  KVANT_ASSIGN_OR_RETURN(config.type_v, parse_kv_type(params.cache_type_v));
  KVANT_ASSIGN_OR_RETURN(config.rotate_k, resolve_rotation(params.kv_rotate, config.type_k, hp.head_dim));
  KVANT_ASSIGN_OR_RETURN(config.rotate_v, resolve_rotation(params.kv_rotate, config.type_v, hp.head_dim));
  config.window = params.kv_window < 0 ? kDefaultKvWindow : uint32_t(params.kv_window);
  config.max_batch = params.n_batch == 0 ? 512 : params.n_batch;
  Status k_ok = kv_check_head_dim(config.type_k, int(hp.head_dim), config.rotate_k, "K");
  if (!k_ok) return k_ok.with_context(model.info().path);
  Status v_ok = kv_check_head_dim(config.type_v, int(hp.head_dim), config.rotate_v, "V");
  if (!v_ok) return v_ok.with_context(model.info().path);
  return config;
}

}  // namespace

Expected<KvFootprint> kv_footprint(const Model& model, const SessionParams& params) {
  KVANT_ASSIGN_OR_RETURN(KvCacheConfig config, make_kv_config(model, params));
  KvFootprint f;
  const uint64_t per_head = kv_bytes_per_vector(config.type_k, int(config.head_dim)) +
                            kv_bytes_per_vector(config.type_v, int(config.head_dim));
  f.bytes_per_token = uint64_t(config.n_layer) * config.n_head_kv * per_head;
  f.f16_bytes_per_token = uint64_t(config.n_layer) * config.n_head_kv * 4 * uint64_t(config.head_dim);
  f.k_bits_per_element = kv_bits_per_element(config.type_k, int(config.head_dim));
  f.v_bits_per_element = kv_bits_per_element(config.type_v, int(config.head_dim));
  f.n_ctx = config.n_ctx;
  if (kv_window_applies(config)) {
    const uint64_t slots = std::min(config.window + config.max_batch, config.n_ctx);
    f.window_bytes = uint64_t(config.n_layer) * config.n_head_kv * slots * 4 * uint64_t(config.head_dim);
  }
  f.description = kv_cache_description(config);
  return f;
}

Expected<std::unique_ptr<Session>> Session::create(std::shared_ptr<const Model> model, const SessionParams& params) {
  KVANT_ASSIGN_OR_RETURN(KvCacheConfig config, make_kv_config(*model, params));
  // The layout alone first (sizes for the backend choice); host vectors only for a backend that reads
  // them (a device backend keeps its own: a 128K context would otherwise hold gigabytes of host memory).
  auto cache = KvCache::create(config, /*host_storage=*/false);
  if (!cache) return cache.status().with_context(model->info().path);
  SessionParams p = params;
  p.n_ctx = config.n_ctx;
  if (p.n_batch == 0) p.n_batch = 512;
  const uint64_t device_bytes = model->info().weight_bytes + cache->bytes_per_token() * config.n_ctx + cache->window_bytes();
  auto ops = make_backend(p.backend, p.n_threads, device_bytes);
  if (!ops) return ops.status().with_context(model->info().path);
  std::unique_ptr<Ops> backend = std::move(ops).value();
  if (!backend->keeps_kv_on_device()) {
    cache = KvCache::create(config, /*host_storage=*/true);
    if (!cache) return cache.status().with_context(model->info().path);
  }
  if (const char* profile = std::getenv("KVANT_PROFILE"); profile != nullptr && profile[0] != '\0') {
    if (std::string(backend->name()) == "cpu") {
      backend = make_profiling_ops(std::move(backend));
    } else {
      std::fprintf(stderr, "KVANT_PROFILE: ignored for the %s backend (its ops run asynchronously)\n", backend->name());
    }
  }
  auto impl = std::make_unique<Impl>(std::move(model), p, std::move(backend), std::move(cache).value());
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

Status Session::eval(const std::vector<int32_t>& tokens, bool all_logits) {
  return eval_logits_from(tokens, all_logits ? 0 : uint32_t(std::max<size_t>(tokens.size(), 1) - 1));
}

Status Session::eval_logits_from(const std::vector<int32_t>& tokens, uint32_t first_logit) {
  Impl& s = *impl_;
  const LlamaWeights& w = s.model->impl().weights;
  const int32_t n_vocab = int32_t(w.hp.n_vocab);
  if (tokens.empty()) return Status::error("eval: no tokens");
  if (first_logit >= tokens.size()) {
    return Status::error("eval: first logit row " + std::to_string(first_logit) + " is past the " +
                         std::to_string(tokens.size()) + " tokens");
  }
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      return Status::error("token id " + std::to_string(t) + " is out of range [0, " + std::to_string(n_vocab) + ")");
    }
  }
  if (uint64_t(s.n_past) + tokens.size() > s.params.n_ctx) {
    return Status::error(std::to_string(tokens.size()) + " tokens do not fit in the context of " +
                         std::to_string(s.params.n_ctx) + " (" + std::to_string(s.n_past) +
                         " already used); raise -c/--ctx-size or shorten the prompt");
  }
  const int n_total = int(tokens.size());
  const int first = int(first_logit);
  s.first_logit = first;
  s.n_logit_rows = n_total - first;
  const size_t n_logit_floats = size_t(s.n_logit_rows) * n_vocab;
  s.logits = s.ops->host_logit_buffer(n_logit_floats);
  if (s.logits == nullptr) {
    s.own_logits.resize(n_logit_floats);
    s.logits = s.own_logits.data();
  }
  for (int start = 0; start < n_total; start += int(s.params.n_batch)) {
    const int n = std::min(int(s.params.n_batch), n_total - start);
    s.positions.resize(n);
    for (int i = 0; i < n; ++i) s.positions[i] = int32_t(s.n_past + i);
    // Rows of this batch whose logits are wanted; a batch before them computes only its last row
    // (into scratch at the start of the buffer, overwritten later).
    const int batch_first = std::max(first - start, 0);
    const bool wanted = batch_first < n;
    float* out = wanted ? s.logits + size_t(start + batch_first - first) * n_vocab : s.logits;
    llama_forward(w, *s.ops, s.cache, tokens.data() + start, s.positions.data(), n, wanted ? batch_first : n - 1,
                  s.scratch, out);
    s.n_past += uint32_t(n);
    s.tokens.insert(s.tokens.end(), tokens.begin() + start, tokens.begin() + start + n);
  }
  return Status::ok();
}

const float* Session::logits(int i) const {
  const Impl& s = *impl_;
  const int row = i < 0 ? s.n_logit_rows - 1 : i - s.first_logit;
  assert(row >= 0 && row < s.n_logit_rows);
  return s.logits + size_t(row) * s.model->impl().weights.hp.n_vocab;
}

uint32_t Session::n_past() const { return impl_->n_past; }
uint32_t Session::n_ctx() const { return impl_->params.n_ctx; }

void Session::reset() {
  impl_->n_past = 0;
  impl_->tokens.clear();
  impl_->cache.cells().clear();
}

const std::vector<int32_t>& Session::tokens() const { return impl_->tokens; }

Status Session::truncate(uint32_t n_tokens) {
  Impl& s = *impl_;
  if (n_tokens >= s.n_past) return Status::ok();
  // The f16 window ring keeps window + max_batch positions: dropping more than max_batch tokens would
  // leave ring slots of the kept recent positions overwritten by the forgotten ones.
  const KvCache& c = s.cache;
  if (c.window() > 0 && s.n_past - n_tokens > c.window_ring_slots() - c.window()) {
    return Status::error("truncate: cannot drop " + std::to_string(s.n_past - n_tokens) +
                         " tokens with an f16 window (at most " + std::to_string(c.window_ring_slots() - c.window()) + ")");
  }
  s.n_past = n_tokens;
  s.tokens.resize(n_tokens);
  s.cache.cells().truncate(n_tokens);
  return Status::ok();
}

// The KV file holds a host KvCache. A backend that keeps the vectors on its device copies them through a
// temporary host cache of the same layout (as large as the whole cache while the file is written or read).
Status Session::save_kv(const std::string& path) const {
  Impl& s = *impl_;
  const uint64_t fingerprint = model_fingerprint(*s.model);
  if (!s.ops->keeps_kv_on_device()) return kv_save(s.cache, s.tokens, fingerprint, path);
  auto host = KvCache::create(s.cache.config(), /*host_storage=*/true);
  if (!host) return host.status().with_context(path);
  host->cells() = s.cache.cells();
  KVANT_RETURN_IF_ERROR(s.ops->download_kv(s.cache, *host).with_context(path));
  return kv_save(*host, s.tokens, fingerprint, path);
}

Status Session::load_kv(const std::string& path) {
  Impl& s = *impl_;
  const uint64_t fingerprint = model_fingerprint(*s.model);
  Expected<std::vector<int32_t>> tokens = Status::error(path + ": not read");
  if (!s.ops->keeps_kv_on_device()) {
    tokens = kv_load(s.cache, fingerprint, path);
  } else {
    s.cache.cells().clear();  // as kv_load leaves a host cache: empty unless the load succeeds
    auto host = KvCache::create(s.cache.config(), /*host_storage=*/true);
    if (!host) return host.status().with_context(path);
    tokens = kv_load(*host, fingerprint, path);
    if (tokens) {
      const Status up = s.ops->upload_kv(s.cache, *host);
      if (!up.is_ok()) tokens = up.with_context(path);
      else s.cache.cells() = host->cells();
    }
  }
  s.n_past = tokens ? uint32_t(tokens->size()) : 0;
  s.tokens = tokens ? std::move(tokens).value() : std::vector<int32_t>{};
  s.n_logit_rows = 0;  // no logits until the next eval
  s.first_logit = 0;
  return tokens.status();
}

std::string Session::backend_name() const { return impl_->ops->name(); }
int Session::kernels_per_token() const { return impl_->ops->kernels_per_token(); }

uint64_t Session::kv_bytes_per_token() const { return impl_->cache.bytes_per_token(); }
uint64_t Session::kv_window_bytes() const { return impl_->cache.window_bytes(); }
uint64_t Session::kv_bytes_f16_per_token() const { return impl_->cache.f16_bytes_per_token(); }
std::string Session::kv_description() const { return impl_->cache.description(); }

// Benchmark fill: seeded pseudo-Gaussian K/V rows (Irwin–Hall sum of 4 uniforms, mean 0, variance 1)
// written through ops.kv_write in batches of n_batch, as eval's forward pass writes them.
Status Session::fill_for_benchmark(uint32_t n_tokens, uint64_t seed) {
  Impl& s = *impl_;
  if (uint64_t(s.n_past) + n_tokens > s.params.n_ctx) {
    return Status::error("fill_for_benchmark: " + std::to_string(n_tokens) + " tokens do not fit in the context of " +
                         std::to_string(s.params.n_ctx) + " (" + std::to_string(s.n_past) + " already used)");
  }
  const Hparams& hp = s.model->impl().weights.hp;
  const size_t row = size_t(hp.n_head_kv) * hp.head_dim;
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  auto uniform = [&state]() {  // splitmix64 -> [0, 1)
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return float((z ^ (z >> 31)) >> 40) * (1.0f / 16777216.0f);
  };
  std::vector<float> k, v;
  for (uint32_t start = 0; start < n_tokens; start += s.params.n_batch) {
    const uint32_t n = std::min(s.params.n_batch, n_tokens - start);
    s.positions.resize(n);
    for (uint32_t i = 0; i < n; ++i) s.positions[i] = int32_t(s.n_past + i);
    k.resize(n * row);
    v.resize(n * row);
    for (uint32_t layer = 0; layer < hp.n_layer; ++layer) {
      for (std::vector<float>* buf : {&k, &v}) {
        for (float& x : *buf) x = (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f;
      }
      s.ops->kv_write(s.cache, int(layer), k.data(), v.data(), int(n), s.positions.data());
    }
    s.tokens.insert(s.tokens.end(), n, 0);  // placeholder ids: the cells hold synthetic K/V, not a text
    s.n_past += n;
  }
  return Status::ok();
}

}  // namespace kvant
