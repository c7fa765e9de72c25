// backends/cuda/cuda_common.cuh — shared CUDA helpers: error checks, an owning device buffer, fp16/bf16
// loads and warp reductions. Included by every .cu file of the CUDA backend.
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace kvant::cuda {

// A CUDA call failing inside an op is a device fault or a programmer error (the Ops interface has no
// error channel): print where and abort.
[[noreturn]] inline void fatal(const char* what, cudaError_t err, const char* file, int line) {
  std::fprintf(stderr, "kvant cuda: %s failed at %s:%d: %s\n", what, file, line, cudaGetErrorString(err));
  std::abort();
}

#define KVANT_CUDA_CHECK(expr)                                                  \
  do {                                                                          \
    const cudaError_t kvant_err_ = (expr);                                      \
    if (kvant_err_ != cudaSuccess) ::kvant::cuda::fatal(#expr, kvant_err_, __FILE__, __LINE__); \
  } while (0)
#define KVANT_CUDA_LAUNCHED() KVANT_CUDA_CHECK(cudaGetLastError())

// Programmatic dependent launch (Hopper). Every kernel of the backend starts with pdl_prologue(): wait
// until the previous kernel of the stream has completed and its writes are visible. Launched through
// launch_kernel, a kernel may be launched as soon as every block of its predecessor has exited (the
// implicit trigger), before the predecessor's completion is signalled, which hides part of the launch gap
// of a decode step's ~100 small kernels; the order of memory effects is still the stream's. (Triggering
// at the start of each kernel instead let waiting blocks take SM resources from running ones: 8B decode
// −3 %, 1B prefill −11 % on an H200.) Without the launch attribute the wait is a no-op.
__device__ __forceinline__ void pdl_prologue() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Lets the next kernel of the stream launch before this one ends (once every block of this grid has
// called it): its blocks run up to their pdl_prologue — a matvec issues its first weight tiles — on
// the SMs this kernel leaves idle. For kernels of at most one block per SM (decode attention): all of
// their blocks are running by then, so the early blocks take nothing from them.
__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// False when the environment variable `name` is "0" (the backend's A/B switches), else true.
bool env_switch_on(const char* name);

// Multiprocessors of the current device (of the first call).
int device_sm_count();

// Whether launch_kernel asks for programmatic dependent launch: the device is compute capability 9.0 or
// newer and KVANT_CUDA_PDL is not "0". Decided once per process.
bool pdl_enabled();
// Whether the current device has compute capability 9.0 or later (programmatic dependent launch, bulk copies).
bool device_is_sm90_or_later();

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialisation when enabled;
// the kernel must begin with pdl_prologue().
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   Args&&... args) {
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = pdl_enabled() ? 1 : 0;
  KVANT_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...));
}

// Owning device allocation (cudaMalloc); movable, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes > 0) KVANT_CUDA_CHECK(cudaMalloc(&ptr_, bytes));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr; o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) { reset(); ptr_ = o.ptr_; bytes_ = o.bytes_; o.ptr_ = nullptr; o.bytes_ = 0; }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { reset(); }
  void reset() {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }
  // Takes ownership of p (bytes long, from cudaMalloc).
  static DeviceBuffer adopt(void* p, size_t bytes) {
    DeviceBuffer b;
    b.ptr_ = p;
    b.bytes_ = bytes;
    return b;
  }
  void* get() const { return ptr_; }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ uint16_t float_to_half_bits(float f) { return __half_as_ushort(__float2half_rn(f)); }
// Stores f as fp16 at a 2-byte-aligned address (block scales: q8_0/q4_0/turbo blocks are assembled in
// shared scratch at even offsets). One 16-bit store: the scale written as two byte stores from one lane
// next to other lanes' byte stores into the same word lost its low byte (read back 00) in the fused
// attention kernel on an H200, as direct global byte stores of turbo scales did earlier.
__device__ __forceinline__ void store_half(uint8_t* p, float f) {
  *reinterpret_cast<uint16_t*>(p) = float_to_half_bits(f);
}
__device__ __forceinline__ float bf16_bits_to_float(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }
// Unaligned little-endian 16-bit load (blocks of 18/34/210 bytes leave fields 2-byte aligned at best).
__device__ __forceinline__ uint16_t load_u16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }
// N little-endian words from byte offset o (o even) of shared s (s 4-byte aligned; up to 4 bytes past the
// last word are read): N + 1 aligned loads and N funnel shifts.
template <int N>
__device__ __forceinline__ void words_a2(const uint8_t* s, int o, uint32_t (&w)[N]) {
  const uint32_t* base = reinterpret_cast<const uint32_t*>(s + (o & ~3));
  const int sh = (o & 2) * 8;
  uint32_t a[N + 1];
#pragma unroll
  for (int i = 0; i <= N; ++i) a[i] = base[i];
#pragma unroll
  for (int i = 0; i < N; ++i) w[i] = __funnelshift_r(a[i], a[i + 1], sh);
}

// N little-endian words from byte offset o of shared s, o a multiple of 4·N (N = 1, 2 or 4): one load.
template <int N>
__device__ __forceinline__ void words_aligned(const uint8_t* s, int o, uint32_t (&w)[N]) {
  static_assert(N == 1 || N == 2 || N == 4);
  if constexpr (N == 1) {
    w[0] = *reinterpret_cast<const uint32_t*>(s + o);
  } else if constexpr (N == 2) {
    const uint2 v = *reinterpret_cast<const uint2*>(s + o);
    w[0] = v.x, w[1] = v.y;
  } else {
    const uint4 v = *reinterpret_cast<const uint4*>(s + o);
    w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
  }
}

