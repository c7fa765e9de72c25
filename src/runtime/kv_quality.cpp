// runtime/kv_quality.cpp — reading "QVKT" K/V dumps and measuring every KV codec on them: NMSE,
// inner-product error through the score kernels and attention-output error through score/accumulate.
#include "kvant/kv_quality.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <string_view>
#include <memory>

#include "kv/kv_codec.h"
#include "kv/kv_types.h"

namespace kvant {
namespace {

constexpr uint32_t kDumpMagic = 0x544B5651;  // bytes "QVKT"
constexpr size_t kHeaderBytes = 20;

uint32_t read_u32_le(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// A requested type: codec type plus the rotation flag (always on for turbo types).
struct TypeSpec {
  std::string name;
  KvType type;
  bool rotated;
};

Expected<TypeSpec> parse_type_spec(const std::string& name) {
  static const std::string kRot = "_rot";
  std::string base = name;
  bool rotate = false;
  if (base.size() > kRot.size() && base.compare(base.size() - kRot.size(), kRot.size(), kRot) == 0) {
    base.resize(base.size() - kRot.size());
    rotate = true;
  }
  Expected<KvType> type = parse_kv_type(base);
  if (!type) {
    return Status::error("unknown KV type '" + name + "' (valid: " + kv_type_names() +
                         ", or a non-turbo name with _rot)");
  }
  const bool turbo = kv_type_is_turbo(*type);
  const bool rotated = rotate || turbo;
  return TypeSpec{turbo || !rotated ? std::string(base) : base + "_rot", *type, rotated};
}

bool is_query_token(uint32_t t, int query_every) { return int(t % uint32_t(query_every)) == query_every - 1; }

// Running sums of one type over all dumps.
struct Sums {
  double err_k = 0, norm_k = 0, err_v = 0, norm_v = 0;
  double ip_err = 0, ip_ref = 0;
  double attn_rel_sum = 0;
  uint64_t attn_count = 0;
};

// Encodes every vector of a dump (all heads, all tokens) into blocks[head][token]; adds to the nmse sums.
std::vector<uint8_t> encode_dump(const KvCodec& codec, const KvDump& dump, double* err, double* norm) {
  const size_t bpv = codec.bytes_per_vector();
  const size_t d = dump.head_dim;
  std::vector<uint8_t> blocks(size_t(dump.num_heads) * dump.seq_len * bpv);
  std::vector<float> decoded(d);
  for (uint32_t h = 0; h < dump.num_heads; ++h) {
    for (uint32_t t = 0; t < dump.seq_len; ++t) {
      const float* x = dump.vec(h, t);
      uint8_t* block = blocks.data() + (size_t(h) * dump.seq_len + t) * bpv;
      codec.encode(x, block);
      codec.decode(block, decoded.data());
      for (size_t i = 0; i < d; ++i) {
        const double diff = double(x[i]) - double(decoded[i]);
        *err += diff * diff;
        *norm += double(x[i]) * double(x[i]);
      }
    }
  }
  return blocks;
}

// ip and attention metrics of one layer: held-out keys act as queries against the other tokens.
void measure_attention(const KvCodec& codec, const KvDumpPair& pair, const std::vector<uint8_t>& kblocks,
                       const std::vector<uint8_t>& vblocks, int query_every, Sums& sums) {
  const KvDump& K = pair.keys;
  const KvDump& V = pair.values;
  const size_t bpv = codec.bytes_per_vector();
  const size_t d = K.head_dim;
  const double inv_sqrt_d = 1.0 / std::sqrt(double(d));
  std::vector<uint32_t> key_tokens;
  for (uint32_t t = 0; t < K.seq_len; ++t) {
    if (!is_query_token(t, query_every)) key_tokens.push_back(t);
  }
  const int n = int(key_tokens.size());
  // Encoded keys/values of the non-query tokens, packed contiguously (stride = block size).
  std::vector<uint8_t> kpacked(size_t(n) * bpv), vpacked(size_t(n) * bpv);
  std::vector<float> qp(d), scores(n), probs(n), acc(d);
  std::vector<double> exact_scores(n), exact_out(d);
  for (uint32_t h = 0; h < K.num_heads; ++h) {
    for (int j = 0; j < n; ++j) {
      const size_t src = (size_t(h) * K.seq_len + key_tokens[j]) * bpv;
      std::memcpy(kpacked.data() + size_t(j) * bpv, kblocks.data() + src, bpv);
      std::memcpy(vpacked.data() + size_t(j) * bpv, vblocks.data() + src, bpv);
    }
    for (uint32_t tq = 0; tq < K.seq_len; ++tq) {
      if (!is_query_token(tq, query_every)) continue;
      const float* q = K.vec(h, tq);
      // Inner products, unscaled: exact vs the codec's score path.
      codec.prepare_query(q, qp.data());
      codec.score(qp.data(), kpacked.data(), bpv, n, scores.data());
      for (int j = 0; j < n; ++j) {
        const float* k = K.vec(h, key_tokens[j]);
        double dot = 0;
        for (size_t i = 0; i < d; ++i) dot += double(q[i]) * double(k[i]);
        exact_scores[j] = dot;
        sums.ip_err += std::fabs(dot - double(scores[j]));
        sums.ip_ref += std::fabs(dot);
      }
      // Exact attention output in double.
      const double max_exact = *std::max_element(exact_scores.begin(), exact_scores.end()) * inv_sqrt_d;
      double z = 0;
      std::fill(exact_out.begin(), exact_out.end(), 0.0);
      for (int j = 0; j < n; ++j) {
        const double w = std::exp(exact_scores[j] * inv_sqrt_d - max_exact);
        z += w;
        const float* v = V.vec(h, key_tokens[j]);
        for (size_t i = 0; i < d; ++i) exact_out[i] += w * double(v[i]);
      }
      for (double& o : exact_out) o /= z;
      // Codec attention: scaled query, score, softmax, accumulate, finish_output.
      std::vector<float> q_scaled(q, q + d);
      for (float& x : q_scaled) x = float(double(x) * inv_sqrt_d);
      codec.prepare_query(q_scaled.data(), qp.data());
      codec.score(qp.data(), kpacked.data(), bpv, n, scores.data());
      const float max_s = *std::max_element(scores.begin(), scores.end());
      double zs = 0;
      for (int j = 0; j < n; ++j) {
        probs[j] = std::exp(scores[j] - max_s);
        zs += probs[j];
      }
      for (float& p : probs) p = float(double(p) / zs);
      std::fill(acc.begin(), acc.end(), 0.0f);
      codec.accumulate(probs.data(), vpacked.data(), bpv, n, acc.data());
      codec.finish_output(acc.data());
      double diff2 = 0, ref2 = 0;
      for (size_t i = 0; i < d; ++i) {
        const double e = exact_out[i] - double(acc[i]);
        diff2 += e * e;
        ref2 += exact_out[i] * exact_out[i];
      }
      sums.attn_rel_sum += ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
      ++sums.attn_count;
    }
  }
}

}  // namespace

Expected<KvDump> read_kv_dump(const std::string& path) {
  std::unique_ptr<FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::error(path + ": cannot open KV dump: " + std::strerror(errno));
  unsigned char header[kHeaderBytes];
  const size_t got = std::fread(header, 1, kHeaderBytes, file.get());
  if (got != kHeaderBytes) {
    return Status::error(path + ": KV dump too short: " + std::to_string(got) + " bytes, header needs 20");
  }
  const uint32_t magic = read_u32_le(header);
  if (magic != kDumpMagic) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "bad magic 0x%08X, expected 0x%08X (\"QVKT\")", magic, kDumpMagic);
    return Status::error(path + ": " + buf);
  }
  KvDump dump;
  dump.path = path;
  dump.layer = read_u32_le(header + 4);
  dump.num_heads = read_u32_le(header + 8);
  dump.seq_len = read_u32_le(header + 12);
  dump.head_dim = read_u32_le(header + 16);
  if (dump.num_heads == 0 || dump.seq_len == 0 || dump.head_dim == 0) {
    return Status::error(path + ": KV dump has a zero dimension (heads " + std::to_string(dump.num_heads) +
                         ", seq_len " + std::to_string(dump.seq_len) + ", head_dim " +
                         std::to_string(dump.head_dim) + ")");
  }
  if (dump.head_dim > uint32_t(kKvMaxHeadDim)) {
    return Status::error(path + ": head_dim " + std::to_string(dump.head_dim) + " exceeds " +
                         std::to_string(kKvMaxHeadDim));
  }
  const uint64_t count = uint64_t(dump.num_heads) * dump.seq_len * dump.head_dim;  // < 2^74: see checks
  if (count > (uint64_t(1) << 32)) {
    return Status::error(path + ": KV dump claims " + std::to_string(count) + " floats, too many");
  }
  const uint64_t expected = kHeaderBytes + 4 * count;
  std::error_code ec;
  const uint64_t actual = std::filesystem::file_size(path, ec);
  if (ec) return Status::error(path + ": cannot stat KV dump: " + ec.message());
  if (actual != expected) {
    return Status::error(path + ": file size " + std::to_string(actual) + " bytes, header (heads " +
                         std::to_string(dump.num_heads) + ", seq_len " + std::to_string(dump.seq_len) +
                         ", head_dim " + std::to_string(dump.head_dim) + ") needs " +
                         std::to_string(expected));
  }
  dump.data.resize(size_t(count));
  if (std::fread(dump.data.data(), 4, size_t(count), file.get()) != size_t(count)) {
    return Status::error(path + ": short read of KV dump data");
  }
  // The file is little-endian float32; this build only targets little-endian hosts.
  for (size_t i = 0; i < dump.data.size(); ++i) {
    if (!std::isfinite(dump.data[i])) {
      const size_t per_head = size_t(dump.seq_len) * dump.head_dim;
      return Status::error(path + ": non-finite value at head " + std::to_string(i / per_head) + ", token " +
                           std::to_string(i % per_head / dump.head_dim) + ", dim " +
                           std::to_string(i % dump.head_dim));
    }
  }
  return dump;
}

