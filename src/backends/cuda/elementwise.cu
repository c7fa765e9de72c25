// backends/cuda/elementwise.cu — RMSNorm (sum of squares in double, as on the CPU), residual add and
// SwiGLU. Used where the planner could not fuse them into a matvec.
#include "backends/cuda/cuda_common.cuh"
#include "backends/cuda/kernels.h"

namespace kvant::cuda {
namespace {

__global__ void rmsnorm_kernel(const float* x, const float* w, int dim, float eps, float* out) {
  pdl_prologue();
  __shared__ double partial[32];
  __shared__ float scale;
  const float* xr = x + size_t(blockIdx.x) * dim;
  double sum = 0.0;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) sum += double(xr[i]) * double(xr[i]);
  sum = warp_sum(sum);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    double total = 0.0;
    for (int i = 0; i < int(blockDim.x / 32); ++i) total += partial[i];
    scale = 1.0f / sqrtf(float(total / dim) + eps);
  }
  __syncthreads();
  float* o = out + size_t(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) o[i] = (xr[i] * scale) * w[i];
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  pdl_prologue();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) x[i] += y[i];
}

__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, float* out) {
  pdl_prologue();
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

}  // namespace

void launch_rmsnorm(const float* x, const float* w, int n_rows, int dim, float eps, float* out, cudaStream_t stream) {
  launch_kernel(rmsnorm_kernel, n_rows, 256, 0, stream, x, w, dim, eps, out);
  KVANT_CUDA_LAUNCHED();
}

void launch_add(float* x, const float* y, int64_t n, cudaStream_t stream) {
  launch_kernel(add_kernel, ceil_div(n, 256), 256, 0, stream, x, y, n);
  KVANT_CUDA_LAUNCHED();
}

void launch_swiglu(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  launch_kernel(swiglu_kernel, ceil_div(n, 256), 256, 0, stream, gate, up, n, out);
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
