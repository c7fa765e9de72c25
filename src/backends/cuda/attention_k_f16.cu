// backends/cuda/attention_k_f16.cu — attention kernels for K type F16 (every V type); one K type per
// file so that the instantiations compile in parallel.
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::F16>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
