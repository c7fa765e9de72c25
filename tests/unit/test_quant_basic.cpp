// tests/unit/test_quant_basic.cpp — non-K weight formats: SHA-256 vectors, fp16/bf16 conversions,
// quantise/dequantise round trips, vec_dot vs a float reference, activation converters, and
// byte-exact agreement with ggml's quantisers on the KV dumps.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/fp16.h"
#include "core/sha256.h"
#include "quant/blocks.h"
#include "quant/formats.h"
#include "quant/quant.h"
#include "test_support.h"

namespace kvant {
namespace {

std::vector<float> gaussian(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

size_t bytes_for(const QuantTraits& t, int64_t n) { return size_t(n / t.block_elems) * t.block_bytes; }

std::vector<uint8_t> quantize(const QuantTraits& t, const std::vector<float>& x) {
  std::vector<uint8_t> q(bytes_for(t, int64_t(x.size())));
  t.quantize_row(x.data(), q.data(), int64_t(x.size()));
  return q;
}

std::vector<float> dequantize(const QuantTraits& t, const std::vector<uint8_t>& q, int64_t n) {
  std::vector<float> y(size_t(n), NAN);
  t.dequantize_row(q.data(), y.data(), n);
  return y;
}

// ---------------------------------------------------------------------------------------------
// SHA-256

TEST(Sha256, StandardVectors) {
  EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million_a(1000000, 'a');
  EXPECT_EQ(sha256_hex(million_a.data(), million_a.size()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, IncrementalMatchesOneShot) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 3);
  const std::string expected = sha256_hex(data.data(), data.size());
  for (size_t step : {1u, 13u, 63u, 64u, 65u, 500u}) {
    Sha256 h;
    for (size_t i = 0; i < data.size(); i += step) h.update(data.data() + i, std::min(step, data.size() - i));
    std::string hex;
    for (uint8_t b : h.digest()) {
      char buf[3];
      std::snprintf(buf, sizeof(buf), "%02x", b);
      hex += buf;
    }
    EXPECT_EQ(hex, expected) << "step " << step;
  }
}

// ---------------------------------------------------------------------------------------------
// fp16 / bf16 conversions

TEST(Fp16, AllHalvesRoundTripExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(uint16_t(h));
    const bool is_nan = ((h >> 10) & 0x1F) == 0x1F && (h & 0x3FF) != 0;
    if (is_nan) {
      EXPECT_TRUE(std::isnan(f)) << h;
      continue;
    }
    ASSERT_EQ(fp32_to_fp16(f), uint16_t(h)) << "half 0x" << std::hex << h;
  }
}

TEST(Fp16, ValuesAreCorrect) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));
  EXPECT_TRUE(std::isinf(fp16_to_fp32(0x7C00)));
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);  // halfway to the next binade rounds to inf
  EXPECT_EQ(fp32_to_fp16(65519.99f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(1e-8f), 0x0000);
}

// Every midpoint between two adjacent finite halves rounds to the even one; one f32 ulp either side
// rounds to the nearer one.
TEST(Fp16, TiesRoundToEven) {
  for (uint32_t h = 0; h < 0x7BFF; ++h) {
    const double lo = fp16_to_fp32(uint16_t(h)), hi = fp16_to_fp32(uint16_t(h + 1));
    const float mid = float((lo + hi) / 2);  // exact: halves have 11 significant bits
    ASSERT_EQ(double(mid), (lo + hi) / 2);
    const uint16_t even = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
    ASSERT_EQ(fp32_to_fp16(mid), even) << "half 0x" << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(-mid), uint16_t(even | 0x8000)) << "half 0x" << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 0.0f)), uint16_t(h)) << std::hex << h;
    ASSERT_EQ(fp32_to_fp16(std::nextafter(mid, 1e9f)), uint16_t(h + 1)) << std::hex << h;
  }
}

TEST(Bf16, AllRoundTripAndTiesToEven) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const float f = bf16_to_fp32(uint16_t(b));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(bf16_to_fp32(fp32_to_bf16(f))));
      continue;
    }
    ASSERT_EQ(fp32_to_bf16(f), uint16_t(b)) << std::hex << b;
    if ((b & 0x7FFF) >= 0x7F7F) continue;  // next is inf / nan
    const uint32_t mid_bits = (b << 16) | 0x8000u;  // exactly halfway to b+1
    const uint16_t even = (b & 1) ? uint16_t(b + 1) : uint16_t(b);
    ASSERT_EQ(fp32_to_bf16(fp32_from_bits(mid_bits)), even) << std::hex << b;
    ASSERT_EQ(fp32_to_bf16(fp32_from_bits(mid_bits - 1)), uint16_t(b)) << std::hex << b;
    ASSERT_EQ(fp32_to_bf16(fp32_from_bits(mid_bits + 1)), uint16_t(b + 1)) << std::hex << b;
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips

