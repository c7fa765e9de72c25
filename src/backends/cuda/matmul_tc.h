// backends/cuda/matmul_tc.h — tensor-core GEMM for prefill (many activation rows): the launch_matvec
// contract (MatvecArgs: up to 3 weights, fused input RMSNorm, Store / AddInto / SwiGlu) on f16 wmma tiles.
#pragma once

#include "backends/cuda/kernels.h"

namespace kvant::cuda {

// Whether launch_matmul_tc handles these arguments: a matvec weight type, n_in % 32 == 0 (and a whole
// number of blocks), all weights of one type / n_in / row size, SwiGlu with two equal-height weights,
// x and norm_w 16-byte aligned.
bool matmul_tc_supports(const MatvecArgs& a);

// Same result as launch_matvec(a) (up to f16 operand rounding, fp32 accumulation); meant for n_rows >= 16.
void launch_matmul_tc(const MatvecArgs& a, cudaStream_t stream);

}  // namespace kvant::cuda
