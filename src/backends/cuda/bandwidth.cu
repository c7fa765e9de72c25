// backends/cuda/bandwidth.cu — the device-memory read ceiling kvant bench takes CUDA roofline fractions
// against: a grid-stride kernel of 16-byte streaming loads over a buffer far larger than L2, best of
// several timed runs (bytes read / time between two events).
#include <string>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_common.cuh"

namespace kvant {
namespace {

__global__ void read_kernel(const uint4* data, size_t n, unsigned* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const uint4 v = cuda::ld_stream(data + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);  // keeps the loads observable; practically never true
}

Status cuda_error(const char* what, cudaError_t err) {
  cudaGetLastError();
  return Status::error(std::string("CUDA bandwidth measurement: ") + what + ": " + cudaGetErrorString(err));
}

}  // namespace

Expected<double> cuda_measure_read_bandwidth(uint64_t bytes) {
  const CudaDeviceInfo& dev = cuda_device_info();
  if (!dev.available) return Status::error(dev.reason);
  bytes = bytes / 16 * 16;
  if (bytes < (64u << 20)) return Status::error("CUDA bandwidth buffer of " + std::to_string(bytes) + " bytes is too small");
  if (bytes > dev.free_bytes / 2) bytes = dev.free_bytes / 2 / 16 * 16;
  void* buf = nullptr;
  unsigned* sink = nullptr;
  if (cudaError_t e = cudaMalloc(&buf, bytes + 16); e != cudaSuccess) return cuda_error("cudaMalloc", e);
  sink = reinterpret_cast<unsigned*>(static_cast<uint8_t*>(buf) + bytes);
  cudaEvent_t start = nullptr, stop = nullptr;
  double best_s = 0.0;
  cudaError_t err = cudaMemset(buf, 0x5A, bytes + 16);
  if (err == cudaSuccess) err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  int n_sm = 0;
  if (err == cudaSuccess) err = cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, 0);
  for (int run = 0; run < 6 && err == cudaSuccess; ++run) {  // run 0 warms up
    cudaEventRecord(start);
    read_kernel<<<n_sm * 8, 512>>>(static_cast<const uint4*>(buf), bytes / 16, sink);
    cudaEventRecord(stop);
    err = cudaEventSynchronize(stop);
    float ms = 0.0f;
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
    if (err == cudaSuccess && run > 0 && ms > 0.0f && (best_s == 0.0 || ms * 1e-3 < best_s)) best_s = ms * 1e-3;
  }
  if (start) cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  cudaFree(buf);
  if (err != cudaSuccess) return cuda_error("read kernel", err);
  if (!(best_s > 0.0)) return Status::error("CUDA bandwidth measurement took no time");
  return double(bytes) / best_s / 1e9;
}

}  // namespace kvant