struct RoundTripCase {
  GgmlType type;
  bool asymmetric;     // bound relative to the block's range (max−min) instead of its amax
  double elem_bound;   // max |err| as a fraction of the block's amax or range
  double rel_rms;      // max ||err|| / ||x||
};

class RoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTrip, ErrorWithinFormatBound) {
  const RoundTripCase c = GetParam();
  const QuantTraits* t = quant_traits(c.type);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->type, c.type);
  const int64_t n = 32 * 256;
  const std::vector<float> x = gaussian(size_t(n), 42);
  const std::vector<float> y = dequantize(*t, quantize(*t, x), n);
  double err2 = 0, x2 = 0;
  for (int64_t b = 0; b < n / 32; ++b) {
    float amax = 0, mn = INFINITY, mx = -INFINITY;
    for (int j = 0; j < 32; ++j) {
      const float v = x[size_t(b * 32 + j)];
      amax = std::max(amax, std::fabs(v));
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    for (int j = 0; j < 32; ++j) {
      const size_t i = size_t(b * 32 + j);
      const double err = std::fabs(double(y[i]) - x[i]);
      const double bound = c.asymmetric ? c.elem_bound * (mx - mn) + std::ldexp(std::fabs(mn), -10)
                                        : c.elem_bound * amax;
      ASSERT_LE(err, bound) << "element " << i << " x=" << x[i] << " y=" << y[i];
      err2 += err * err;
      x2 += double(x[i]) * x[i];
    }
  }
  EXPECT_LE(std::sqrt(err2 / x2), c.rel_rms);
}

TEST_P(RoundTrip, ZeroBlockStaysZero) {
  const QuantTraits* t = quant_traits(GetParam().type);
  const std::vector<float> zeros(64, 0.0f);
  for (float v : dequantize(*t, quantize(*t, zeros), 64)) EXPECT_EQ(v, 0.0f);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, RoundTrip,
    ::testing::Values(RoundTripCase{GgmlType::F32, false, 0.0, 0.0},
                      RoundTripCase{GgmlType::F16, false, std::ldexp(1.0, -11), 3e-4},
                      RoundTripCase{GgmlType::BF16, false, std::ldexp(1.0, -8), 3e-3},
                      RoundTripCase{GgmlType::Q8_0, false, 0.6 / 127, 0.007},
                      RoundTripCase{GgmlType::Q8_1, false, 0.6 / 127, 0.007},
                      RoundTripCase{GgmlType::Q4_0, false, 1.02 / 8, 0.10},
                      RoundTripCase{GgmlType::Q4_1, true, 0.55 / 15, 0.09},
                      RoundTripCase{GgmlType::Q5_0, false, 1.02 / 16, 0.05},
                      RoundTripCase{GgmlType::Q5_1, true, 0.55 / 31, 0.045}),
    [](const auto& info) { return std::string(ggml_type_name(info.param.type)); });

// ---------------------------------------------------------------------------------------------
// vec_dot

// Reference: double-precision dot of the dequantised weights and dequantised activations; for the
// Q8_1 formats the min term uses the stored s (= f16(d·Σq)) exactly as ggml does, so the reference
// swaps m·d·Σq for m·s per block.
double reference_dot(const QuantTraits& w, const std::vector<uint8_t>& wq, GgmlType act_type,
                     const std::vector<uint8_t>& aq, int64_t n, double* abs_sum) {
  const std::vector<float> wd = dequantize(w, wq, n);
  const std::vector<float> ad = dequantize(*quant_traits(act_type), aq, n);
  double dot = 0;
  *abs_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    dot += double(wd[size_t(i)]) * ad[size_t(i)];
    *abs_sum += std::fabs(double(wd[size_t(i)]) * ad[size_t(i)]);
  }
  if (act_type == GgmlType::Q8_1) {
    const auto* a = reinterpret_cast<const block_q8_1*>(aq.data());
    for (int64_t b = 0; b < n / 32; ++b) {
      const uint16_t m_bits = w.type == GgmlType::Q4_1
                                  ? reinterpret_cast<const block_q4_1*>(wq.data())[b].m
                                  : reinterpret_cast<const block_q5_1*>(wq.data())[b].m;
      int qsum = 0;
      for (int j = 0; j < 32; ++j) qsum += a[b].qs[j];
      const double m = fp16_to_fp32(m_bits);
      dot += m * (double(fp16_to_fp32(a[b].s)) - double(fp16_to_fp32(a[b].d)) * qsum);
      *abs_sum += std::fabs(m * fp16_to_fp32(a[b].s));
    }
  }
  return dot;
}

class VecDot : public ::testing::TestWithParam<GgmlType> {};

