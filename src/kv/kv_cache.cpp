// kv/kv_cache.cpp — KvCache allocation and memory accounting.
#include "kv/kv_cache.h"

#include <algorithm>

namespace kvant {

Expected<KvCache> KvCache::create(const KvCacheConfig& config, bool host_storage) {
  KvCache cache;
  KVANT_ASSIGN_OR_RETURN(cache.k_codec_, make_kv_codec(config.type_k, int(config.head_dim), config.rotate_k, "K"));
  KVANT_ASSIGN_OR_RETURN(cache.v_codec_, make_kv_codec(config.type_v, int(config.head_dim), config.rotate_v, "V"));
  cache.config_ = config;
  cache.k_vector_bytes_ = cache.k_codec_.bytes_per_vector();
  cache.v_vector_bytes_ = cache.v_codec_.bytes_per_vector();
  const size_t per_layer_vectors = size_t(config.n_head_kv) * config.n_ctx;
  cache.host_storage_ = host_storage;
  cache.k_.resize(config.n_layer);
  cache.v_.resize(config.n_layer);
  for (uint32_t l = 0; host_storage && l < config.n_layer; ++l) {
    cache.k_[l].assign(per_layer_vectors * cache.k_vector_bytes_, 0);
    cache.v_[l].assign(per_layer_vectors * cache.v_vector_bytes_, 0);
  }
  if (kv_window_applies(config)) {
    cache.window_ = std::min(config.window, config.n_ctx);
    cache.ring_slots_ = std::min(cache.window_ + std::max(config.max_batch, 1u), config.n_ctx);
    KVANT_ASSIGN_OR_RETURN(cache.window_codec_, make_kv_codec(KvType::F16, int(config.head_dim), false, "window"));
    cache.window_vector_bytes_ = cache.window_codec_.bytes_per_vector();
    cache.k_win_.resize(config.n_layer);
    cache.v_win_.resize(config.n_layer);
    for (uint32_t l = 0; host_storage && l < config.n_layer; ++l) {
      cache.k_win_[l].assign(size_t(config.n_head_kv) * cache.ring_slots_ * cache.window_vector_bytes_, 0);
      cache.v_win_[l].assign(size_t(config.n_head_kv) * cache.ring_slots_ * cache.window_vector_bytes_, 0);
    }
  }
  cache.cells_ = KvCells(config.n_ctx);
  return cache;
}

uint64_t KvCache::bytes_per_token() const {
  return uint64_t(config_.n_layer) * config_.n_head_kv * (k_vector_bytes_ + v_vector_bytes_);
}

uint64_t KvCache::window_bytes() const {
  return uint64_t(config_.n_layer) * config_.n_head_kv * ring_slots_ * window_vector_bytes_ * 2;
}

uint64_t KvCache::f16_bytes_per_token() const {
  return uint64_t(config_.n_layer) * config_.n_head_kv * 2 * (2 * uint64_t(config_.head_dim));
}

std::string kv_cache_description(const KvCacheConfig& config) {
  auto name = [](KvType t, bool rotate) {
    std::string s = kv_type_name(t);
    if (rotate && (t == KvType::Q8_0 || t == KvType::Q4_0)) s += " (rotated)";
    return s;
  };
  std::string s = "K " + name(config.type_k, config.rotate_k) + ", V " + name(config.type_v, config.rotate_v);
  if (kv_window_applies(config)) s += ", last " + std::to_string(config.window) + " tokens f16";
  return s;
}

std::string KvCache::description() const { return kv_cache_description(config_); }

}  // namespace kvant
