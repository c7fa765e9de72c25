// backends/cuda/attention_k_f32.cu — attention kernels for K types F32 and F16 (every V type).
#include "backends/cuda/attention.cuh"

namespace kvant::cuda {
template void launch_attention_k<KvType::F32>(const AttentionArgs&, dim3, size_t, cudaStream_t);
template void launch_attention_k<KvType::F16>(const AttentionArgs&, dim3, size_t, cudaStream_t);
}  // namespace kvant::cuda