TEST_P(VecDot, MatchesDequantisedFloatDot) {
  const QuantTraits* w = quant_traits(GetParam());
  ASSERT_NE(w, nullptr);
  ASSERT_NE(w->vec_dot, nullptr);
  const QuantTraits* a = quant_traits(w->vec_dot_type);
  ASSERT_NE(a, nullptr);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const int64_t n = 32 * int64_t(seed * 4);
    std::vector<float> xw = gaussian(size_t(n), seed, 0.08f);
    std::vector<float> xa = gaussian(size_t(n), 1000 + seed, 2.0f);
    if (seed % 2) for (float& v : xw) v += 0.05f;  // exercise the min term
    const std::vector<uint8_t> wq = quantize(*w, xw);
    std::vector<uint8_t> aq(bytes_for(*a, n));
    quantize_activations(w->vec_dot_type, xa.data(), aq.data(), n);
    double abs_sum = 0;
    const double ref = reference_dot(*w, wq, w->vec_dot_type, aq, n, &abs_sum);
    const float got = w->vec_dot(n, wq.data(), aq.data());
    EXPECT_NEAR(got, ref, 1e-4 * abs_sum + 1e-30) << "seed " << seed << " n " << n;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, VecDot,
                         ::testing::Values(GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                                           GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

// ---------------------------------------------------------------------------------------------
// Registry and activation converters

TEST(Registry, TraitsDescribeTheirType) {
  struct Expect { GgmlType type; uint32_t elems, bytes; GgmlType act; bool has_dot; };
  const Expect cases[] = {
      {GgmlType::F32, 1, 4, GgmlType::F32, true},     {GgmlType::F16, 1, 2, GgmlType::F16, true},
      {GgmlType::BF16, 1, 2, GgmlType::BF16, true},   {GgmlType::Q8_0, 32, 34, GgmlType::Q8_0, true},
      {GgmlType::Q8_1, 32, 36, GgmlType::Q8_1, false}, {GgmlType::Q4_0, 32, 18, GgmlType::Q8_0, true},
      {GgmlType::Q4_1, 32, 20, GgmlType::Q8_1, true}, {GgmlType::Q5_0, 32, 22, GgmlType::Q8_0, true},
      {GgmlType::Q5_1, 32, 24, GgmlType::Q8_1, true},
  };
  for (const Expect& e : cases) {
    const QuantTraits* t = quant_traits(e.type);
    ASSERT_NE(t, nullptr) << int(e.type);
    EXPECT_EQ(t->type, e.type);
    EXPECT_EQ(t->block_elems, e.elems) << int(e.type);
    EXPECT_EQ(t->block_bytes, e.bytes) << int(e.type);
    EXPECT_EQ(t->vec_dot_type, e.act) << int(e.type);
    EXPECT_EQ(t->vec_dot != nullptr, e.has_dot) << int(e.type);
    EXPECT_NE(t->dequantize_row, nullptr);
    EXPECT_NE(t->quantize_row, nullptr);
  }
  for (GgmlType k : {GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                     GgmlType::Q8_K}) {
    const QuantTraits* t = quant_traits(k);
    ASSERT_NE(t, nullptr) << int(k);
    EXPECT_EQ(t->type, k);
  }
  EXPECT_EQ(quant_traits(GgmlType::IQ2_XXS), nullptr);
  EXPECT_EQ(quant_traits(GgmlType::I32), nullptr);
}

// The AVX2 activation path rounds x·(127/amax) half to even; ggml's reference weight quantiser uses
// x·(1/d) with roundf (half away from zero). amax = 127 makes both multipliers exactly 1.
TEST(Activations, Q8_0RoundsHalfToEvenReferenceAwayFromZero) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f; x[1] = 2.5f; x[2] = 3.5f; x[3] = -2.5f; x[4] = 0.5f; x[5] = -0.5f;
  block_q8_0 act, ref;
  quantize_activations(GgmlType::Q8_0, x.data(), &act, 32);
  formats::kQ8_0.quantize_row(x.data(), &ref, 32);
  EXPECT_EQ(act.d, fp32_to_fp16(1.0f));
  EXPECT_EQ(ref.d, fp32_to_fp16(1.0f));
  const int act_expect[6] = {127, 2, 4, -2, 0, 0};
  const int ref_expect[6] = {127, 3, 4, -3, 1, -1};
  for (int j = 0; j < 6; ++j) {
    EXPECT_EQ(act.qs[j], act_expect[j]) << j;
    EXPECT_EQ(ref.qs[j], ref_expect[j]) << j;
  }
}

TEST(Activations, Q8_1MatchesQ8_0PlusSum) {
  const std::vector<float> x = gaussian(32 * 64, 7, 3.0f);
  std::vector<block_q8_0> a0(64);
  std::vector<block_q8_1> a1(64);
  quantize_activations(GgmlType::Q8_0, x.data(), a0.data(), int64_t(x.size()));
  quantize_activations(GgmlType::Q8_1, x.data(), a1.data(), int64_t(x.size()));
  for (size_t b = 0; b < 64; ++b) {
    EXPECT_EQ(a1[b].d, a0[b].d);
    EXPECT_EQ(std::memcmp(a1[b].qs, a0[b].qs, 32), 0) << b;
    float amax = 0;
    int qsum = 0;
    for (int j = 0; j < 32; ++j) {
      amax = std::max(amax, std::fabs(x[b * 32 + j]));
      qsum += a1[b].qs[j];
    }
    EXPECT_EQ(a1[b].s, fp32_to_fp16((amax / 127.0f) * float(qsum))) << b;
  }
}

TEST(Activations, HalfFormatsRoundToNearestEven) {
  const std::vector<float> x = gaussian(1000, 9);
  std::vector<uint16_t> h(x.size()), b(x.size());
  std::vector<float> copy(x.size());
  quantize_activations(GgmlType::F16, x.data(), h.data(), int64_t(x.size()));
  quantize_activations(GgmlType::BF16, x.data(), b.data(), int64_t(x.size()));
  quantize_activations(GgmlType::F32, x.data(), copy.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(h[i], fp32_to_fp16(x[i]));
    EXPECT_EQ(b[i], fp32_to_bf16(x[i]));
    EXPECT_EQ(copy[i], x[i]);
  }
}

// ---------------------------------------------------------------------------------------------
// Byte-exact vs ggml's quantisers on the KV dumps (shared/data/kv_dumps, README §4)

class KvDump : public ::testing::TestWithParam<std::string> {};

TEST_P(KvDump, QuantisersMatchGgmlByteForByte) {
  const std::string stem = GetParam();
  KVANT_REQUIRE_DATA(dump_path, "kv_dumps/" + stem + ".bin");
  const std::vector<uint8_t> raw = test::read_bytes(dump_path);
  ASSERT_GE(raw.size(), 20u);
  uint32_t header[5];
  std::memcpy(header, raw.data(), sizeof(header));
  ASSERT_EQ(header[0], 0x544B5651u);
  const int64_t head_dim = header[4];
  const int64_t n = int64_t(header[2]) * header[3] * head_dim;
  ASSERT_EQ(raw.size(), 20 + 4 * size_t(n));
  ASSERT_EQ(head_dim % 32, 0);
  std::vector<float> x(static_cast<size_t>(n));
  std::memcpy(x.data(), raw.data() + 20, 4 * size_t(n));

  struct Target { std::string ext; const QuantTraits* t; bool activation_path; };
  const Target targets[] = {{".q8_0", &formats::kQ8_0, false},
                            {".q4_0", &formats::kQ4_0, false},
                            {".q8_0.cpu_avx2", &formats::kQ8_0, true}};
  for (const Target& target : targets) {
    KVANT_REQUIRE_DATA(ref_path, "kv_dumps/ggml_quant/" + stem + target.ext);
    const std::vector<uint8_t> expected = test::read_bytes(ref_path);
    const size_t row_bytes = bytes_for(*target.t, head_dim);
    ASSERT_EQ(expected.size(), row_bytes * size_t(n / head_dim)) << ref_path;
    std::vector<uint8_t> got(expected.size());
    for (int64_t r = 0; r < n / head_dim; ++r) {  // each token row of head_dim is quantised alone
      const float* src = x.data() + r * head_dim;
      uint8_t* dst = got.data() + size_t(r) * row_bytes;
      if (target.activation_path) quantize_activations(GgmlType::Q8_0, src, dst, head_dim);
      else target.t->quantize_row(src, dst, head_dim);
    }
    size_t first_diff = expected.size();
    for (size_t i = 0; i < expected.size(); ++i) {
      if (got[i] != expected[i]) { first_diff = i; break; }
    }
    EXPECT_EQ(first_diff, expected.size())
        << ref_path << ": first differing byte " << first_diff << " (block "
        << first_diff / target.t->block_bytes << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Dumps, KvDump,
    ::testing::Values("qwen35_kv/layer3_keys", "qwen35_kv/layer3_values", "qwen35_kv/layer7_keys",
                      "qwen35_kv/layer7_values", "qwen35_kv/layer11_keys", "qwen35_kv/layer11_values",
                      "qwen35_kv/layer15_keys", "qwen35_kv/layer15_values", "real_kv/layer0_keys",
                      "real_kv/layer0_values", "real_kv/layer3_keys", "real_kv/layer3_values"),
    [](const auto& info) {
      std::string name = info.param;
      for (char& ch : name) if (ch == '/') ch = '_';
      return name;
    });

}  // namespace
}  // namespace kvant
