// tests/unit/test_dot_kernels_avx512.cpp — the AVX-512 VNNI decode dot kernels (Q4_K, Q6_K, Q8_0, Q4_0)
// against the scalar QuantTraits references on random rows, plus the start-up dispatch order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/dot_kernels.h"
#include "quant/ggml_type.h"
#include "quant/kquant_blocks.h"
#include "quant/quant.h"

namespace kvant {
namespace {

const GgmlType kAvx512Types[] = {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::Q4_0};
const int64_t kSizes[] = {256, 512, 2048, 8192};

size_t bytes_for(const QuantTraits& t, int64_t n) { return size_t(n / t.block_elems) * t.block_bytes; }

// One weight row and one activation row in their stored formats, and Σ|w_i a_i| of the dequantised
// values: the scale of the rounding error any float summation order may show.
struct DotCase {
  std::vector<uint8_t> w, a;
  double abs_dot = 0;
};

std::vector<float> random_floats(int64_t n, std::mt19937& rng, float mean, float sd) {
  std::normal_distribution<float> dist(mean, sd);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  for (int i = 0; i < 4; ++i) v[rng() % v.size()] *= 8.0f;  // outliers, as real rows have
  return v;
}

DotCase make_case(GgmlType type, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  const QuantTraits* wt = quant_traits(type);
  const QuantTraits* at = quant_traits(wt->vec_dot_type);
  DotCase c;
  // Odd seeds give weights with a large mean, so Q4_K mins and Q6_K's −32 offset carry weight.
  const std::vector<float> wf = random_floats(n, rng, seed % 2 ? 1.5f : 0.05f, 1.0f);
  const std::vector<float> af = random_floats(n, rng, seed % 3 ? 0.2f : -0.4f, 1.0f);
  c.w.assign(bytes_for(*wt, n), 0xCD);
  wt->quantize_row(wf.data(), c.w.data(), n);
  c.a.assign(bytes_for(*at, n), 0xCD);
  quantize_activations(at->type, af.data(), c.a.data(), n);
  std::vector<float> wd(static_cast<size_t>(n)), ad(static_cast<size_t>(n));
  wt->dequantize_row(c.w.data(), wd.data(), n);
  at->dequantize_row(c.a.data(), ad.data(), n);
  for (int64_t i = 0; i < n; ++i) c.abs_dot += std::fabs(double(wd[size_t(i)]) * ad[size_t(i)]);
  return c;
}

// Block integer sums are exact in both kernels, so results differ only by float rounding in the
// per-block scale products and the accumulation order: a few ulp of each partial sum, bounded by
// 1e-5 · Σ|w a| (float epsilon 1.2e-7 times a generous ~80 for rows of up to 8192 / 32 blocks).
double tolerance(const DotCase& c) { return 1e-5 * c.abs_dot + 1e-30; }

#define REQUIRE_AVX512() \
  if (!cpu_has_avx512_vnni()) GTEST_SKIP() << "CPU lacks AVX-512 VNNI: AVX-512 kernels not tested"

TEST(DotKernelsAvx512, DispatchPrefersAvx512ThenAvx2) {
  REQUIRE_AVX512();
  for (GgmlType type : kAvx512Types) {
    ASSERT_NE(vec_dot_for_isa(type, CpuIsa::Avx512), nullptr) << ggml_type_name(type);
    EXPECT_EQ(best_vec_dot(type), vec_dot_for_isa(type, CpuIsa::Avx512)) << ggml_type_name(type);
  }
  // Formats without an AVX-512 kernel fall back to AVX2.
  for (GgmlType type : {GgmlType::F16, GgmlType::Q5_K, GgmlType::Q3_K}) {
    EXPECT_EQ(vec_dot_for_isa(type, CpuIsa::Avx512), nullptr) << ggml_type_name(type);
    EXPECT_EQ(best_vec_dot(type), vec_dot_for_isa(type, CpuIsa::Avx2)) << ggml_type_name(type);
  }
  EXPECT_EQ(vec_dot_for_isa(GgmlType::Q8_K, CpuIsa::Avx512), nullptr);  // activation-only type
  EXPECT_EQ(best_vec_dot(GgmlType::Q8_K), nullptr);
}

TEST(DotKernelsAvx512, MatchesScalar) {
  REQUIRE_AVX512();
  for (GgmlType type : kAvx512Types) {
    const VecDotFn fast = vec_dot_for_isa(type, CpuIsa::Avx512);
    const VecDotFn ref = vec_dot_for_isa(type, CpuIsa::Scalar);
    ASSERT_NE(fast, nullptr) << ggml_type_name(type);
    for (int64_t n : kSizes) {
      for (uint32_t seed = 1; seed <= 6; ++seed) {
        const DotCase c = make_case(type, n, seed * 7919 + uint32_t(n));
        const float got = fast(n, c.w.data(), c.a.data());
        const float want = ref(n, c.w.data(), c.a.data());
        ASSERT_TRUE(std::isfinite(got)) << ggml_type_name(type) << " n=" << n;
        EXPECT_NEAR(got, want, tolerance(c)) << ggml_type_name(type) << " n=" << n << " seed " << seed;
      }
    }
  }
}

// Q8_0/Q4_0 take two blocks per 512-bit step: odd block counts exercise the 256-bit last block.
TEST(DotKernelsAvx512, OddBlockCountsMatchScalar) {
  REQUIRE_AVX512();
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    for (int64_t n : {32, 96, 2080}) {
      const DotCase c = make_case(type, n, uint32_t(n));
      const float got = vec_dot_for_isa(type, CpuIsa::Avx512)(n, c.w.data(), c.a.data());
      const float want = vec_dot_for_isa(type, CpuIsa::Scalar)(n, c.w.data(), c.a.data());
      EXPECT_NEAR(got, want, tolerance(c)) << ggml_type_name(type) << " n=" << n;
    }
  }
}

// Extreme codes: every weight quant and scale at its format's limits and activations at ±127, so any
// int16 saturation (vpmaddubsw) or lost scale bit would show as a large error, not rounding.
TEST(DotKernelsAvx512, ExtremeBlocksMatchScalar) {
  REQUIRE_AVX512();
  std::mt19937 rng(42);
  for (GgmlType type : {GgmlType::Q4_K, GgmlType::Q6_K}) {
    const QuantTraits* wt = quant_traits(type);
    const int64_t n = 2048;
    for (int trial = 0; trial < 4; ++trial) {
      DotCase c = make_case(type, n, 100 + uint32_t(trial));
      // Overwrite quants/scales with random extreme bytes (keeping fp16 d finite), activations ±127.
      for (int64_t b = 0; b < n / kquant::QK_K; ++b) {
        uint8_t* blk = c.w.data() + size_t(b) * wt->block_bytes;
        const size_t d_bytes = type == GgmlType::Q4_K ? 4 : 0;  // Q4_K: d, dmin first; Q6_K: d last
        const size_t body = wt->block_bytes - 4 + (type == GgmlType::Q6_K ? 2 : 0);
        for (size_t i = 0; i < body; ++i) blk[d_bytes + i] = trial % 2 ? uint8_t(0xFF) : uint8_t(rng());
      }
      auto* ab = reinterpret_cast<kquant::block_q8_K*>(c.a.data());
      for (int64_t b = 0; b < n / kquant::QK_K; ++b) {
        for (int i = 0; i < kquant::QK_K; ++i) ab[b].qs[i] = int8_t(trial < 2 ? 127 : (rng() % 2 ? 127 : -127));
        for (int s = 0; s < 16; ++s) {
          int sum = 0;
          for (int i = 0; i < 16; ++i) sum += ab[b].qs[16 * s + i];
          ab[b].bsums[s] = int16_t(sum);
        }
      }
      std::vector<float> wd(static_cast<size_t>(n)), ad(static_cast<size_t>(n));
      wt->dequantize_row(c.w.data(), wd.data(), n);
      quant_traits(GgmlType::Q8_K)->dequantize_row(c.a.data(), ad.data(), n);
      c.abs_dot = 0;
      for (int64_t i = 0; i < n; ++i) c.abs_dot += std::fabs(double(wd[size_t(i)]) * ad[size_t(i)]);
      const float got = vec_dot_for_isa(type, CpuIsa::Avx512)(n, c.w.data(), c.a.data());
      const float want = vec_dot_for_isa(type, CpuIsa::Scalar)(n, c.w.data(), c.a.data());
      EXPECT_NEAR(got, want, tolerance(c)) << ggml_type_name(type) << " trial " << trial;
    }
  }
}

}  // namespace
}  // namespace kvant
