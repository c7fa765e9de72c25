// backends/cuda/attention_k_turbo4.cu — attention kernels for K type TURBO_4B (every V type); one K type per
// file so that the instantiations compile in parallel.
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::TURBO_4B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
