// kv/kv_serialize.h — saving and restoring a KV cache's contents (tokens, compressed blocks, f16 window)
// to a versioned, checksummed file. The byte layout is documented in docs/FORMATS.md ("Saved KV context").
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kv/kv_cache.h"
#include "kvant/status.h"

namespace kvant {

inline constexpr char kKvFileMagic[8] = {'K', 'V', 'A', 'N', 'T', 'K', 'V', '\0'};
inline constexpr uint32_t kKvFileVersion = 1;

// FNV-1a 64-bit hash; `seed` continues an earlier hash.
uint64_t fnv1a64(const void* data, size_t n, uint64_t seed = 0xcbf29ce484222325ull);

// Writes cells [0, tokens.size()) of `cache` with their tokens. `model_fingerprint` identifies the
// model the cache belongs to (see Session::save_kv).
Status kv_save(const KvCache& cache, const std::vector<int32_t>& tokens, uint64_t model_fingerprint,
               const std::string& path);

// Reads a file written by kv_save into `cache` (cleared first; left empty on error) and returns its
// tokens. Errors: not a kvant KV file, another version, another model, other K/V types, rotation or
// window, more tokens than the cache holds, truncated or corrupted (checksum) data.
Expected<std::vector<int32_t>> kv_load(KvCache& cache, uint64_t model_fingerprint, const std::string& path);

}  // namespace kvant
