// tests/unit/test_gemm_kernels.cpp — the AVX-512 VNNI prefill GEMM tiles (gemm.h) against the scalar
// QuantTraits::vec_dot reference, on random weights/activations with ragged tile edges.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "backends/cpu/gemm.h"
#include "quant/ggml_type.h"
#include "quant/quant.h"
#include "test_support.h"

namespace kvant {
namespace {

const GgmlType kGemmTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K};

size_t bytes_for(const QuantTraits& t, int64_t n) { return size_t(n / t.block_elems) * t.block_bytes; }

void check_type(GgmlType type, int64_t n_in, int n_out, int n_rows, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "type " << int(type) << " n_in " << n_in << " out " << n_out << " rows " << n_rows);
  std::mt19937 rng(seed);
  const QuantTraits* wt = quant_traits(type);
  const QuantTraits* at = quant_traits(wt->vec_dot_type);
  const test::QuantisedWeights weights = test::quantised_weights(type, n_in, n_out, rng);
  const std::vector<uint8_t>& w = weights.bytes;
  const std::vector<float>& w_float = weights.values;
  const size_t w_row = weights.row_bytes, a_row = bytes_for(*at, n_in);
  const size_t packed_row = gemm::packed_row_bytes(type, n_in);
  ASSERT_GE(packed_row, a_row);
  std::vector<uint8_t> packed(packed_row * n_rows, 0xCD), act(a_row * n_rows);
  std::vector<float> a_float(size_t(n_in) * n_rows);
  for (int r = 0; r < n_rows; ++r) {
    const std::vector<float> f = test::random_row(size_t(n_in), rng, r % 2 ? -0.2f : 0.3f);
    gemm::pack_row(type, f.data(), n_in, packed.data() + r * packed_row);
    quantize_activations(at->type, f.data(), act.data() + r * a_row, n_in);
    at->dequantize_row(act.data() + r * a_row, a_float.data() + size_t(r) * n_in, n_in);
  }
  // Output with a poisoned border: one extra column and row that must stay untouched.
  const int64_t ldy = n_out + 1;
  std::vector<float> y(size_t(ldy) * (n_rows + 1), std::numeric_limits<float>::quiet_NaN());
  gemm::compute_tile(type, w.data(), w_row, n_in, packed.data(), packed_row, 0, n_rows, 0, n_out, y.data(), ldy);
  for (int r = 0; r <= n_rows; ++r) {
    for (int j = 0; j <= n_out; ++j) {
      const float got = y[size_t(r) * ldy + j];
      if (r == n_rows || j == n_out) {
        EXPECT_TRUE(std::isnan(got)) << "wrote outside the tile at r " << r << " j " << j;
        continue;
      }
      const float ref = wt->vec_dot(n_in, w.data() + j * w_row, act.data() + r * a_row);
      double abs_dot = 0;
      for (int64_t i = 0; i < n_in; ++i) abs_dot += std::fabs(double(w_float[size_t(j) * n_in + i]) * a_float[size_t(r) * n_in + i]);
      ASSERT_NEAR(got, ref, 1e-5 * abs_dot + 1e-30) << "r " << r << " j " << j;
    }
  }
}

TEST(GemmKernels, TilesMatchScalarReference) {
  bool any = false;
  for (GgmlType type : kGemmTypes) {
    if (!gemm::available(type)) continue;
    any = true;
    check_type(type, 256, 4, 4, 1);      // one full 4x4 micro-tile
    check_type(type, 2048, 11, 7, 2);    // ragged edges: 3-row and 3-column remainders
    check_type(type, 4096, 6, 9, 3);     // 2-row remainder, 1-column remainder
  }
  if (!any) GTEST_SKIP() << "CPU lacks AVX-512 F/BW/VL + VNNI; GEMM kernels not exercised";
}

TEST(GemmKernels, SubRangeOfTileOnlyWritesThatRange) {
  if (!gemm::available(GgmlType::Q8_0)) GTEST_SKIP() << "CPU lacks AVX-512 VNNI";
  std::mt19937 rng(7);
  const int64_t n_in = 512;
  const int n_out = 9, n_rows = 6;
  const QuantTraits* wt = quant_traits(GgmlType::Q8_0);
  const size_t w_row = bytes_for(*wt, n_in);
  std::vector<uint8_t> w(w_row * n_out);
  for (int j = 0; j < n_out; ++j) wt->quantize_row(test::random_row(size_t(n_in), rng, 0.f).data(), w.data() + j * w_row, n_in);
  const size_t packed_row = gemm::packed_row_bytes(GgmlType::Q8_0, n_in);
  std::vector<uint8_t> packed(packed_row * n_rows);
  for (int r = 0; r < n_rows; ++r) gemm::pack_row(GgmlType::Q8_0, test::random_row(size_t(n_in), rng, 0.f).data(), n_in, packed.data() + r * packed_row);
  std::vector<float> y(size_t(n_out) * n_rows, std::numeric_limits<float>::quiet_NaN());
  gemm::compute_tile(GgmlType::Q8_0, w.data(), w_row, n_in, packed.data(), packed_row, 2, 5, 3, 8, y.data(), n_out);
  for (int r = 0; r < n_rows; ++r) {
    for (int j = 0; j < n_out; ++j) {
      const bool inside = r >= 2 && r < 5 && j >= 3 && j < 8;
      EXPECT_EQ(inside, !std::isnan(y[size_t(r) * n_out + j])) << "r " << r << " j " << j;
    }
  }
}

}  // namespace
}  // namespace kvant