// 16-byte load that bypasses L1 (weights and benchmark buffers are read once; L1 keeps what is reused).
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// 16-byte global → shared copy (cp.async.cg, L1 bypassed) under an L2 cache policy. Decode reads streamed
// once per token (weights, the KV cache) take l2_evict_first_policy(), so that their lines leave the L2
// before the activations and partials that the next kernels read; l2_evict_normal_policy() is the default
// placement (as with no hint).
__device__ __forceinline__ uint64_t l2_evict_first_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
__device__ __forceinline__ uint64_t l2_evict_normal_policy() {
  uint64_t policy;
  asm volatile("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(policy));
  return policy;
}
__device__ __forceinline__ void copy16_async_hint(uint32_t smem_addr, const void* gmem, uint64_t policy) {
  asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;\n" ::"r"(smem_addr), "l"(gmem),
               "l"(policy)
               : "memory");
}
// The same copies issued only where `on` (a predicated instruction, no branch); policy 0: no L2 hint.
__device__ __forceinline__ void copy16_async_if(bool on, uint32_t smem_addr, const void* gmem, uint64_t policy) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %0, 0;\n"
      " @p cp.async.cg.shared.global.L2::cache_hint [%1], [%2], 16, %3;\n}\n" ::"r"(int(on)),
      "r"(smem_addr), "l"(gmem), "l"(policy)
      : "memory");
}
__device__ __forceinline__ void copy16_async_if(bool on, uint32_t smem_addr, const void* gmem) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %0, 0;\n @p cp.async.cg.shared.global [%1], [%2], 16;\n}\n" ::"r"(
          int(on)),
      "r"(smem_addr), "l"(gmem)
      : "memory");
}

// mbarriers in shared memory and bulk (TMA) global → shared copies that complete on them: a barrier of
// one arrival is armed with the bytes its copies will deliver (arrive_expect_tx), and its phase flips when
// they have all landed; waiters poll the phase's parity. sm_90 instructions: launches use them only on
// sm_90 devices (AttentionArgs::mma); compiled for an older target they trap.
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
#define KVANT_SM90_ASM(...) asm volatile(__VA_ARGS__)
#else
#define KVANT_SM90_ASM(...) __trap()
#endif
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  KVANT_SM90_ASM("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
// Orders this thread's earlier generic-proxy accesses of shared memory (barrier initialisation, reads of a
// buffer about to be refilled) before its later async-proxy (bulk copy) accesses.
__device__ __forceinline__ void fence_proxy_async_shared() {
  KVANT_SM90_ASM("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  KVANT_SM90_ASM("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbarrier_wait_parity(uint32_t bar, uint32_t parity) {
  KVANT_SM90_ASM(
      "{\n .reg .pred done;\n"
      "mbar_wait_%=:\n"
      " mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      " @!done bra mbar_wait_%=;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// bytes (a multiple of 16) from 16-byte aligned global memory to 16-byte aligned shared memory, completing
// on the barrier bar, under an L2 cache policy.
__device__ __forceinline__ void bulk_copy_async(uint32_t dst, const void* gmem, uint32_t bytes, uint32_t bar,
                                                uint64_t policy) {
  KVANT_SM90_ASM(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;\n" ::"r"(
          dst),
      "l"(gmem), "r"(bytes), "r"(bar), "l"(policy)
      : "memory");
}
#undef KVANT_SM90_ASM

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
// The fused RMSNorm's scales: out[r] = 1 / sqrt(mean(x[r]²) + eps) for rows r < nr (nr <= NR) of n_in
// floats, squares summed in double as the CPU does. Every thread of the kWarps-warp block calls it;
// partial is shared scratch. out is ready after the caller's next __syncthreads(). vec: n_in % 4 == 0 and
// x 16-byte aligned (float4 loads).
template <int kWarps, int NR>
__device__ void block_rows_inv_rms(const float* x, int n_in, int nr, float eps, bool vec, double (*partial)[NR],
                                   float* out) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int r = 0; r < nr; ++r) {
    double s = 0.0;
    const float* xr = x + size_t(r) * n_in;
    if (vec) {
      for (int i = 4 * threadIdx.x; i < n_in; i += 4 * kWarps * 32) {
        const float4 v = *reinterpret_cast<const float4*>(xr + i);
        s += double(v.x) * v.x + double(v.y) * v.y + double(v.z) * v.z + double(v.w) * v.w;
      }
    } else {
      for (int i = threadIdx.x; i < n_in; i += kWarps * 32) s += double(xr[i]) * xr[i];
    }
    s = warp_sum(s);
    if (lane == 0) partial[warp][r] = s;
  }
  __syncthreads();
  if (threadIdx.x < nr) {
    double s = 0.0;
    for (int w = 0; w < kWarps; ++w) s += partial[w][threadIdx.x];
    out[threadIdx.x] = 1.0f / sqrtf(float(s / n_in) + eps);
  }
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

inline int ceil_div(int64_t a, int64_t b) { return int((a + b - 1) / b); }

}  // namespace kvant::cuda
