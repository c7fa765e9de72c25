// tests/unit/test_quant_kquants.cpp — K-quant formats (Q2_K..Q6_K) and the Q8_K activation type:
// block geometry, quantise/dequantise round-trip error, vec_dot against a float dot of the dequantised
// operands, and the invariants of llama.cpp's Q8_K activation conversion.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/formats.h"
#include "quant/kquant_blocks.h"
#include "quant/quant.h"

namespace kvant {
namespace {

using kquant::block_q8_K;
using kquant::QK_K;

struct KFormat {
  const char* name;
  const QuantTraits* traits;
  uint32_t expected_bytes;
  double max_rel_rms;  // bound on rms(dequant(quant(x)) - x) / rms(x) for Gaussian x
};

std::vector<KFormat> formats_under_test() {
  return {{"Q2_K", &formats::kQ2_K, 84, 0.32},  {"Q3_K", &formats::kQ3_K, 110, 0.18},
          {"Q4_K", &formats::kQ4_K, 144, 0.09}, {"Q5_K", &formats::kQ5_K, 176, 0.045},
          {"Q6_K", &formats::kQ6_K, 210, 0.022}};
}

std::vector<float> gaussian(size_t n, float stddev, uint32_t seed, float mean = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> round_trip(const QuantTraits& t, const std::vector<float>& x) {
  std::vector<uint8_t> blocks(x.size() / t.block_elems * t.block_bytes);
  t.quantize_row(x.data(), blocks.data(), int64_t(x.size()));
  std::vector<float> y(x.size());
  t.dequantize_row(blocks.data(), y.data(), int64_t(x.size()));
  return y;
}

double relative_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += double(x[i] - y[i]) * (x[i] - y[i]);
    ref += double(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

TEST(KQuant, TraitsDescribeTheBlocks) {
  for (const KFormat& f : formats_under_test()) {
    SCOPED_TRACE(f.name);
    EXPECT_EQ(f.traits->block_elems, 256u);
    EXPECT_EQ(f.traits->block_bytes, f.expected_bytes);
    EXPECT_EQ(f.traits->vec_dot_type, GgmlType::Q8_K);
    EXPECT_NE(f.traits->dequantize_row, nullptr);
    EXPECT_NE(f.traits->quantize_row, nullptr);
    EXPECT_NE(f.traits->vec_dot, nullptr);
  }
  EXPECT_EQ(formats::kQ8_K.block_bytes, 292u);
  EXPECT_EQ(formats::kQ8_K.vec_dot, nullptr);
  EXPECT_EQ(formats::kQ2_K.type, GgmlType::Q2_K);
  EXPECT_EQ(formats::kQ6_K.type, GgmlType::Q6_K);
}

TEST(KQuant, RoundTripErrorIsSmall) {
  for (const KFormat& f : formats_under_test()) {
    SCOPED_TRACE(f.name);
    for (float stddev : {0.08f, 1.0f, 300.0f}) {
      const std::vector<float> x = gaussian(16 * QK_K, stddev, 7);
      const double rel = relative_rms_error(x, round_trip(*f.traits, x));
      EXPECT_LT(rel, f.max_rel_rms) << "stddev " << stddev;
      EXPECT_GT(rel, 0.0);  // a lossy format that loses nothing on random data would be suspicious
    }
  }
}

TEST(KQuant, RoundTripHandlesOffsetsZerosAndMixedBlocks) {
  for (const KFormat& f : formats_under_test()) {
    SCOPED_TRACE(f.name);
    // All-positive data far from zero: the asymmetric formats use their mins, the symmetric ones
    // their sign; either way the values must come back close.
    const std::vector<float> shifted = gaussian(4 * QK_K, 0.1f, 11, 3.0f);
    EXPECT_LT(relative_rms_error(shifted, round_trip(*f.traits, shifted)), 0.06);
    // An all-zero row dequantises to exact zeros.
    const std::vector<float> zeros(2 * QK_K, 0.0f);
    for (float y : round_trip(*f.traits, zeros)) ASSERT_EQ(y, 0.0f);
    // A block with one zero sub-block among large values: that sub-block stays near zero.
    std::vector<float> mixed = gaussian(QK_K, 1.0f, 12);
    for (int i = 32; i < 64; ++i) mixed[size_t(i)] = 0.0f;
    const std::vector<float> back = round_trip(*f.traits, mixed);
    for (int i = 32; i < 64; ++i) EXPECT_LT(std::fabs(back[size_t(i)]), 0.35f) << "element " << i;
  }
}

TEST(KQuant, QuantisingIsDeterministicAndReachesEveryBlock) {
  for (const KFormat& f : formats_under_test()) {
    SCOPED_TRACE(f.name);
    const std::vector<float> x = gaussian(8 * QK_K, 1.0f, 21);
    std::vector<uint8_t> a(8 * f.expected_bytes, 0xAA), b(8 * f.expected_bytes, 0x55);
    f.traits->quantize_row(x.data(), a.data(), int64_t(x.size()));
    f.traits->quantize_row(x.data(), b.data(), int64_t(x.size()));
    EXPECT_EQ(a, b);  // every byte written, whatever the buffer held before
  }
}

float float_dot(const std::vector<float>& a, const std::vector<float>& b, double* magnitude) {
  double sum = 0, mag = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sum += double(a[i]) * b[i];
    mag += std::fabs(double(a[i]) * b[i]);
  }
  *magnitude = mag;
  return float(sum);
}

TEST(KQuant, VecDotMatchesDotOfDequantisedOperands) {
  for (const KFormat& f : formats_under_test()) {
    SCOPED_TRACE(f.name);
    for (size_t n : {size_t(QK_K), size_t(4 * QK_K), size_t(16 * QK_K)}) {
      for (uint32_t seed = 1; seed <= 4; ++seed) {
        const std::vector<float> w = gaussian(n, 0.08f, seed, seed == 4 ? 0.05f : 0.0f);
        const std::vector<float> act = gaussian(n, 1.5f, 100 + seed);
        std::vector<uint8_t> wq(n / QK_K * f.expected_bytes);
        f.traits->quantize_row(w.data(), wq.data(), int64_t(n));
        std::vector<block_q8_K> aq(n / QK_K);
        formats::quantize_activations_q8_k(act.data(), aq.data(), int64_t(n));

        std::vector<float> wd(n), ad(n);
        f.traits->dequantize_row(wq.data(), wd.data(), int64_t(n));
        formats::kQ8_K.dequantize_row(aq.data(), ad.data(), int64_t(n));
        double magnitude = 0;
        const float expected = float_dot(wd, ad, &magnitude);
        const float got = f.traits->vec_dot(int64_t(n), wq.data(), aq.data());
        EXPECT_NEAR(got, expected, 1e-4 * std::max(std::fabs(double(expected)), 1e-3 * magnitude))
            << "n " << n << " seed " << seed;
        EXPECT_NEAR(got, expected, 1e-5 * magnitude) << "n " << n << " seed " << seed;
      }
    }
  }
}

// Blocks of random bytes are valid blocks of every K format once their f16 scales are finite: they
// reach bit patterns a quantiser may never write (negative Q3_K scales, top bits of packed scales).
template <typename Block>
std::vector<Block> random_blocks(size_t count, uint32_t seed) {
  std::vector<Block> blocks(count);
  std::mt19937 rng(seed);
  auto* bytes = reinterpret_cast<uint8_t*>(blocks.data());
  for (size_t i = 0; i < count * sizeof(Block); ++i) bytes[i] = uint8_t(rng());
  for (Block& b : blocks) {
    b.d = uint16_t(0x2000 + rng() % 0x1000);  // about 0.008 .. 0.06, positive
    if constexpr (requires { b.dmin; }) b.dmin = uint16_t(0x2000 + rng() % 0x1000);
  }
  return blocks;
}

template <typename Block>
void expect_vec_dot_matches_on_random_blocks(const QuantTraits& t) {
  const size_t nblocks = 8, n = nblocks * QK_K;
  for (uint32_t seed = 1; seed <= 3; ++seed) {
    const std::vector<Block> w = random_blocks<Block>(nblocks, seed);
    const std::vector<float> act = gaussian(n, 1.0f, 50 + seed);
    std::vector<block_q8_K> aq(nblocks);
    formats::quantize_activations_q8_k(act.data(), aq.data(), int64_t(n));
    std::vector<float> wd(n), ad(n);
    t.dequantize_row(w.data(), wd.data(), int64_t(n));
    formats::kQ8_K.dequantize_row(aq.data(), ad.data(), int64_t(n));
    double magnitude = 0;
    const float expected = float_dot(wd, ad, &magnitude);
    EXPECT_NEAR(t.vec_dot(int64_t(n), w.data(), aq.data()), expected, 1e-5 * magnitude) << "seed " << seed;
  }
}

TEST(KQuant, VecDotMatchesOnArbitraryBlocks) {
  expect_vec_dot_matches_on_random_blocks<kquant::block_q2_K>(formats::kQ2_K);
  expect_vec_dot_matches_on_random_blocks<kquant::block_q3_K>(formats::kQ3_K);
  expect_vec_dot_matches_on_random_blocks<kquant::block_q4_K>(formats::kQ4_K);
  expect_vec_dot_matches_on_random_blocks<kquant::block_q5_K>(formats::kQ5_K);
  expect_vec_dot_matches_on_random_blocks<kquant::block_q6_K>(formats::kQ6_K);
}

TEST(KQuant, PackedScaleMinK4RoundTrips) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    uint8_t scales[8], mins[8], packed[12];
    for (int j = 0; j < 8; ++j) { scales[j] = uint8_t(rng() % 64); mins[j] = uint8_t(rng() % 64); }
    kquant::pack_scale_min_k4(scales, mins, packed);
    for (int j = 0; j < 8; ++j) {
      int sc = -1, m = -1;
      kquant::scale_min_k4(j, packed, &sc, &m);
      ASSERT_EQ(sc, scales[j]) << "sub-block " << j;
      ASSERT_EQ(m, mins[j]) << "sub-block " << j;
    }
  }
}

// --- Q8_K activations ---

TEST(Q8K, InvariantsOnRandomData) {
  const size_t n = 32 * QK_K;
  const std::vector<float> x = gaussian(n, 2.0f, 5);
  std::vector<block_q8_K> q(n / QK_K);
  formats::quantize_activations_q8_k(x.data(), q.data(), int64_t(n));
  for (size_t b = 0; b < q.size(); ++b) {
    const float* xb = x.data() + b * QK_K;
    const float d = q[b].d;
    ASSERT_NE(d, 0.0f);
    size_t argmax = 0;
    for (size_t i = 1; i < QK_K; ++i) {
      if (std::fabs(xb[i]) > std::fabs(xb[argmax])) argmax = i;
    }
    // The largest-magnitude element maps to -127 exactly, so d has the opposite sign of that element.
    EXPECT_EQ(q[b].qs[argmax], -127) << "block " << b;
    EXPECT_LT(d * xb[argmax], 0.0f);
    EXPECT_NEAR(std::fabs(d), std::fabs(xb[argmax]) / 127.0f, 1e-6f * std::fabs(xb[argmax]));
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int qi = q[b].qs[i];
        ASSERT_LE(std::abs(qi), 127);
        EXPECT_LE(std::fabs(d * float(qi) - xb[i]), std::fabs(d) * 0.5f * (1.0f + 1e-5f)) << "element " << i;
        sum += qi;
      }
      EXPECT_EQ(q[b].bsums[g], sum) << "block " << b << " group " << g;
    }
  }
}

