// tests/unit/test_kv_quality.cpp — KV dump reading/validation and the kvq metrics: on generated dumps in a
// temp dir (checked against a decode-based reference computed here) and on the real qwen35 dumps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kv/kv_codec.h"
#include "kv/kv_types.h"
#include "kvant/kv_quality.h"
#include "test_support.h"

namespace kvant {
namespace {

namespace fs = std::filesystem;

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

std::vector<uint8_t> dump_bytes(uint32_t layer, uint32_t heads, uint32_t seq, uint32_t dim,
                                const std::vector<float>& data, uint32_t magic = 0x544B5651) {
  std::vector<uint8_t> out;
  put_u32(out, magic);
  put_u32(out, layer);
  put_u32(out, heads);
  put_u32(out, seq);
  put_u32(out, dim);
  const size_t at = out.size();
  out.resize(at + data.size() * 4);
  if (!data.empty()) std::memcpy(out.data() + at, data.data(), data.size() * 4);  // data() may be null
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
  std::fclose(f);
}

// Keys: per-channel log-normal scale with a few ×5 outlier channels; values: N(0, 1).
std::vector<float> synthetic_data(uint32_t heads, uint32_t seq, uint32_t dim, bool keys, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> scale(dim, 1.0f);
  if (keys) {
    for (uint32_t i = 0; i < dim; ++i) scale[i] = std::exp(0.5f * normal(rng)) * (i % 17 == 3 ? 5.0f : 1.0f);
  }
  std::vector<float> data(size_t(heads) * seq * dim);
  for (size_t i = 0; i < data.size(); ++i) data[i] = scale[i % dim] * normal(rng);
  return data;
}

constexpr uint32_t kHeads = 2, kSeq = 64, kDim = 128;

// A temp dir with layer{0,5}_{keys,values}.bin of synthetic data.
std::string make_dump_dir(const std::string& name = "dumps") {
  const std::string dir = test::temp_dir() + "/" + name;
  fs::create_directories(dir);
  for (uint32_t layer : {0u, 5u}) {
    const std::string base = dir + "/layer" + std::to_string(layer);
    write_file(base + "_keys.bin", dump_bytes(layer, kHeads, kSeq, kDim, synthetic_data(kHeads, kSeq, kDim, true, layer + 1)));
    write_file(base + "_values.bin",
               dump_bytes(layer, kHeads, kSeq, kDim, synthetic_data(kHeads, kSeq, kDim, false, layer + 100)));
  }
  return dir;
}

std::map<std::string, KvQualityRow> by_type(const std::vector<KvQualityRow>& rows) {
  std::map<std::string, KvQualityRow> m;
  for (const KvQualityRow& r : rows) m[r.type] = r;
  return m;
}

// The kvq metrics recomputed independently: decode every block and do all arithmetic in double.
struct Reference {
  double nmse = 0, ip_rel_err = 0, attn_rel_err = 0;
};
Reference reference_metrics(const std::vector<KvDumpPair>& dumps, KvType type, bool rotate, int every) {
  double err = 0, norm = 0, ip_err = 0, ip_ref = 0, attn_sum = 0;
  int attn_n = 0;
  for (const KvDumpPair& p : dumps) {
    const int d = int(p.keys.head_dim);
    Expected<KvCodec> codec = make_kv_codec(type, d, rotate, "KV", KvIsa::Scalar);
    EXPECT_TRUE(codec.has_value()) << codec.error();
    std::vector<uint8_t> block(codec->bytes_per_vector());
    auto roundtrip = [&](const float* x) {
      std::vector<float> y(d);
      codec->encode(x, block.data());
      codec->decode(block.data(), y.data());
      for (int i = 0; i < d; ++i) {
        err += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
        norm += double(x[i]) * x[i];
      }
      return y;
    };
    for (uint32_t h = 0; h < p.keys.num_heads; ++h) {
      std::vector<std::vector<float>> khat(p.keys.seq_len), vhat(p.keys.seq_len);
      for (uint32_t t = 0; t < p.keys.seq_len; ++t) {
        khat[t] = roundtrip(p.keys.vec(h, t));
        vhat[t] = roundtrip(p.values.vec(h, t));
      }
      for (uint32_t tq = every - 1; tq < p.keys.seq_len; tq += every) {
        const float* q = p.keys.vec(h, tq);
        std::vector<double> s, shat;
        std::vector<uint32_t> keys;
        for (uint32_t t = 0; t < p.keys.seq_len; ++t) {
          if (t % every == uint32_t(every - 1)) continue;
          double a = 0, b = 0;
          for (int i = 0; i < d; ++i) {
            a += double(q[i]) * p.keys.vec(h, t)[i];
            b += double(q[i]) * khat[t][i];
          }
          ip_err += std::fabs(a - b);
          ip_ref += std::fabs(a);
          s.push_back(a / std::sqrt(double(d)));
          shat.push_back(b / std::sqrt(double(d)));
          keys.push_back(t);
        }
        auto attend = [&](const std::vector<double>& logits, bool decoded) {
          const double m = *std::max_element(logits.begin(), logits.end());
          std::vector<double> o(d, 0.0);
          double z = 0;
          for (size_t j = 0; j < logits.size(); ++j) {
            const double w = std::exp(logits[j] - m);
            z += w;
            for (int i = 0; i < d; ++i) o[i] += w * (decoded ? vhat[keys[j]][i] : p.values.vec(h, keys[j])[i]);
          }
          for (double& x : o) x /= z;
          return o;
        };
        const std::vector<double> o = attend(s, false), ohat = attend(shat, true);
        double diff = 0, ref = 0;
        for (int i = 0; i < d; ++i) {
          diff += (o[i] - ohat[i]) * (o[i] - ohat[i]);
          ref += o[i] * o[i];
        }
        attn_sum += std::sqrt(diff / ref);
        ++attn_n;
      }
    }
  }
  return {err / norm, ip_err / ip_ref, attn_sum / attn_n};
}

// Checks shared by the synthetic and the real dumps.
void expect_quality_ordering(const std::map<std::string, KvQualityRow>& m) {
  ASSERT_EQ(m.size(), kv_quality_default_types().size());
  EXPECT_EQ(m.at("f32").nmse, 0.0);
  EXPECT_LT(m.at("f32").ip_rel_err, 1e-6);
  EXPECT_LT(m.at("f32").attn_rel_err, 1e-5);
  const char* turbo[] = {"turbo_kv_2b", "turbo_kv_3b", "turbo_kv_4b", "turbo_kv_5b"};
  for (int i = 0; i + 1 < 4; ++i) {
    EXPECT_GT(m.at(turbo[i]).nmse, m.at(turbo[i + 1]).nmse) << turbo[i];
    EXPECT_GT(m.at(turbo[i]).ip_rel_err, m.at(turbo[i + 1]).ip_rel_err) << turbo[i];
    EXPECT_GT(m.at(turbo[i]).attn_rel_err, m.at(turbo[i + 1]).attn_rel_err) << turbo[i];
    EXPECT_LT(m.at(turbo[i]).bits_per_element, m.at(turbo[i + 1]).bits_per_element);
  }
  for (const char* suffix : {"", "_rot"}) {
    const KvQualityRow& q8 = m.at(std::string("q8_0") + suffix);
    const KvQualityRow& q4 = m.at(std::string("q4_0") + suffix);
    EXPECT_LT(q8.nmse, q4.nmse) << suffix;
    EXPECT_LT(q8.ip_rel_err, q4.ip_rel_err) << suffix;
    EXPECT_LT(q8.attn_rel_err, q4.attn_rel_err) << suffix;
  }
  EXPECT_TRUE(m.at("q4_0_rot").rotated);
  EXPECT_FALSE(m.at("q4_0").rotated);
  EXPECT_TRUE(m.at("turbo_kv_3b").rotated);
  EXPECT_DOUBLE_EQ(m.at("q4_0").bits_per_element, 4.5);
  EXPECT_DOUBLE_EQ(m.at("f16").bits_per_element, 16.0);
}

// ---------------------------------------------------------------------------------------------
// Reading and validation

TEST(KvDump, ReadsHeaderAndData) {
  const std::string dir = make_dump_dir();
  Expected<KvDump> d = read_kv_dump(dir + "/layer5_values.bin");
  ASSERT_TRUE(d.has_value()) << d.error();
  EXPECT_EQ(d->layer, 5u);
  EXPECT_EQ(d->num_heads, kHeads);
  EXPECT_EQ(d->seq_len, kSeq);
  EXPECT_EQ(d->head_dim, kDim);
  const std::vector<float> expected = synthetic_data(kHeads, kSeq, kDim, false, 105);
  EXPECT_EQ(d->data, expected);
  EXPECT_EQ(d->vec(1, 3)[7], expected[(1 * kSeq + 3) * kDim + 7]);

  Expected<std::vector<KvDumpPair>> pairs = read_kv_dump_dir(dir);
  ASSERT_TRUE(pairs.has_value()) << pairs.error();
  ASSERT_EQ(pairs->size(), 2u);
  EXPECT_EQ((*pairs)[0].keys.layer, 0u);
  EXPECT_EQ((*pairs)[1].values.layer, 5u);
}

TEST(KvDump, CorruptFilesAreErrorsNamingTheFile) {
  const std::string dir = test::temp_dir();
  const std::vector<float> data = synthetic_data(1, 4, 32, true, 1);
  struct Case {
    std::string name, needle;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> truncated = dump_bytes(0, 1, 4, 32, data);
  truncated.resize(truncated.size() - 4);
  std::vector<float> with_nan = data;
  with_nan[40] = std::nanf("");
  const std::vector<Case> cases = {
      {"bad_magic.bin", "magic", dump_bytes(0, 1, 4, 32, data, 0x46554747)},
      {"truncated.bin", "size", truncated},
      {"too_long.bin", "size", dump_bytes(0, 1, 3, 32, data)},
      {"header_only.bin", "too short", std::vector<uint8_t>(12, 0)},
      {"zero_dim.bin", "zero", dump_bytes(0, 0, 4, 32, {})},
      {"nan.bin", "non-finite", dump_bytes(0, 1, 4, 32, with_nan)},
  };
  for (const Case& c : cases) {
    const std::string path = dir + "/" + c.name;
    write_file(path, c.bytes);
    Expected<KvDump> d = read_kv_dump(path);
    ASSERT_FALSE(d.has_value()) << c.name;
    EXPECT_NE(d.error().find(path), std::string::npos) << d.error();
    EXPECT_NE(d.error().find(c.needle), std::string::npos) << d.error();
  }
  EXPECT_FALSE(read_kv_dump(dir + "/missing.bin").has_value());
}

TEST(KvDump, DirectoryErrorsNameTheFileOrDir) {
  const std::string empty = test::temp_dir();
  Expected<std::vector<KvQualityRow>> r = measure_kv_quality(empty);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find(empty), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("no KV dumps"), std::string::npos) << r.error();

  r = measure_kv_quality(empty + "/does_not_exist");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("does_not_exist"), std::string::npos) << r.error();