namespace {

// "layer<N>_keys.bin" / "layer<N>_values.bin" -> N and which file; false for any other name.
bool parse_dump_name(const std::string& name, uint32_t& layer, bool& is_keys) {
  constexpr std::string_view kPrefix = "layer";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return false;
  size_t i = kPrefix.size();
  const size_t digits_begin = i;
  uint64_t value = 0;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9' && i - digits_begin < 9) value = value * 10 + uint64_t(name[i++] - '0');
  if (i == digits_begin) return false;
  const std::string rest = name.substr(i);
  if (rest != "_keys.bin" && rest != "_values.bin") return false;
  layer = uint32_t(value);
  is_keys = rest == "_keys.bin";
  return true;
}

}  // namespace

Expected<std::vector<KvDumpPair>> read_kv_dump_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::error(dir + ": not a directory of KV dumps");
  std::map<uint32_t, std::pair<std::string, std::string>> files;  // layer -> (keys, values)
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    uint32_t layer = 0;
    bool is_keys = false;
    if (!parse_dump_name(entry.path().filename().string(), layer, is_keys)) continue;
    (is_keys ? files[layer].first : files[layer].second) = entry.path().string();
  }
  if (ec) return Status::error(dir + ": cannot list directory: " + ec.message());
  if (files.empty()) return Status::error(dir + ": no KV dumps (layer<N>_keys.bin / layer<N>_values.bin)");
  std::vector<KvDumpPair> pairs;
  for (const auto& [layer, paths] : files) {
    if (paths.first.empty()) return Status::error(paths.second + ": no matching keys file");
    if (paths.second.empty()) return Status::error(paths.first + ": no matching values file");
    KvDumpPair pair;
    KVANT_ASSIGN_OR_RETURN(pair.keys, read_kv_dump(paths.first));
    KVANT_ASSIGN_OR_RETURN(pair.values, read_kv_dump(paths.second));
    for (const KvDump* d : {&pair.keys, &pair.values}) {
      if (d->layer != layer) {
        return Status::error(d->path + ": header says layer " + std::to_string(d->layer) +
                             ", file name says " + std::to_string(layer));
      }
    }
    if (pair.keys.num_heads != pair.values.num_heads || pair.keys.seq_len != pair.values.seq_len ||
        pair.keys.head_dim != pair.values.head_dim) {
      return Status::error(pair.values.path + ": shape (heads, seq_len, head_dim) differs from " +
                           pair.keys.path);
    }
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

std::vector<std::string> kv_quality_default_types() {
  return {"f32", "f16", "q8_0", "q8_0_rot", "q4_0", "q4_0_rot",
          "turbo_kv_2b", "turbo_kv_3b", "turbo_kv_4b", "turbo_kv_5b"};
}

KvQualityCounts kv_quality_counts(const std::vector<KvDumpPair>& dumps, int query_every) {
  KvQualityCounts c;
  if (query_every < 2) return c;
  for (const KvDumpPair& p : dumps) {
    const uint64_t q = p.keys.seq_len / uint32_t(query_every);
    c.vectors += 2ull * p.keys.num_heads * p.keys.seq_len;
    c.queries += q * p.keys.num_heads;
    c.query_key_pairs += q * (p.keys.seq_len - q) * p.keys.num_heads;
  }
  return c;
}

Expected<std::vector<KvQualityRow>> measure_kv_quality(const std::vector<KvDumpPair>& dumps,
                                                       const KvQualityOptions& options) {
  if (options.query_every < 2) {
    return Status::error("query_every must be >= 2, got " + std::to_string(options.query_every));
  }
  if (dumps.empty()) return Status::error("no KV dumps to measure");
  for (const KvDumpPair& p : dumps) {
    if (p.keys.seq_len < uint32_t(options.query_every)) {
      return Status::error(p.keys.path + ": seq_len " + std::to_string(p.keys.seq_len) +
                           " leaves no held-out query with one query every " +
                           std::to_string(options.query_every) + " tokens");
    }
  }
  const std::vector<std::string> names = options.types.empty() ? kv_quality_default_types() : options.types;
  const KvIsa isa = options.force_scalar ? KvIsa::Scalar : kv_best_isa();
  std::vector<KvQualityRow> rows;
  for (const std::string& name : names) {
    KVANT_ASSIGN_OR_RETURN(TypeSpec spec, parse_type_spec(name));
    Sums sums;
    double bits_sum = 0, elements = 0;
    for (const KvDumpPair& pair : dumps) {
      const int d = int(pair.keys.head_dim);
      Expected<KvCodec> codec = make_kv_codec(spec.type, d, spec.rotated, "KV", isa);
      if (!codec) return Status::error(pair.keys.path + ": " + codec.error());
      const std::vector<uint8_t> kblocks = encode_dump(*codec, pair.keys, &sums.err_k, &sums.norm_k);
      const std::vector<uint8_t> vblocks = encode_dump(*codec, pair.values, &sums.err_v, &sums.norm_v);
      measure_attention(*codec, pair, kblocks, vblocks, options.query_every, sums);
      const double n = 2.0 * pair.keys.data.size();
      bits_sum += kv_bits_per_element(spec.type, d) * n;
      elements += n;
    }
    KvQualityRow row;
    row.type = spec.name;
    row.rotated = spec.rotated;
    row.bits_per_element = bits_sum / elements;
    const double norm = sums.norm_k + sums.norm_v;
    row.nmse = norm > 0 ? (sums.err_k + sums.err_v) / norm : 0.0;
    row.nmse_keys = sums.norm_k > 0 ? sums.err_k / sums.norm_k : 0.0;
    row.nmse_values = sums.norm_v > 0 ? sums.err_v / sums.norm_v : 0.0;
    row.ip_rel_err = sums.ip_ref > 0 ? sums.ip_err / sums.ip_ref : 0.0;
    row.attn_rel_err = sums.attn_count ? sums.attn_rel_sum / double(sums.attn_count) : 0.0;
    rows.push_back(std::move(row));
  }
  return rows;
}

Expected<std::vector<KvQualityRow>> measure_kv_quality(const std::string& dump_dir,
                                                       const KvQualityOptions& options) {
  KVANT_ASSIGN_OR_RETURN(std::vector<KvDumpPair> dumps, read_kv_dump_dir(dump_dir));
  return measure_kv_quality(dumps, options);
}

}  // namespace kvant