TEST(Q8K, ZeroBlockGivesZeroScaleAndQuants) {
  std::vector<float> x(2 * QK_K, 0.0f);
  x[QK_K + 3] = 1.0f;  // second block is non-zero
  std::vector<block_q8_K> q(2);
  std::memset(q.data(), 0x5A, sizeof(block_q8_K) * 2);
  formats::quantize_activations_q8_k(x.data(), q.data(), int64_t(x.size()));
  EXPECT_EQ(q[0].d, 0.0f);
  for (int i = 0; i < QK_K; ++i) ASSERT_EQ(q[0].qs[i], 0);
  for (int g = 0; g < 16; ++g) ASSERT_EQ(q[0].bsums[g], 0);
  EXPECT_EQ(q[1].qs[3], -127);
  EXPECT_EQ(q[1].bsums[0], -127);
}

TEST(Q8K, FirstOfTiedMaximaSetsTheSign) {
  std::vector<float> x(QK_K, 0.25f);
  x[3] = 2.0f;
  x[7] = -2.0f;  // same magnitude, later: must not change the choice
  block_q8_K q;
  formats::quantize_activations_q8_k(x.data(), &q, QK_K);
  EXPECT_EQ(q.qs[3], -127);
  EXPECT_EQ(q.qs[7], 127);
  EXPECT_LT(q.d, 0.0f);
  std::swap(x[3], x[7]);
  formats::quantize_activations_q8_k(x.data(), &q, QK_K);
  EXPECT_EQ(q.qs[3], -127);  // now -2.0 comes first
  EXPECT_EQ(q.qs[7], 127);
  EXPECT_GT(q.d, 0.0f);
}