  // A corrupt file inside an otherwise good directory.
  std::string dir = make_dump_dir();
  std::vector<uint8_t> bytes = test::read_bytes(dir + "/layer5_keys.bin");
  bytes[0] = 'X';
  write_file(dir + "/layer5_keys.bin", bytes);
  r = measure_kv_quality(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find(dir + "/layer5_keys.bin"), std::string::npos) << r.error();

  // Keys without values.
  dir = make_dump_dir();
  fs::remove(dir + "/layer0_values.bin");
  r = measure_kv_quality(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find(dir + "/layer0_keys.bin"), std::string::npos) << r.error();

  // Header layer that contradicts the file name.
  dir = make_dump_dir();
  write_file(dir + "/layer0_values.bin", dump_bytes(9, kHeads, kSeq, kDim, synthetic_data(kHeads, kSeq, kDim, false, 7)));
  r = measure_kv_quality(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("layer0_values.bin"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("layer 9"), std::string::npos) << r.error();

  // Keys and values of different shapes.
  dir = make_dump_dir();
  write_file(dir + "/layer0_values.bin", dump_bytes(0, kHeads, kSeq / 2, kDim, synthetic_data(kHeads, kSeq / 2, kDim, false, 7)));
  r = measure_kv_quality(dir);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("shape"), std::string::npos) << r.error();
}

TEST(KvQuality, BadTypeAndOptionsAreErrors) {
  const std::string dir = make_dump_dir();
  KvQualityOptions opt;
  opt.types = {"q4_0", "q5_k"};
  Expected<std::vector<KvQualityRow>> r = measure_kv_quality(dir, opt);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("'q5_k'"), std::string::npos) << r.error();
  opt.types = {"q4_0"};
  opt.query_every = 1;
  EXPECT_FALSE(measure_kv_quality(dir, opt).has_value());
  opt.query_every = int(kSeq) + 1;  // no token would be a query
  r = measure_kv_quality(dir, opt);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("seq_len"), std::string::npos) << r.error();
}

