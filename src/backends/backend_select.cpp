// backends/backend_select.cpp — picks the Ops a session runs on: cpu, cuda, or auto (CUDA when a
// device is present and the model plus its KV cache fit, else CPU).
#include <string>

#include "backends/cpu/cpu_ops.h"
#include "backends/cuda/cuda_backend.h"

namespace kvant {

Expected<std::unique_ptr<Ops>> make_backend(const std::string& name, unsigned n_threads,
                                            uint64_t device_bytes_needed) {
  if (name == "cpu") return std::unique_ptr<Ops>(new CpuOps(n_threads));
  if (name != "cuda" && name != "auto") {
    return Status::error("unknown backend '" + name + "' (expected auto, cpu or cuda)");
  }
  const CudaDeviceInfo& dev = cuda_device_info();
  if (name == "cuda") {
    if (!dev.available) return Status::error("backend cuda: " + dev.reason);
    return make_cuda_ops();
  }
  // auto: keep 1 GiB of the device free for activations, logits, the prefill GEMM's f16 scratch (at most
  // 256 MiB of weights plus the batch's activations; it shrinks or is skipped when memory is short) and
  // the CUDA context.
  const uint64_t margin = uint64_t(1) << 30;
  if (dev.available && device_bytes_needed + margin <= dev.free_bytes) {
    auto ops = make_cuda_ops();
    if (ops) return ops;
  }
  return std::unique_ptr<Ops>(new CpuOps(n_threads));
}

}  // namespace kvant
