// tests/unit/test_dot_kernels.cpp — the AVX2 dot kernels (1x1 and 1x4) against the scalar QuantTraits
// references on random rows quantised by each format's own quantiser, plus the dispatch rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iterator>
#include <random>
#include <vector>

#include "backends/cpu/dot_kernels.h"
#include "quant/ggml_type.h"
#include "quant/quant.h"

namespace kvant {
namespace {

const GgmlType kWeightTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                                 GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_1, GgmlType::Q5_1,
                                 GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K,
                                 GgmlType::Q6_K};
const int64_t kSizes[] = {256, 2048, 4096};
constexpr int kActRows = 5;  // one 1x4 group plus one more row

std::vector<float> random_floats(int64_t n, std::mt19937& rng, float mean) {
  std::normal_distribution<float> dist(mean, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  // A few outliers, as real weights and activations have.
  for (int i = 0; i < 4; ++i) v[rng() % v.size()] *= 8.0f;
  return v;
}

size_t bytes_for(const QuantTraits& t, int64_t n) { return size_t(n / t.block_elems) * t.block_bytes; }

// One weight row and kActRows activation rows in their stored formats, plus their dequantised values.
struct DotCase {
  const QuantTraits* w_traits;
  const QuantTraits* a_traits;
  int64_t n;
  std::vector<uint8_t> w;
  std::vector<uint8_t> a;  // kActRows rows of a_stride bytes
  size_t a_stride;
  std::vector<float> w_float, a_float;

  const uint8_t* act(int r) const { return a.data() + size_t(r) * a_stride; }
  // Σ|w_i a_i| of row r: the scale of the rounding error any summation order may show.
  double abs_dot(int r) const {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += std::fabs(double(w_float[size_t(i)]) * a_float[size_t(r * n + i)]);
    return s;
  }
};

DotCase make_case(GgmlType type, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  DotCase c;
  c.w_traits = quant_traits(type);
  c.a_traits = quant_traits(c.w_traits->vec_dot_type);
  c.n = n;
  const std::vector<float> wf = random_floats(n, rng, 0.1f);
  c.w.assign(bytes_for(*c.w_traits, n), 0xCD);
  c.w_traits->quantize_row(wf.data(), c.w.data(), n);
  c.w_float.resize(size_t(n));
  c.w_traits->dequantize_row(c.w.data(), c.w_float.data(), n);
  c.a_stride = bytes_for(*c.a_traits, n);
  c.a.assign(c.a_stride * kActRows, 0xCD);
  c.a_float.resize(size_t(n) * kActRows);
  for (int r = 0; r < kActRows; ++r) {
    const std::vector<float> af = random_floats(n, rng, r % 2 ? -0.2f : 0.3f);
    quantize_activations(c.a_traits->type, af.data(), c.a.data() + r * c.a_stride, n);
    c.a_traits->dequantize_row(c.act(r), c.a_float.data() + size_t(r) * n, n);
  }
  return c;
}

double tolerance(const DotCase& c, int r) { return 1e-5 * c.abs_dot(r) + 1e-30; }

TEST(DotKernels, ScalarDispatchIsTheReference) {
  for (GgmlType type : kWeightTypes) {
    EXPECT_EQ(vec_dot_for_isa(type, CpuIsa::Scalar), quant_traits(type)->vec_dot) << ggml_type_name(type);
    EXPECT_NE(best_vec_dot(type), nullptr) << ggml_type_name(type);
  }
  EXPECT_EQ(best_vec_dot(GgmlType::Q8_K), nullptr);  // activation-only type
  EXPECT_EQ(vec_dot_x4_for_isa(GgmlType::F16, CpuIsa::Scalar), nullptr);
}

TEST(DotKernels, BestIsTheWidestAvailableKernel) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C: AVX2 kernels not tested";
  for (GgmlType type : kWeightTypes) {  // every weight format has an AVX2 kernel; some an AVX-512 one
    ASSERT_NE(vec_dot_for_isa(type, CpuIsa::Avx2), nullptr) << ggml_type_name(type);
    const VecDotFn wide = cpu_has_avx512_vnni() ? vec_dot_for_isa(type, CpuIsa::Avx512) : nullptr;
    EXPECT_EQ(best_vec_dot(type), wide ? wide : vec_dot_for_isa(type, CpuIsa::Avx2)) << ggml_type_name(type);
    EXPECT_NE(best_vec_dot_x4(type), nullptr) << ggml_type_name(type);
  }
}

TEST(DotKernels, ScalarReferenceMatchesDequantisedDot) {
  // Guards the test data itself: the reference must agree with a double dot of the dequantised rows.
  for (GgmlType type : kWeightTypes) {
    const DotCase c = make_case(type, 2048, 7);
    const double expect = [&] {
      double s = 0;
      for (int64_t i = 0; i < c.n; ++i) s += double(c.w_float[size_t(i)]) * c.a_float[size_t(i)];
      return s;
    }();
    const float got = quant_traits(type)->vec_dot(c.n, c.w.data(), c.act(0));
    EXPECT_NEAR(got, expect, 1e-4 * c.abs_dot(0)) << ggml_type_name(type);
  }
}

TEST(DotKernels, Avx2MatchesScalar) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C: AVX2 kernels not tested";
  int tested = 0;
  for (GgmlType type : kWeightTypes) {
    const VecDotFn fast = vec_dot_for_isa(type, CpuIsa::Avx2);
    ASSERT_NE(fast, nullptr) << ggml_type_name(type);
    const VecDotFn ref = vec_dot_for_isa(type, CpuIsa::Scalar);
    for (int64_t n : kSizes) {
      for (uint32_t seed = 1; seed <= 3; ++seed) {
        const DotCase c = make_case(type, n, seed * 1000 + uint32_t(n));
        for (int r = 0; r < kActRows; ++r) {
          const float got = fast(n, c.w.data(), c.act(r));
          const float want = ref(n, c.w.data(), c.act(r));
          ASSERT_TRUE(std::isfinite(got)) << ggml_type_name(type) << " n=" << n;
          EXPECT_NEAR(got, want, tolerance(c, r)) << ggml_type_name(type) << " n=" << n << " row " << r;
        }
      }
    }
    ++tested;
  }
  EXPECT_EQ(tested, int(std::size(kWeightTypes)));
}

