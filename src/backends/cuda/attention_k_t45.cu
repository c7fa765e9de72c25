// backends/cuda/attention_k_t45.cu — attention kernels for K types TURBO_4B and TURBO_5B (every V type).
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::TURBO_4B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
template void launch_attention_k<KvType::TURBO_5B>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
