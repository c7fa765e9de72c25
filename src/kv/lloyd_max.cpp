// kv/lloyd_max.cpp — the Lloyd–Max codebooks for N(0,1) at 2..5 bits as constants.
//
// How they were computed (long double, converged to |change| < 1e-15): start from uniform centroids on
// [-3, 3]; repeat { t_i = (c_{i-1} + c_i) / 2;  c_i = E[X | t_i < X < t_{i+1}]
// = (phi(t_i) - phi(t_{i+1})) / (Phi(t_{i+1}) - Phi(t_i)) } with phi/Phi the N(0,1) density and cdf
// (Phi via erfc). Distortion = 1 - sum_i P_i c_i^2. Only the positive half is listed; the codebook is
// symmetric. tests/unit/test_kv_codecs.cpp recomputes them by numerical integration.
#include "kv/lloyd_max.h"

#include <array>
#include <cassert>
#include <cstddef>

namespace kvant {
namespace {

constexpr double kHalf2[] = {0.452780034636, 1.510417608499};
constexpr double kHalf3[] = {0.245094178944, 0.756005281206, 1.343909278505, 2.151945704537};
constexpr double kHalf4[] = {0.128395029851, 0.388048299490, 0.656759118532, 0.942340456487,
                             1.256231197347, 1.618046386022, 2.069017226531, 2.732589570995};
constexpr double kHalf5[] = {0.065889659771, 0.198051829669, 0.331378305760, 0.466699522977,
                             0.604933624009, 0.747135703688, 0.894565117388, 1.048783319923,
                             1.211804380609, 1.386340339587, 1.576228078612, 1.787233217703,
                             2.028728399396, 2.317739404195, 2.691119577377, 3.260732493401};
constexpr double kDistortion[] = {0, 0, 0.1174818478, 0.0345477608, 0.0095010080, 0.0025046684};

struct Table {
  std::array<float, 32> centroids{};
  std::array<float, 31> boundaries{};
  std::array<unsigned char, LloydMaxCodebook::kCells> cells{};
  LloydMaxCodebook book{};
};

Table make_table(int bits, const double* half) {
  Table t;
  const int n = 1 << bits;
  for (int i = 0; i < n / 2; ++i) {
    t.centroids[std::size_t(n / 2 + i)] = float(half[i]);
    t.centroids[std::size_t(n / 2 - 1 - i)] = float(-half[i]);
  }
  for (int i = 0; i + 1 < n; ++i) {
    t.boundaries[std::size_t(i)] = 0.5f * (t.centroids[std::size_t(i)] + t.centroids[std::size_t(i + 1)]);
  }
  for (int k = 0; k < LloydMaxCodebook::kCells; ++k) {
    const float start = float(k) / LloydMaxCodebook::kCellsPerUnit - LloydMaxCodebook::kGridHalfWidth;
    int below = 0;
    while (below < n - 1 && t.boundaries[std::size_t(below)] < start) ++below;
    t.cells[std::size_t(k)] = static_cast<unsigned char>(below);
  }
  t.book = LloydMaxCodebook{bits, n, nullptr, nullptr, kDistortion[bits], nullptr};
  return t;
}

struct Tables {
  Table t[4] = {make_table(2, kHalf2), make_table(3, kHalf3), make_table(4, kHalf4),
                make_table(5, kHalf5)};
  Tables() {
    for (Table& x : t) {  // point each codebook at its own arrays (after the copies above)
      x.book.centroids = x.centroids.data();
      x.book.boundaries = x.boundaries.data();
      x.book.cell_start_index = x.cells.data();
    }
  }
};

}  // namespace

const LloydMaxCodebook& lloyd_max_codebook(int bits) {
  assert(bits >= 2 && bits <= 5);
  static const Tables tables;
  return tables.t[bits - 2].book;
}

}  // namespace kvant
