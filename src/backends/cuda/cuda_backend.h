// backends/cuda/cuda_backend.h — what the rest of kvant may know about the CUDA backend, in every
// build: whether a device is usable, a factory for its Ops, and the backend choice for a session.
// Builds without CUDA link cuda_stub.cpp, which answers "built without CUDA".
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backends/ops.h"
#include "kvant/status.h"

namespace kvant {

struct CudaDeviceInfo {
  bool available = false;
  std::string name;          // "NVIDIA H100 80GB HBM3"
  uint64_t free_bytes = 0, total_bytes = 0;
  std::string reason;        // why not available ("built without CUDA", "no CUDA device: ...")
};

// Probes device 0 once (cached).
const CudaDeviceInfo& cuda_device_info();

// The CUDA implementation of Ops on device 0. Errors when no device is usable.
Expected<std::unique_ptr<Ops>> make_cuda_ops();

// Device-memory read bandwidth in GB/s: best of several runs of a read-only kernel over `bytes` of
// device memory. Errors when no device is usable.
Expected<double> cuda_measure_read_bandwidth(uint64_t bytes);

// The Ops a session runs on. `name`: "cpu", "cuda" or "auto" (CUDA when a device is present and
// device_bytes_needed fits in its free memory with a margin, else CPU).
Expected<std::unique_ptr<Ops>> make_backend(const std::string& name, unsigned n_threads,
                                            uint64_t device_bytes_needed);

}  // namespace kvant
