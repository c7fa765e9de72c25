// backends/cuda/gemm_f16.h — the large-batch prefill GEMM: weights dequantised to f16 once per matmul into
// a scratch buffer, then a tiled f16 tensor-core GEMM (mma.sync). Same contract as launch_matvec.
#pragma once

#include <cstddef>

#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels.h"

namespace kvant::cuda {

// Batches from this many rows take launch_gemm_f16 when launch_matvec is given a scratch.
constexpr int kGemmF16MinRows = 128;

// Device scratch of the GEMM, owned by its caller (one per stream: two streams must not share one):
// f16 activations, their per-row scales, and a chunk of f16 weight rows. Grows on demand, never shrinks.
class GemmScratch {
 public:
  // Cap on the f16 weight chunk; a matmul with more weight rows runs as several chunks.
  explicit GemmScratch(size_t max_weight_bytes = size_t(256) << 20) : max_weight_bytes_(max_weight_bytes) {}
  size_t max_weight_bytes() const { return max_weight_bytes_; }
  // At least `bytes` of device memory in slot 0 (activations), 1 (row scales) or 2 (weights); nullptr
  // when the device has no room (the caller then takes a path without scratch).
  void* slot(int index, size_t bytes) {
    DeviceBuffer& b = slots_[index];
    if (b.bytes() >= bytes) return b.get();
    KVANT_CUDA_CHECK(cudaDeviceSynchronize());  // queued kernels may still read the old buffer
    b.reset();
    void* p = nullptr;
    if (cudaMalloc(&p, bytes) != cudaSuccess) {
      cudaGetLastError();  // clear the allocation error
      return nullptr;
    }
    b = DeviceBuffer::adopt(p, bytes);
    return p;
  }

 private:
  size_t max_weight_bytes_;
  DeviceBuffer slots_[3];
};

// Whether launch_gemm_f16 handles a: what matmul_tc_supports accepts, SwiGlu only with n_out % 8 == 0.
bool gemm_f16_supports(const MatvecArgs& a);

// Same result as launch_matvec(a) up to f16 operand rounding (f32 accumulation). false (nothing launched)
// when the scratch cannot be allocated.
bool launch_gemm_f16(const MatvecArgs& a, GemmScratch& scratch, cudaStream_t stream);

}  // namespace kvant::cuda
