// backends/cuda/l2_prefetch.cuh — the device side of the decode L2 prefetch chain (L2Prefetch, kernels.h):
// a kernel asks the L2 to fetch the leading rows of the next matvec's weights with bulk prefetches.
#pragma once

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels.h"

namespace kvant::cuda {

// Asks the L2 to fetch [p, p + bytes) (16-byte aligned, a multiple of 16), in pieces spread over a warp.
__device__ __forceinline__ void l2_prefetch_range(const uint8_t* p, size_t bytes, int lane) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr size_t kPiece = 16384;
  for (size_t off = size_t(lane) * kPiece; off < bytes; off += 32 * kPiece) {
    const uint32_t n = uint32_t(bytes - off < kPiece ? bytes - off : kPiece);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p + off), "r"(n) : "memory");
  }
#endif
}

// One warp of block `block` (of n_blocks) issues its part of p: the shares of the next launch's blocks
// block, block + n_blocks, ... Only a hint: nothing waits for it, and the result never depends on it.
__device__ inline void issue_l2_prefetch(const L2Prefetch& p, int block, int n_blocks, int lane) {
  if (p.n_w == 0) return;
  const int total = p.swiglu ? p.n_out[0] : p.n_out[0] + p.n_out[1] + p.n_out[2];
  for (int b = block; b < p.blocks; b += n_blocks) {
    const int begin = int(int64_t(b) * total / p.blocks);
    const int end = min(int(int64_t(b + 1) * total / p.blocks), begin + p.rows);
    if (p.swiglu) {
      for (int k = 0; k < 2; ++k)
        l2_prefetch_range(p.data[k] + size_t(begin) * p.row_bytes, size_t(end - begin) * p.row_bytes, lane);
      continue;
    }
    for (int k = 0, base = 0; k < p.n_w; base += p.n_out[k], ++k) {
      const int lo = max(begin, base), hi = min(end, base + p.n_out[k]);
      if (lo < hi) l2_prefetch_range(p.data[k] + size_t(lo - base) * p.row_bytes, size_t(hi - lo) * p.row_bytes, lane);
    }
  }
}

}  // namespace kvant::cuda
