// kv/kv_cache.h — the KV cache: per-layer K and V storage in independently chosen codecs, plus cell
// bookkeeping. Layout of one layer's K (and likewise V):
//   k[layer] : [n_head_kv][n_ctx][k_bytes_per_vector]   (each head vector encoded by the K codec)
// so that attention over one KV head reads one contiguous run of encoded vectors.
#pragma once

#include <cassert>
#include <cstdint>
#include <string>
#include <vector>

#include "kv/kv_cells.h"
#include "kv/kv_codec.h"
#include "kv/kv_types.h"
#include "kvant/status.h"

namespace kvant {

struct KvCacheConfig {
  uint32_t n_layer = 0, n_head_kv = 0, head_dim = 0, n_ctx = 0;
  KvType type_k = KvType::F16, type_v = KvType::F16;
  bool rotate_k = false, rotate_v = false;  // Hadamard rotation for q8_0/q4_0 (turbo always rotates)
  uint32_t window = 0;  // most recent tokens also kept in f16 (0: none; unused for f16/f32 caches)
  uint32_t max_batch = 512;  // most tokens written per forward call (sizes the window ring)
};

// Default f16 window for compressed caches (docs/KV-QUALITY.md has the measurements behind it).
inline constexpr uint32_t kDefaultKvWindow = 128;

// Whether a cache of these types keeps a recent-token f16 window at all.
inline bool kv_window_applies(const KvCacheConfig& c) {
  auto compressed = [](KvType t) { return t != KvType::F16 && t != KvType::F32; };
  return c.window > 0 && (compressed(c.type_k) || compressed(c.type_v));
}

// "K turbo_kv_4b, V q4_0 (rotated)".
std::string kv_cache_description(const KvCacheConfig& config);

class KvCache {
 public:
  // Validates head_dim against both types; errors name the role (K/V), type and head_dim. Without
  // host_storage the cache is layout and cell bookkeeping only (a backend that keeps the vectors in its
  // own memory, Ops::keeps_kv_on_device): the vector accessors below must not be called.
  static Expected<KvCache> create(const KvCacheConfig& config, bool host_storage = true);
  bool has_host_storage() const { return host_storage_; }

  const KvCacheConfig& config() const { return config_; }
  KvCells& cells() { return cells_; }
  const KvCells& cells() const { return cells_; }

  const KvCodec& k_codec() const { return k_codec_; }
  const KvCodec& v_codec() const { return v_codec_; }
  size_t k_vector_bytes() const { return k_vector_bytes_; }
  size_t v_vector_bytes() const { return v_vector_bytes_; }
  // Encoded vector of (layer, kv head, cell).
  uint8_t* k_vector(uint32_t layer, uint32_t head, uint32_t cell) {
    assert(host_storage_);
    return k_[layer].data() + (size_t(head) * config_.n_ctx + cell) * k_vector_bytes_;
  }
  uint8_t* v_vector(uint32_t layer, uint32_t head, uint32_t cell) {
    assert(host_storage_);
    return v_[layer].data() + (size_t(head) * config_.n_ctx + cell) * v_vector_bytes_;
  }
  const uint8_t* k_vector(uint32_t layer, uint32_t head, uint32_t cell) const {
    assert(host_storage_);
    return k_[layer].data() + (size_t(head) * config_.n_ctx + cell) * k_vector_bytes_;
  }
  const uint8_t* v_vector(uint32_t layer, uint32_t head, uint32_t cell) const {
    assert(host_storage_);
    return v_[layer].data() + (size_t(head) * config_.n_ctx + cell) * v_vector_bytes_;
  }

  // Recent-token f16 window: a ring of [head][ring_slots][head_dim] halves per layer, indexed by
  // position % ring_slots. It holds window + max_batch slots so that, with write-then-attend, every
  // query of a batch still finds its own last `window` positions.
  uint32_t window() const { return window_; }
  uint32_t window_ring_slots() const { return ring_slots_; }
  const KvCodec& window_codec() const { return window_codec_; }
  uint8_t* k_window(uint32_t layer, uint32_t head, uint32_t slot) {
    assert(host_storage_);
    return k_win_[layer].data() + (size_t(head) * ring_slots_ + slot) * window_vector_bytes_;
  }
  uint8_t* v_window(uint32_t layer, uint32_t head, uint32_t slot) {
    assert(host_storage_);
    return v_win_[layer].data() + (size_t(head) * ring_slots_ + slot) * window_vector_bytes_;
  }
  const uint8_t* k_window(uint32_t layer, uint32_t head, uint32_t slot) const {
    assert(host_storage_);
    return k_win_[layer].data() + (size_t(head) * ring_slots_ + slot) * window_vector_bytes_;
  }
  const uint8_t* v_window(uint32_t layer, uint32_t head, uint32_t slot) const {
    assert(host_storage_);
    return v_win_[layer].data() + (size_t(head) * ring_slots_ + slot) * window_vector_bytes_;
  }
  size_t window_vector_bytes() const { return window_vector_bytes_; }
  uint64_t window_bytes() const;  // fixed size of the f16 window ring over all layers

  // Exact bytes one token occupies over all layers and heads (K + V), and the same for f16 K/V.
  uint64_t bytes_per_token() const;
  uint64_t f16_bytes_per_token() const;
  std::string description() const;  // "K turbo_kv_4b, V f16"

 private:
  KvCacheConfig config_;
  KvCodec k_codec_, v_codec_, window_codec_;
  uint32_t window_ = 0, ring_slots_ = 0;
  size_t window_vector_bytes_ = 0;
  std::vector<std::vector<uint8_t>> k_win_, v_win_;  // [n_layer] each [n_head_kv * ring_slots * d * 2]
  size_t k_vector_bytes_ = 0, v_vector_bytes_ = 0;
  std::vector<std::vector<uint8_t>> k_, v_;  // [n_layer] each [n_head_kv * n_ctx * bytes]
  KvCells cells_;
  bool host_storage_ = true;
};

}  // namespace kvant
