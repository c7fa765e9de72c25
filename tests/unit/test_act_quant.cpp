// tests/unit/test_act_quant.cpp — the SIMD activation conversions (act_quant.h) write exactly the bytes
// of the scalar quantize_activations: random rows with outliers, all-zero blocks, a block whose largest
// magnitudes tie with opposite signs, tiny and huge scales.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backends/cpu/act_quant.h"
#include "quant/quant.h"

namespace kvant {
namespace {

std::vector<float> test_row(int64_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.1f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = scale * dist(rng);
  for (int i = 0; i < 16; ++i) x[rng() % x.size()] *= 20.0f;               // outliers
  for (int64_t i = 256; i < 512 && i < n; ++i) x[size_t(i)] = 0.0f;         // an all-zero block of 256 (and 8 of 32)
  if (n >= 1024) {                                                            // opposite-sign tie in block 3
    x[768 + 5] = -7.5f * scale * 30;
    x[768 + 9] = 7.5f * scale * 30;
  }
  return x;
}

TEST(ActQuant, SimdBytesEqualScalar) {
  bool any = false;
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q8_K}) {
    const ActQuantFn simd = simd_quantize_activations(type);
    if (simd == nullptr) continue;
    any = true;
    const QuantTraits* t = quant_traits(type);
    for (int64_t n : {int64_t(256), int64_t(2048), int64_t(8192)}) {
      for (float scale : {1e-6f, 1.0f, 3e4f}) {
        for (uint32_t seed = 1; seed <= 3; ++seed) {
          const std::vector<float> x = test_row(n, seed, scale);
          const size_t bytes = size_t(n / t->block_elems) * t->block_bytes;
          std::vector<uint8_t> want(bytes, 0xAB), got(bytes, 0xCD);
          quantize_activations(type, x.data(), want.data(), n);
          simd(x.data(), got.data(), n);
          ASSERT_EQ(want, got) << "type " << int(type) << " n " << n << " scale " << scale << " seed " << seed;
        }
      }
    }
  }
  if (!any) GTEST_SKIP() << "CPU lacks AVX2 (or KVANT_MAX_ISA=scalar); SIMD activation conversion not exercised";
}

TEST(ActQuant, OnlyDotTypesHaveSimdKernels) {
  EXPECT_EQ(simd_quantize_activations(GgmlType::F32), nullptr);
  EXPECT_EQ(simd_quantize_activations(GgmlType::Q4_K), nullptr);
}

}  // namespace
}  // namespace kvant
