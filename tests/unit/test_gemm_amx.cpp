// tests/unit/test_gemm_amx.cpp — the AMX-INT8 prefill GEMM (gemm.h, namespace amx) against a scalar
// reference: dequantised weights times activations quantised to int8 per 32, summed in double; ragged
// row and column tiles, an odd group count, and a poisoned border that must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backends/cpu/gemm.h"
#include "quant/quant.h"
#include "test_support.h"

namespace kvant {
namespace {

const GgmlType kAmxTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

// The activation rounding the kernel promises: int8 per 32 with scale max|x| / 127, nearest integer.
std::vector<float> quantised_activations(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size(); b += 32) {
    float amax = 0.0f;
    for (size_t i = b; i < b + 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float d = amax / 127.0f, inv = d != 0.0f ? 1.0f / d : 0.0f;
    for (size_t i = b; i < b + 32; ++i) out[i] = d * std::nearbyint(x[i] * inv);
  }
  return out;
}

void check_type(GgmlType type, int64_t n_in, int n_out, int n_rows, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "type " << int(type) << " n_in " << n_in << " out " << n_out << " rows " << n_rows);
  std::mt19937 rng(seed);
  const test::QuantisedWeights weights = test::quantised_weights(type, n_in, n_out, rng);
  const std::vector<uint8_t>& w = weights.bytes;
  const std::vector<float>& w_float = weights.values;
  const size_t w_row = weights.row_bytes;
  std::vector<float> x(size_t(n_in) * n_rows), a_float(size_t(n_in) * n_rows);
  for (int r = 0; r < n_rows; ++r) {
    const std::vector<float> f = test::random_row(size_t(n_in), rng, r % 2 ? -0.2f : 0.3f);
    const std::vector<float> q = quantised_activations(f);
    std::copy(f.begin(), f.end(), x.begin() + size_t(r) * n_in);
    std::copy(q.begin(), q.end(), a_float.begin() + size_t(r) * n_in);
  }
  std::vector<uint8_t> packed(gemm::amx::packed_bytes(type, n_in, n_rows), 0xCD);
  gemm::amx::pack_row_tiles(type, x.data(), n_in, n_rows, 0, (n_rows + 15) / 16, packed.data());
  const int64_t ldy = n_out + 1;  // one extra column and row that must stay NaN
  std::vector<float> y(size_t(ldy) * (n_rows + 1), std::numeric_limits<float>::quiet_NaN());
  for (int64_t j0 = 0; j0 < n_out; j0 += 16) {
    gemm::amx::compute_column_tile(type, w.data(), w_row, n_in, n_out, j0, packed.data(), n_rows, y.data(), ldy);
  }
  for (int r = 0; r <= n_rows; ++r) {
    for (int j = 0; j <= n_out; ++j) {
      const float got = y[size_t(r) * ldy + j];
      if (r == n_rows || j == n_out) {
        EXPECT_TRUE(std::isnan(got)) << "wrote outside the output at r " << r << " j " << j;
        continue;
      }
      double ref = 0.0, abs_dot = 0.0;
      for (int64_t i = 0; i < n_in; ++i) {
        const double p = double(w_float[size_t(j) * n_in + i]) * a_float[size_t(r) * n_in + i];
        ref += p;
        abs_dot += std::fabs(p);
      }
      ASSERT_NEAR(got, ref, 2e-5 * abs_dot + 1e-30) << "r " << r << " j " << j;
    }
  }
}

TEST(GemmAmx, TilesMatchScalarReference) {
  bool any = false;
  for (GgmlType type : kAmxTypes) {
    if (!gemm::amx::available(type)) continue;
    any = true;
    check_type(type, 256, 16, 16, 1);    // one weight tile x one activation tile
    check_type(type, 2048, 21, 37, 2);   // ragged: 5 weight rows and 5 activation rows in the last tiles
    check_type(type, 512, 3, 20, 3);     // fewer weight rows than a tile
  }
  if (gemm::amx::available(GgmlType::Q8_0)) check_type(GgmlType::Q8_0, 2080, 17, 16, 4);  // odd group count (65)
  if (gemm::amx::available(GgmlType::Q4_0)) check_type(GgmlType::Q4_0, 96, 16, 17, 5);    // 3 groups
  if (!any) GTEST_SKIP() << "CPU lacks AMX-INT8 (or the OS refused the tile state, or KVANT_MAX_ISA is below amx); AMX GEMM not exercised";
}

TEST(GemmAmx, UnsupportedFormatsAreNotOffered) {
  EXPECT_FALSE(gemm::amx::available(GgmlType::F32));
  EXPECT_FALSE(gemm::amx::available(GgmlType::F16));
  EXPECT_FALSE(gemm::amx::available(GgmlType::Q2_K));
}

}  // namespace
}  // namespace kvant
