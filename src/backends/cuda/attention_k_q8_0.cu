// backends/cuda/attention_k_q8_0.cu — attention kernels for K type Q8_0 (every V type); one K type per
// file so that the instantiations compile in parallel.
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::Q8_0>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
