// kv/kv_cells.h — KV-cache cell bookkeeping: which cells are in use and the position each holds.
// Storage of the encoded vectors lives in KvCache; this class only knows cells and positions.
#pragma once

#include <cstdint>
#include <vector>

namespace kvant {

class KvCells {
 public:
  explicit KvCells(uint32_t n_cells = 0) : positions_(n_cells, -1) {}

  uint32_t capacity() const { return uint32_t(positions_.size()); }
  // Cells [0, used()) hold tokens; a single sequence fills them in position order.
  uint32_t used() const { return used_; }
  int32_t position(uint32_t cell) const { return positions_[cell]; }

  // Cell for a token at `pos`: a single sequence stores position p in cell p.
  static uint32_t cell_for_position(int32_t pos) { return uint32_t(pos); }
  void occupy(uint32_t cell, int32_t pos) {
    positions_[cell] = pos;
    if (cell + 1 > used_) used_ = cell + 1;
  }
  // Forgets cells from `cell` onwards (used to truncate a sequence).
  void truncate(uint32_t cell) {
    for (uint32_t i = cell; i < used_; ++i) positions_[i] = -1;
    if (cell < used_) used_ = cell;
  }
  void clear() { truncate(0); }

 private:
  std::vector<int32_t> positions_;
  uint32_t used_ = 0;
};

}  // namespace kvant
