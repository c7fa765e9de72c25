// backends/cuda/attention_k_q.cu — attention kernels for K types Q8_0 and Q4_0 (every V type).
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::Q8_0>(const AttentionArgs&, dim3, size_t, cudaStream_t);
template void launch_attention_k<KvType::Q4_0>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