TEST(DotKernels, Avx2X4EqualsOneRowKernel) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C: AVX2 kernels not tested";
  for (GgmlType type : kWeightTypes) {
    const VecDotX4Fn x4 = vec_dot_x4_for_isa(type, CpuIsa::Avx2);
    const VecDotFn x1 = vec_dot_for_isa(type, CpuIsa::Avx2);
    ASSERT_NE(x4, nullptr) << ggml_type_name(type);
    ASSERT_NE(x1, nullptr);
    const VecDotFn ref = vec_dot_for_isa(type, CpuIsa::Scalar);
    for (int64_t n : kSizes) {
      const DotCase c = make_case(type, n, 99 + uint32_t(n));
      for (int first = 0; first + 4 <= kActRows; ++first) {
        float out[6];
        for (float& v : out) v = std::nanf("");  // poison, including the guards either side
        x4(n, c.w.data(), c.act(first), c.a_stride, out + 1);
        EXPECT_TRUE(std::isnan(out[0]) && std::isnan(out[5])) << "x4 wrote outside out[0..3]";
        for (int k = 0; k < 4; ++k) {
          const float single = x1(n, c.w.data(), c.act(first + k));
          EXPECT_EQ(out[1 + k], single) << ggml_type_name(type) << " n=" << n << " row " << first + k;
          EXPECT_NEAR(out[1 + k], ref(n, c.w.data(), c.act(first + k)), tolerance(c, first + k));
        }
      }
    }
  }
}

TEST(DotKernels, FloatKernelsHandleTails) {
  if (!cpu_has_avx2()) GTEST_SKIP() << "CPU lacks AVX2/FMA/F16C: AVX2 kernels not tested";
  for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16}) {
    for (int64_t n : {1, 7, 15, 17, 33, 100}) {
      const DotCase c = make_case(type, n, uint32_t(n));
      const float got = vec_dot_for_isa(type, CpuIsa::Avx2)(n, c.w.data(), c.act(0));
      const float want = vec_dot_for_isa(type, CpuIsa::Scalar)(n, c.w.data(), c.act(0));
      EXPECT_NEAR(got, want, tolerance(c, 0)) << ggml_type_name(type) << " n=" << n;
    }
  }
}

}  // namespace
}  // namespace kvant