// ---------------------------------------------------------------------------------------------
// Metrics on generated dumps

TEST(KvQuality, SyntheticDumpsOrdering) {
  Expected<std::vector<KvQualityRow>> rows = measure_kv_quality(make_dump_dir());
  ASSERT_TRUE(rows.has_value()) << rows.error();
  expect_quality_ordering(by_type(*rows));
}

TEST(KvQuality, MetricsMatchDecodeReference) {
  Expected<std::vector<KvDumpPair>> dumps = read_kv_dump_dir(make_dump_dir());
  ASSERT_TRUE(dumps.has_value()) << dumps.error();
  struct Case {
    const char* name;
    KvType type;
    bool rotate;
  };
  for (const Case& c : {Case{"q4_0", KvType::Q4_0, false}, Case{"q8_0_rot", KvType::Q8_0, true},
                        Case{"turbo_kv_3b", KvType::TURBO_3B, true}, Case{"f16", KvType::F16, false}}) {
    for (int every : {4, 3}) {
      KvQualityOptions opt;
      opt.types = {c.name};
      opt.query_every = every;
      Expected<std::vector<KvQualityRow>> rows = measure_kv_quality(*dumps, opt);
      ASSERT_TRUE(rows.has_value()) << rows.error();
      const KvQualityRow& r = (*rows)[0];
      const Reference ref = reference_metrics(*dumps, c.type, c.rotate, every);
      EXPECT_NEAR(r.nmse, ref.nmse, 1e-6 * ref.nmse + 1e-12) << c.name;
      // Score/accumulate kernels work in float: allow a small relative slack, far below the
      // differences a wrong basis or a wrong scale would cause.
      EXPECT_NEAR(r.ip_rel_err, ref.ip_rel_err, 0.01 * ref.ip_rel_err + 1e-6) << c.name << " every " << every;
      EXPECT_NEAR(r.attn_rel_err, ref.attn_rel_err, 0.01 * ref.attn_rel_err + 1e-5) << c.name << " every " << every;
    }
  }
}

