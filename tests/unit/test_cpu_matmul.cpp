// tests/unit/test_cpu_matmul.cpp — CpuOps' grouped projections (matmul_same_input: one activation
// conversion and one hand-out for Q/K/V or gate/up) give exactly the outputs of separate matmul calls,
// for decode rows, prefill rows, mixed weight formats and several thread counts.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backends/cpu/cpu_ops.h"
#include "test_support.h"

namespace kvant {
namespace {

struct Projection {
  test::QuantisedWeights weights;
  WeightView view;
};

Projection make_projection(GgmlType type, int64_t n_in, int n_out, std::mt19937& rng) {
  Projection p;
  p.weights = test::quantised_weights(type, n_in, n_out, rng);
  p.view.type = type;
  p.view.n_in = n_in;
  p.view.n_out = n_out;
  p.view.row_bytes = p.weights.row_bytes;
  return p;
}

void check_group(const std::vector<GgmlType>& types, const std::vector<int>& n_outs, int n_rows, unsigned threads) {
  SCOPED_TRACE(::testing::Message() << "rows " << n_rows << " threads " << threads << " first type " << int(types[0]));
  std::mt19937 rng(11 + n_rows);
  const int64_t n_in = 512;
  std::vector<Projection> projections;
  for (size_t k = 0; k < types.size(); ++k) projections.push_back(make_projection(types[k], n_in, n_outs[k], rng));
  std::vector<const WeightView*> views;
  for (auto& p : projections) {
    p.view.data = p.weights.bytes.data();
    views.push_back(&p.view);
  }
  const std::vector<float> x = test::random_row(size_t(n_in) * n_rows, rng, 0.1f);
  CpuOps ops(threads);
  std::vector<std::vector<float>> grouped(types.size()), separate(types.size());
  std::vector<float*> outs;
  for (size_t k = 0; k < types.size(); ++k) {
    grouped[k].assign(size_t(n_outs[k]) * n_rows, -1.0f);
    separate[k].assign(size_t(n_outs[k]) * n_rows, -2.0f);
    outs.push_back(grouped[k].data());
  }
  ops.matmul_same_input(views.data(), outs.data(), int(types.size()), x.data(), n_rows);
  for (size_t k = 0; k < types.size(); ++k) ops.matmul(*views[k], x.data(), n_rows, separate[k].data());
  for (size_t k = 0; k < types.size(); ++k) {
    ASSERT_EQ(grouped[k], separate[k]) << "projection " << k;
  }
}

TEST(CpuMatmul, GroupedProjectionsEqualSeparateMatmuls) {
  for (unsigned threads : {1u, 3u}) {
    for (int rows : {1, 2, 5, 20}) {
      check_group({GgmlType::Q8_0, GgmlType::Q8_0, GgmlType::Q8_0}, {96, 32, 32}, rows, threads);  // Q/K/V
      check_group({GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q6_K}, {64, 16, 16}, rows, threads);  // Q4_K_M mix
      check_group({GgmlType::Q8_0, GgmlType::F16}, {48, 48}, rows, threads);  // different dot types: two ops
    }
  }
}

}  // namespace
}  // namespace kvant
