// backends/cuda/attention_k_turbo5.cu — attention kernels for K type TURBO_5B (every V type); one K type per
// file so that the instantiations compile in parallel.
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::TURBO_5B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
