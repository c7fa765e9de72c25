// backends/cuda/attention_k_t23.cu — attention kernels for K types TURBO_2B and TURBO_3B (every V type).
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::TURBO_2B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
template void launch_attention_k<KvType::TURBO_3B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
