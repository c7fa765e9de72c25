// kv/lloyd_max.h — Lloyd–Max (MSE-optimal scalar) quantiser codebooks for N(0,1) at 2..5 bits, used by
// turbo_kv_b. Values were computed by iterating the Lloyd conditions with exact Gaussian integrals.
#pragma once

namespace kvant {

struct LloydMaxCodebook {
  int bits;                 // 2..5
  int size;                 // 2^bits
  const float* centroids;   // ascending, size entries, symmetric around 0
  const float* boundaries;  // size-1 decision thresholds: midpoints of adjacent centroids
  double distortion;        // E[(X - Q(X))^2] for X ~ N(0,1)
  // Acceleration for lloyd_max_nearest: cell k of a uniform grid of width 1/kCellsPerUnit starting at
  // -kGridHalfWidth holds the number of boundaries below the cell start (cells are narrower than the
  // smallest boundary gap, so at most one boundary falls inside a cell).
  static constexpr int kCellsPerUnit = 64;
  static constexpr int kGridHalfWidth = 8;
  static constexpr int kCells = 2 * kGridHalfWidth * kCellsPerUnit;
  const unsigned char* cell_start_index;
};

// The codebook for `bits` in 2..5 (asserted).
const LloydMaxCodebook& lloyd_max_codebook(int bits);

// Index of the centroid nearest to v (v in units of the codebook, i.e. already divided by sigma).
inline int lloyd_max_nearest(const LloydMaxCodebook& book, float v) {
  float pos = (v + float(LloydMaxCodebook::kGridHalfWidth)) * float(LloydMaxCodebook::kCellsPerUnit);
  pos = pos < 0.0f ? 0.0f : pos;  // also maps NaN to cell 0
  const int cell = pos < float(LloydMaxCodebook::kCells - 1) ? int(pos) : LloydMaxCodebook::kCells - 1;
  int index = book.cell_start_index[cell];
  if (index < book.size - 1 && v > book.boundaries[index]) ++index;
  return index;
}

}  // namespace kvant