TEST(Q8K, RoundsHalfToEven) {
  // max = -127 gives iscale = 1 exactly, so iscale * x = x and ties are visible.
  std::vector<float> x(QK_K, 0.0f);
  x[0] = -127.0f;
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -0.5f;
  x[4] = -1.5f;
  x[5] = 126.5f;
  block_q8_K q;
  formats::quantize_activations_q8_k(x.data(), &q, QK_K);
  EXPECT_EQ(q.d, 1.0f);
  EXPECT_EQ(q.qs[0], -127);
  EXPECT_EQ(q.qs[1], 2);
  EXPECT_EQ(q.qs[2], 4);
  EXPECT_EQ(q.qs[3], 0);
  EXPECT_EQ(q.qs[4], -2);
  EXPECT_EQ(q.qs[5], 126);
}

TEST(Q8K, DequantizeIsScaleTimesQuant) {
  const std::vector<float> x = gaussian(2 * QK_K, 1.0f, 9);
  std::vector<block_q8_K> q(2);
  formats::quantize_activations_q8_k(x.data(), q.data(), int64_t(x.size()));
  std::vector<float> y(x.size());
  formats::kQ8_K.dequantize_row(q.data(), y.data(), int64_t(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(y[i], q[i / QK_K].d * float(q[i / QK_K].qs[i % QK_K]));
  }
  EXPECT_LT(relative_rms_error(x, y), 0.01);
}

}  // namespace
}  // namespace kvant
