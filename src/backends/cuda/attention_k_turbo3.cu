// backends/cuda/attention_k_turbo3.cu — attention kernels for K type TURBO_3B (every V type); one K type per
// file so that the instantiations compile in parallel.
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::TURBO_3B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