TEST(KvQuality, ScalarAndBestKernelsAgree) {
  Expected<std::vector<KvDumpPair>> dumps = read_kv_dump_dir(make_dump_dir());
  ASSERT_TRUE(dumps.has_value()) << dumps.error();
  KvQualityOptions opt;
  Expected<std::vector<KvQualityRow>> best = measure_kv_quality(*dumps, opt);
  opt.force_scalar = true;
  Expected<std::vector<KvQualityRow>> scalar = measure_kv_quality(*dumps, opt);
  ASSERT_TRUE(best.has_value() && scalar.has_value());
  ASSERT_EQ(best->size(), scalar->size());
  for (size_t i = 0; i < best->size(); ++i) {
    const KvQualityRow &a = (*best)[i], &b = (*scalar)[i];
    EXPECT_EQ(a.type, b.type);
    EXPECT_DOUBLE_EQ(a.nmse, b.nmse) << a.type;  // encode/decode are scalar in both
    EXPECT_NEAR(a.ip_rel_err, b.ip_rel_err, 1e-4 * b.ip_rel_err + 1e-7) << a.type;
    EXPECT_NEAR(a.attn_rel_err, b.attn_rel_err, 1e-3 * b.attn_rel_err + 1e-6) << a.type;
  }
}

// ---------------------------------------------------------------------------------------------
// The real Qwen3.5-0.8B dumps

