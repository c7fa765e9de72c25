// model/hparams.cpp — reading Hparams from GGUF metadata with range checks.
#include "model/hparams.h"

namespace kvant {

namespace {

Expected<uint32_t> read_count(const gguf::File& file, const std::string& key, uint32_t lo, uint32_t hi,
                              std::optional<uint32_t> fallback = std::nullopt) {
  auto v = file.get_uint_opt(key);
  if (!v) return v.status();
  if (!v->has_value()) {
    if (fallback) return *fallback;
    return Status::error(file.path() + ": missing required metadata key '" + key + "'");
  }
  const uint64_t value = **v;
  if (value < lo || value > hi) {
    return Status::error(file.path() + ": metadata '" + key + "' = " + std::to_string(value) +
                         " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return uint32_t(value);
}

}  // namespace

Expected<Hparams> read_hparams(const gguf::File& file, const std::string& arch) {
  Hparams hp;
  hp.arch = arch;
  const std::string p = arch + ".";
  KVANT_ASSIGN_OR_RETURN(hp.n_embd, read_count(file, p + "embedding_length", 1, 1u << 16));
  KVANT_ASSIGN_OR_RETURN(hp.n_layer, read_count(file, p + "block_count", 1, 1024));
  KVANT_ASSIGN_OR_RETURN(hp.n_ff, read_count(file, p + "feed_forward_length", 1, 1u << 20));
  KVANT_ASSIGN_OR_RETURN(hp.n_head, read_count(file, p + "attention.head_count", 1, 1024));
  KVANT_ASSIGN_OR_RETURN(hp.n_head_kv, read_count(file, p + "attention.head_count_kv", 1, 1024, hp.n_head));
  KVANT_ASSIGN_OR_RETURN(hp.n_ctx_train, read_count(file, p + "context_length", 1, 1u << 24, 2048));
  if (hp.n_head % hp.n_head_kv != 0) {
    return Status::error(file.path() + ": attention.head_count " + std::to_string(hp.n_head) +
                         " is not a multiple of head_count_kv " + std::to_string(hp.n_head_kv));
  }
  const uint32_t default_head_dim = hp.n_embd / hp.n_head;
  KVANT_ASSIGN_OR_RETURN(hp.head_dim, read_count(file, p + "attention.key_length", 1, 1024, default_head_dim));
  uint32_t value_dim;
  KVANT_ASSIGN_OR_RETURN(value_dim, read_count(file, p + "attention.value_length", 1, 1024, hp.head_dim));
  if (value_dim != hp.head_dim) {
    return Status::error(file.path() + ": attention.value_length " + std::to_string(value_dim) +
                         " differs from key_length " + std::to_string(hp.head_dim) + " (unsupported)");
  }
  if (hp.head_dim % 2 != 0) {
    return Status::error(file.path() + ": head dimension " + std::to_string(hp.head_dim) + " is odd");
  }
  KVANT_ASSIGN_OR_RETURN(hp.rope_dim, read_count(file, p + "rope.dimension_count", 2, hp.head_dim, hp.head_dim));

  auto base = file.get_float_opt(p + "rope.freq_base");
  if (!base) return base.status();
  if (base->has_value()) hp.rope_freq_base = float(**base);
  if (!(hp.rope_freq_base > 0.0f)) {
    return Status::error(file.path() + ": rope.freq_base " + std::to_string(hp.rope_freq_base) + " must be > 0");
  }
  auto eps = file.get_float_opt(p + "attention.layer_norm_rms_epsilon");
  if (!eps) return eps.status();
  if (eps->has_value()) hp.rms_eps = float(**eps);

  auto scaling = file.get_string_opt(p + "rope.scaling.type");
  if (!scaling) return scaling.status();
  if (scaling->has_value() && **scaling != "none") {
    if (**scaling != "linear") {
      return Status::error(file.path() + ": rope.scaling.type '" + **scaling +
                           "' is not supported (supported: none, linear)");
    }
    auto factor = file.get_float_opt(p + "rope.scaling.factor");
    if (!factor) return factor.status();
    if (factor->has_value() && **factor > 0.0) hp.rope_freq_scale = float(1.0 / **factor);
  }
  return hp;
}

}  // namespace kvant
