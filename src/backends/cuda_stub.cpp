// backends/cuda_stub.cpp — the CUDA entry points of a build without CUDA (KVANT_CUDA off): no device,
// and a factory that says so. Compiled to nothing when the real backend is built.
#ifndef KVANT_HAVE_CUDA
#include "backends/cuda/cuda_backend.h"

namespace kvant {

const CudaDeviceInfo& cuda_device_info() {
  static const CudaDeviceInfo info = [] {
    CudaDeviceInfo i;
    i.reason = "kvant was built without CUDA (configure with -DKVANT_CUDA=ON and nvcc on the PATH)";
    return i;
  }();
  return info;
}

Expected<std::unique_ptr<Ops>> make_cuda_ops() { return Status::error(cuda_device_info().reason); }

Expected<double> cuda_measure_read_bandwidth(uint64_t) { return Status::error(cuda_device_info().reason); }

}  // namespace kvant
#endif  // KVANT_HAVE_CUDA