TEST(KvQuality, RealQwen35Dumps) {
  KVANT_REQUIRE_DATA(keys, "kv_dumps/qwen35_kv/layer3_keys.bin");
  const std::string dir = fs::path(keys).parent_path().string();
  Expected<std::vector<KvDumpPair>> dumps = read_kv_dump_dir(dir);
  ASSERT_TRUE(dumps.has_value()) << dumps.error();
  ASSERT_EQ(dumps->size(), 4u);
  Expected<std::vector<KvQualityRow>> rows = measure_kv_quality(*dumps);
  ASSERT_TRUE(rows.has_value()) << rows.error();
  const std::map<std::string, KvQualityRow> m = by_type(*rows);
  expect_quality_ordering(m);
  // TurboQuant's 4-bit normalised MSE is 0.009.
  EXPECT_LE(m.at("turbo_kv_4b").nmse, 1.05 * 0.009);
  // Rotation helps q4_0 on keys with outlier channels.
  EXPECT_LT(m.at("q4_0_rot").nmse, m.at("q4_0").nmse);

  // Anchor: the data README's relative Frobenius error of ggml's q8_0/q4_0 on layer 3 (4 digits).
  const std::vector<KvDumpPair> layer3(dumps->begin(), dumps->begin() + 1);
  ASSERT_EQ(layer3[0].keys.layer, 3u);
  KvQualityOptions opt;
  opt.types = {"q8_0", "q4_0"};
  Expected<std::vector<KvQualityRow>> l3 = measure_kv_quality(layer3, opt);
  ASSERT_TRUE(l3.has_value()) << l3.error();
  EXPECT_NEAR(std::sqrt((*l3)[0].nmse_keys), 0.006745, 1e-3 * 0.006745);
  EXPECT_NEAR(std::sqrt((*l3)[0].nmse_values), 0.005593, 1e-3 * 0.005593);
  EXPECT_NEAR(std::sqrt((*l3)[1].nmse_keys), 0.10746, 1e-3 * 0.10746);
  EXPECT_NEAR(std::sqrt((*l3)[1].nmse_values), 0.08998, 1e-3 * 0.08998);
}

// ---------------------------------------------------------------------------------------------
// The CLI

TEST(KvqCli, JsonTableAndErrors) {
  const std::string dir = make_dump_dir();
  test::CliResult r = test::run_cli("kvq --dir " + dir + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("[", 0), 0u) << r.out;
  size_t objects = 0;
  for (size_t at = r.out.find("{\"type\""); at != std::string::npos; at = r.out.find("{\"type\"", at + 1)) ++objects;
  EXPECT_EQ(objects, kv_quality_default_types().size());
  EXPECT_NE(r.out.find("\"type\": \"q4_0_rot\", \"bits_per_element\": 4.5, \"nmse\": "), std::string::npos) << r.out;

  r = test::run_cli("kvq --dir " + dir + " --types q8_0,turbo_kv_4b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("turbo_kv_4b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0.009"), std::string::npos) << r.out;  // the paper's reference beside turbo rows
  EXPECT_EQ(r.out.find("q4_0"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("SYNTHETIC"), std::string::npos) << r.out;

  const std::string real_kv = make_dump_dir("real_kv");
  r = test::run_cli("kvq --dir " + real_kv + "/ --types q8_0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("SYNTHETIC"), std::string::npos) << r.out;

  r = test::run_cli("kvq --dir " + dir + "/nope");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find(dir + "/nope"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = test::run_cli("kvq --dir " + dir + " --types q4_1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("q4_1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvant
