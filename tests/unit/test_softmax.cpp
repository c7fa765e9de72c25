// tests/unit/test_softmax.cpp — the AVX2 softmax against the scalar reference on random scores.
#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "backends/cpu/softmax.h"
#include "test_support.h"

namespace kvant {
namespace {

TEST(Softmax, Avx2MatchesScalarReference) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) GTEST_SKIP() << "CPU without AVX2/FMA";
  std::mt19937 rng(7);
  for (int n : {1, 7, 8, 9, 100, 4096, 32771}) {
    for (float spread : {0.1f, 5.0f, 60.0f}) {
      std::normal_distribution<float> dist(0.0f, spread);
      std::vector<float> ref(static_cast<size_t>(n)), got;
      for (float& v : ref) v = dist(rng);
      got = ref;
      got.push_back(12345.0f);  // guard element must stay untouched
      softmax_scalar(ref.data(), n);
      softmax_avx2(got.data(), n);
      double sum = 0;
      for (int i = 0; i < n; ++i) {
        ASSERT_NEAR(got[i], ref[i], 2e-6f * ref[i] + 1e-12f) << "n " << n << " i " << i;
        sum += got[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
      EXPECT_EQ(got[size_t(n)], 12345.0f);
    }
  }
}

TEST(Softmax, TwoPartsNormaliseTogetherLikeOneArray) {
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 4.0f);
  for (auto [na, nb] : {std::pair<int, int>{0, 5}, {5, 0}, {1000, 128}, {3, 77}, {4096, 1}}) {
    std::vector<float> all(static_cast<size_t>(na + nb));
    for (float& v : all) v = dist(rng);
    std::vector<float> a(all.begin(), all.begin() + na), b(all.begin() + na, all.end());
    softmax_scalar(all.data(), na + nb);
    for (auto parts : {softmax_parts_scalar, softmax_parts}) {
      std::vector<float> pa = a, pb = b;
      parts(pa.data(), na, pb.data(), nb);
      for (int i = 0; i < na; ++i) ASSERT_NEAR(pa[size_t(i)], all[size_t(i)], 2e-6f * all[size_t(i)] + 1e-12f);
      for (int i = 0; i < nb; ++i) ASSERT_NEAR(pb[size_t(i)], all[size_t(na + i)], 2e-6f * all[size_t(na + i)] + 1e-12f);
    }
  }
}

TEST(Softmax, ExtremeValuesUnderflowToZeroNotNan) {
  std::vector<float> x = {0.0f, -200.0f, -1000.0f, -88.0f, -87.5f, 0.0f, -3.0f, -50.0f, -90.0f};
  softmax(x.data(), int64_t(x.size()));
  for (float v : x) EXPECT_TRUE(std::isfinite(v));
  EXPECT_NEAR(x[0], x[5], 1e-7f);
  EXPECT_EQ(x[2], 0.0f);
}

}  // namespace
}  // namespace kvant
