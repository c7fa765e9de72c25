// kv/kv_serialize.cpp — KV-cache save/load: a streamed writer with a running FNV-1a checksum and a
// bounds-checked reader over a memory map that verifies the checksum before touching the cache.
#include "kv/kv_serialize.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "core/mapped_file.h"

namespace kvant {

uint64_t fnv1a64(const void* data, size_t n, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

namespace {

// First tokens whose f16 window vectors are stored: the last min(window, n) positions.
uint32_t window_first(const KvCache& cache, uint32_t n_tokens) {
  return n_tokens > cache.window() ? n_tokens - cache.window() : 0;
}

class Writer {
 public:
  explicit Writer(FILE* f) : f_(f) {}
  void bytes(const void* p, size_t n) {
    if (!ok_ || n == 0) return;
    hash_ = fnv1a64(p, n, hash_);
    ok_ = std::fwrite(p, 1, n, f_) == n;
  }
  void u8(uint8_t v) { bytes(&v, 1); }
  void u32(uint32_t v) { bytes(&v, 4); }  // kvant targets little-endian hosts (as GGUF does)
  void u64(uint64_t v) { bytes(&v, 8); }
  void str(const std::string& s) {
    u32(uint32_t(s.size()));
    bytes(s.data(), s.size());
  }
  void finish() {
    const uint64_t h = hash_;
    if (ok_) ok_ = std::fwrite(&h, 1, 8, f_) == 8;
  }
  bool ok() const { return ok_; }

 private:
  FILE* f_;
  uint64_t hash_ = 0xcbf29ce484222325ull;
  bool ok_ = true;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : p_(data), end_(data + size) {}
  bool bytes(void* out, size_t n) {
    if (size_t(end_ - p_) < n) return false;
    std::memcpy(out, p_, n);
    p_ += n;
    return true;
  }
  const uint8_t* take(size_t n) {
    if (size_t(end_ - p_) < n) return nullptr;
    const uint8_t* r = p_;
    p_ += n;
    return r;
  }
  bool u8(uint8_t& v) { return bytes(&v, 1); }
  bool u32(uint32_t& v) { return bytes(&v, 4); }
  bool u64(uint64_t& v) { return bytes(&v, 8); }
  bool str(std::string& s) {
    uint32_t n = 0;
    if (!u32(n) || n > 64 || size_t(end_ - p_) < n) return false;
    s.assign(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return true;
  }
  size_t remaining() const { return size_t(end_ - p_); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace

Status kv_save(const KvCache& cache, const std::vector<int32_t>& tokens, uint64_t model_fingerprint,
               const std::string& path) {
  const KvCacheConfig& c = cache.config();
  const uint32_t n = uint32_t(tokens.size());
  if (n > cache.cells().used() || n > c.n_ctx) {
    return Status::error(path + ": cannot save " + std::to_string(n) + " tokens, the cache holds " +
                         std::to_string(cache.cells().used()));
  }
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::error(path + ": cannot open for writing");
  Writer w(f);
  w.bytes(kKvFileMagic, sizeof kKvFileMagic);
  w.u32(kKvFileVersion);
  w.u64(model_fingerprint);
  w.u32(c.n_layer);
  w.u32(c.n_head_kv);
  w.u32(c.head_dim);
  w.str(kv_type_name(c.type_k));
  w.u8(c.rotate_k ? 1 : 0);
  w.str(kv_type_name(c.type_v));
  w.u8(c.rotate_v ? 1 : 0);
  w.u32(cache.window());
  w.u32(c.n_ctx);
  w.u32(n);
  w.bytes(tokens.data(), size_t(n) * sizeof(int32_t));
  w.u64(cache.k_vector_bytes());
  w.u64(cache.v_vector_bytes());
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    // Cells [0, n) of one head are contiguous in the cache, so each head is one write.
    for (uint32_t h = 0; h < c.n_head_kv; ++h) w.bytes(cache.k_vector(l, h, 0), size_t(n) * cache.k_vector_bytes());
    for (uint32_t h = 0; h < c.n_head_kv; ++h) w.bytes(cache.v_vector(l, h, 0), size_t(n) * cache.v_vector_bytes());
  }
  if (cache.window() > 0) {
    const uint32_t first = window_first(cache, n);
    const size_t wb = cache.window_vector_bytes();
    for (uint32_t l = 0; l < c.n_layer; ++l) {
      for (uint32_t h = 0; h < c.n_head_kv; ++h)
        for (uint32_t pos = first; pos < n; ++pos) w.bytes(cache.k_window(l, h, pos % cache.window_ring_slots()), wb);
      for (uint32_t h = 0; h < c.n_head_kv; ++h)
        for (uint32_t pos = first; pos < n; ++pos) w.bytes(cache.v_window(l, h, pos % cache.window_ring_slots()), wb);
    }
  }
  w.finish();
  const bool closed = std::fclose(f) == 0;
  if (!w.ok() || !closed) {
    std::remove(tmp.c_str());
    return Status::error(path + ": write failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return Status::error(path + ": cannot replace the file");
  }
  return Status::ok();
}

namespace {

Status mismatch(const std::string& path, const std::string& what, const std::string& file_value,
                const std::string& session_value) {
  return Status::error(path + ": saved KV context has " + what + " " + file_value + " but this session has " +
                       session_value);
}

Expected<std::vector<int32_t>> load_into(KvCache& cache, uint64_t model_fingerprint, const std::string& path) {
  KVANT_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  const size_t size = file.size();
  if (size < sizeof kKvFileMagic + 4 || std::memcmp(file.data(), kKvFileMagic, sizeof kKvFileMagic) != 0) {
    return Status::error(path + ": not a kvant KV context file (bad magic)");
  }
  Reader r(file.data(), size);
  char magic[8];
  uint32_t version = 0;
  r.bytes(magic, 8);
  r.u32(version);
  if (version != kKvFileVersion) {
    return Status::error(path + ": KV context file version " + std::to_string(version) + " is not supported (expected " +
                         std::to_string(kKvFileVersion) + ")");
  }
  if (size < sizeof kKvFileMagic + 4 + 8) return Status::error(path + ": truncated KV context file");
  uint64_t stored_sum = 0;
  std::memcpy(&stored_sum, file.data() + size - 8, 8);
  if (fnv1a64(file.data(), size - 8) != stored_sum) {
    return Status::error(path + ": checksum mismatch, the KV context file is corrupted or truncated");
  }
  Reader body(file.data() + 12, size - 12 - 8);
  const auto truncated = [&] { return Status::error(path + ": truncated KV context file (header or data missing)"); };
  const KvCacheConfig& c = cache.config();
  uint64_t fingerprint = 0;
  uint32_t n_layer = 0, n_head_kv = 0, head_dim = 0, window = 0, n_ctx = 0, n = 0;
  std::string type_k, type_v;
  uint8_t rot_k = 0, rot_v = 0;
  if (!body.u64(fingerprint) || !body.u32(n_layer) || !body.u32(n_head_kv) || !body.u32(head_dim) ||
      !body.str(type_k) || !body.u8(rot_k) || !body.str(type_v) || !body.u8(rot_v) || !body.u32(window) ||
      !body.u32(n_ctx) || !body.u32(n)) {
    return truncated();
  }
  char fp_file[20], fp_mine[20];
  std::snprintf(fp_file, sizeof fp_file, "%016llx", static_cast<unsigned long long>(fingerprint));
  std::snprintf(fp_mine, sizeof fp_mine, "%016llx", static_cast<unsigned long long>(model_fingerprint));
  if (fingerprint != model_fingerprint) return mismatch(path, "model fingerprint", fp_file, std::string(fp_mine) + " (another model)");
  if (n_layer != c.n_layer || n_head_kv != c.n_head_kv || head_dim != c.head_dim) {
    return mismatch(path, "shape", std::to_string(n_layer) + "x" + std::to_string(n_head_kv) + "x" + std::to_string(head_dim),
                    std::to_string(c.n_layer) + "x" + std::to_string(c.n_head_kv) + "x" + std::to_string(c.head_dim));
  }
  if (type_k != kv_type_name(c.type_k)) return mismatch(path, "K type", type_k, kv_type_name(c.type_k));
  if (type_v != kv_type_name(c.type_v)) return mismatch(path, "V type", type_v, kv_type_name(c.type_v));
  if ((rot_k != 0) != c.rotate_k) return mismatch(path, "K rotation", rot_k ? "on" : "off", c.rotate_k ? "on" : "off");
  if ((rot_v != 0) != c.rotate_v) return mismatch(path, "V rotation", rot_v ? "on" : "off", c.rotate_v ? "on" : "off");
  if (window != cache.window()) return mismatch(path, "f16 window", std::to_string(window), std::to_string(cache.window()));
  if (n > c.n_ctx) {
    return Status::error(path + ": saved KV context holds " + std::to_string(n) + " tokens (saved with context " +
                         std::to_string(n_ctx) + ") but this session's context is " + std::to_string(c.n_ctx) +
                         " (raise -c/--ctx-size)");
  }
  std::vector<int32_t> tokens(n);
  uint64_t kb = 0, vb = 0;
  if (!body.bytes(tokens.data(), size_t(n) * 4) || !body.u64(kb) || !body.u64(vb)) return truncated();
  if (kb != cache.k_vector_bytes() || vb != cache.v_vector_bytes()) {
    return mismatch(path, "vector bytes K/V", std::to_string(kb) + "/" + std::to_string(vb),
                    std::to_string(cache.k_vector_bytes()) + "/" + std::to_string(cache.v_vector_bytes()));
  }
  const uint32_t first = window_first(cache, n);
  const size_t wb = cache.window_vector_bytes();
  const size_t expected = size_t(c.n_layer) * c.n_head_kv *
                          (size_t(n) * (kb + vb) + (cache.window() > 0 ? 2 * size_t(n - first) * wb : 0));
  if (body.remaining() != expected) {
    return Status::error(path + ": KV context data is " + std::to_string(body.remaining()) + " bytes, expected " +
                         std::to_string(expected) + " (truncated or corrupted file)");
  }
  for (uint32_t l = 0; l < c.n_layer; ++l) {
    for (uint32_t h = 0; h < c.n_head_kv; ++h) std::memcpy(cache.k_vector(l, h, 0), body.take(n * kb), n * kb);
    for (uint32_t h = 0; h < c.n_head_kv; ++h) std::memcpy(cache.v_vector(l, h, 0), body.take(n * vb), n * vb);
  }
  if (cache.window() > 0) {
    for (uint32_t l = 0; l < c.n_layer; ++l) {
      for (uint32_t h = 0; h < c.n_head_kv; ++h)
        for (uint32_t pos = first; pos < n; ++pos) std::memcpy(cache.k_window(l, h, pos % cache.window_ring_slots()), body.take(wb), wb);
      for (uint32_t h = 0; h < c.n_head_kv; ++h)
        for (uint32_t pos = first; pos < n; ++pos) std::memcpy(cache.v_window(l, h, pos % cache.window_ring_slots()), body.take(wb), wb);
    }
  }
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t cell = KvCells::cell_for_position(int32_t(i));
    cache.cells().occupy(cell, int32_t(i));
  }
  return tokens;
}

}  // namespace

Expected<std::vector<int32_t>> kv_load(KvCache& cache, uint64_t model_fingerprint, const std::string& path) {
  cache.cells().clear();
  auto tokens = load_into(cache, model_fingerprint, path);
  if (!tokens) cache.cells().clear();
  return tokens;
}

}  // namespace kvant
