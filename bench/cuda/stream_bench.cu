// bench/cuda/stream_bench.cu — how fast can a decode matvec's weight stream go on this GPU, by copy
// mechanism? Streams rows of 2176 bytes (a Q8_0 row of 2048 weights) as matvec_q8 deals them (one block per
// SM, 24 warps, rows round-robin over the warps) with no arithmetic: per-warp cp.async rings (the kernel's
// mechanism, with and without its L2 evict-first hint), per-warp TMA bulk copies, a block-wide TMA pipeline,
// plain loads into registers, and a linear grid-stride sweep, at three sizes (1B down, 8B gate/up-sized, 1B
// output). Target bench_cuda_stream_bench (KVANT_CUDA); run it by hand on a GPU machine.
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); exit(1); } } while (0)
constexpr int TILE = 2176, STAGE = 2192, W = 24;

__device__ __forceinline__ uint32_t sa(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ uint64_t pol_first() { uint64_t p; asm volatile("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(p)); return p; }

__global__ void k_linear(const uint4* d, size_t n, unsigned* sink) {
  uint32_t acc = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    uint4 v; asm("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "l"(d + i));
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);
}

struct Rows { int begin, n; };
__device__ __forceinline__ Rows block_rows(int rows) {
  const int b = blockIdx.x, nb = gridDim.x;
  const int begin = int(int64_t(b) * rows / nb), end = int(int64_t(b + 1) * rows / nb);
  return {begin, end - begin};
}

// A warp's ring of RING slots over its n rows: `issue(s)` starts row s's copy into slot s % RING, `wait(s)`
// returns once it has landed; each landed row is read (one word per 16-byte chunk) before the slot is reused.
template <int RING, class Issue, class Wait>
__device__ __forceinline__ uint32_t stream_ring(int n, const uint8_t* ring, int lane, Issue issue, Wait wait) {
  for (int q = 0; q < RING - 1; ++q) issue(q);
  uint32_t acc = 0;
  for (int s = 0; s < n; ++s) {
    wait(s);
    __syncwarp();
    issue(s + RING - 1);
    const uint8_t* t = ring + (s % RING) * STAGE;
    for (int i = 0; i < 4; ++i) acc ^= *reinterpret_cast<const uint32_t*>(t + 512 * i + 16 * lane);
  }
  return acc;
}

// B/C: per-warp cp.async.cg ring (the matvec's mechanism), RING slots, optional evict-first hint.
template <int RING, bool HINT>
__global__ void __launch_bounds__(W * 32, 1) k_cpasync(const uint8_t* w, int rows, unsigned* sink) {
  extern __shared__ __align__(16) uint8_t sm[];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const Rows br = block_rows(rows);
  const int n = warp < br.n ? (br.n - 1 - warp) / W + 1 : 0;
  uint8_t* ring = sm + warp * RING * STAGE;
  const uint64_t pol = pol_first();
  auto issue = [&](int s) {
    if (s < n) {
      const uint8_t* src = w + size_t(br.begin + warp + s * W) * TILE + 16 * lane;
      const uint32_t dst = sa(ring + (s % RING) * STAGE) + 16 * lane;
#pragma unroll
      for (int i = 0; i < 5; ++i) if (16 * (lane + 32 * i) < TILE) {
        if (HINT) asm volatile("cp.async.cg.shared.global.L2::cache_hint [%0], [%1], 16, %2;" :: "r"(dst + 512 * i), "l"(src + 512 * i), "l"(pol) : "memory");
        else asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(dst + 512 * i), "l"(src + 512 * i) : "memory");
      }
    }
    asm volatile("cp.async.commit_group;" ::: "memory");
  };
  const uint32_t acc = stream_ring<RING>(n, ring, lane, issue, [](int) {
    asm volatile("cp.async.wait_group %0;" :: "n"(RING - 2) : "memory");
  });
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);
}

// D: per-warp TMA bulk copy ring: lane 0 copies a whole row with one cp.async.bulk, mbarrier per slot.
template <int RING, bool HINT>
__global__ void __launch_bounds__(W * 32, 1) k_bulk(const uint8_t* w, int rows, unsigned* sink) {
  extern __shared__ __align__(16) uint8_t sm[];
  __shared__ __align__(8) uint64_t bar[W][RING];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const Rows br = block_rows(rows);
  const int n = warp < br.n ? (br.n - 1 - warp) / W + 1 : 0;
  uint8_t* ring = sm + warp * RING * STAGE;
  if (lane == 0) {
    for (int i = 0; i < RING; ++i) asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(sa(&bar[warp][i])) : "memory");
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncwarp();
  const uint64_t pol = pol_first();
  auto issue = [&](int s) {
    if (lane == 0 && s < n) {
      const uint8_t* src = w + size_t(br.begin + warp + s * W) * TILE;
      const uint32_t b = sa(&bar[warp][s % RING]), dst = sa(ring + (s % RING) * STAGE);
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(b), "r"(TILE) : "memory");
      if (HINT) asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;"
                             :: "r"(dst), "l"(src), "r"(TILE), "r"(b), "l"(pol) : "memory");
      else asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                        :: "r"(dst), "l"(src), "r"(TILE), "r"(b) : "memory");
    }
  };
  const uint32_t acc = stream_ring<RING>(n, ring, lane, issue, [&](int s) {
    const uint32_t b = sa(&bar[warp][s % RING]), parity = (s / RING) & 1;
    asm volatile("{ .reg .pred p; W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1; @!p bra W; }" :: "r"(b), "r"(parity) : "memory");
  });
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);
}

// E: block-level TMA pipeline: a stage = CH consecutive rows of the block's range, STAGES deep; thread 0
// produces, every warp reads its share of each stage and arrives on the stage's empty barrier.
template <int CH, int STAGES>
__global__ void __launch_bounds__(W * 32, 1) k_block(const uint8_t* w, int rows, unsigned* sink) {
  extern __shared__ __align__(16) uint8_t sm[];
  __shared__ __align__(8) uint64_t full[STAGES], empty[STAGES];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const Rows br = block_rows(rows);
  const int n = (br.n + CH - 1) / CH;
  if (threadIdx.x == 0) {
    for (int i = 0; i < STAGES; ++i) {
      asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" :: "r"(sa(&full[i])) : "memory");
      asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(sa(&empty[i])), "r"(W) : "memory");
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
  }
  __syncthreads();
  const uint64_t pol = pol_first();
  auto issue = [&](int s) {
    const int r0 = br.begin + s * CH, nr = min(CH, br.begin + br.n - r0);
    const uint32_t b = sa(&full[s % STAGES]), dst = sa(sm + (s % STAGES) * CH * TILE);
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(b), "r"(nr * TILE) : "memory");
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint [%0], [%1], %2, [%3], %4;"
                 :: "r"(dst), "l"(w + size_t(r0) * TILE), "r"(nr * TILE), "r"(b), "l"(pol) : "memory");
  };
  if (threadIdx.x == 0) for (int s = 0; s < min(n, STAGES); ++s) issue(s);
  uint32_t acc = 0;
  for (int s = 0; s < n; ++s) {
    const uint32_t parity = (s / STAGES) & 1;
    asm volatile("{ .reg .pred p; W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1; @!p bra W; }" :: "r"(sa(&full[s % STAGES])), "r"(parity) : "memory");
    const int nr = min(CH, br.begin + br.n - (br.begin + s * CH));
    const uint8_t* t = sm + (s % STAGES) * CH * TILE;
    for (int r = warp; r < nr; r += W) for (int i = 0; i < 4; ++i) acc ^= *reinterpret_cast<const uint32_t*>(t + r * TILE + 512 * i + 16 * lane);
    __syncwarp();
    if (lane == 0) asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(sa(&empty[s % STAGES])) : "memory");
    if (threadIdx.x == 0 && s + STAGES < n) {
      asm volatile("{ .reg .pred p; W: mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1; @!p bra W; }" :: "r"(sa(&empty[s % STAGES])), "r"(parity) : "memory");
      asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
      issue(s + STAGES);
    }
  }
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);
}

// F: per-warp plain loads into registers, two rows ahead (no shared memory).
__global__ void __launch_bounds__(W * 32, 1) k_regs(const uint8_t* w, int rows, unsigned* sink) {
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const Rows br = block_rows(rows);
  const int n = warp < br.n ? (br.n - 1 - warp) / W + 1 : 0;
  uint4 buf[3][5];
  auto load = [&](int s, uint4 (&b)[5]) {
    if (s < n) {
      const uint8_t* src = w + size_t(br.begin + warp + s * W) * TILE + 16 * lane;
#pragma unroll
      for (int i = 0; i < 5; ++i) if (16 * (lane + 32 * i) < TILE)
        asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];" : "=r"(b[i].x), "=r"(b[i].y), "=r"(b[i].z), "=r"(b[i].w) : "l"(src + 512 * i));
    }
  };
  load(0, buf[0]); load(1, buf[1]);
  uint32_t acc = 0;
  for (int s = 0; s < n; s += 3) {
    load(s + 2, buf[2]);
#pragma unroll
    for (int i = 0; i < 4; ++i) acc ^= buf[0][i].x ^ buf[0][i].w;
    if (s + 1 >= n) break;
    load(s + 3, buf[0]);
#pragma unroll
    for (int i = 0; i < 4; ++i) acc ^= buf[1][i].x ^ buf[1][i].w;
    if (s + 2 >= n) break;
    load(s + 4, buf[1]);
#pragma unroll
    for (int i = 0; i < 4; ++i) acc ^= buf[2][i].x ^ buf[2][i].w;
  }
  if (acc == 0x9E3779B9u) atomicAdd(sink, 1u);
}

int main() {
  int sms = 0; CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, 0));
  printf("%s, %d SMs, L2 %d MB\n", prop.name, sms, prop.l2CacheSize >> 20);
  const size_t total = size_t(1200) << 20;
  uint8_t* buf = nullptr; unsigned* sink = nullptr;
  CK(cudaMalloc(&buf, total)); CK(cudaMalloc(&sink, 4));
  CK(cudaMemset(buf, 0x5A, total));
  auto time = [&](const char* name, int rows, auto launch) {
    const size_t bytes = size_t(rows) * TILE;
    const int copies = int(total / bytes);
    for (int i = 0; i < 3; ++i) launch(buf + size_t(i % copies) * bytes);
    CK(cudaGetLastError()); CK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1; CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1));
    const int reps = 40;
    CK(cudaEventRecord(e0));
    for (int i = 0; i < reps; ++i) launch(buf + size_t(i % copies) * bytes);
    CK(cudaEventRecord(e1)); CK(cudaEventSynchronize(e1)); CK(cudaGetLastError());
    float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
    const double us = 1e3 * ms / reps;
    printf("%-22s rows %6d %7.1f MB %8.2f us %7.0f GB/s\n", name, rows, bytes / 1e6, us, bytes / us / 1e3);
    CK(cudaEventDestroy(e0));
    CK(cudaEventDestroy(e1));
  };
  for (int rows : {8192, 28672, 128256}) {
    time("linear ldg", rows, [&](uint8_t* p) { k_linear<<<sms * 8, 512>>>((const uint4*)p, size_t(rows) * TILE / 16, sink); });
    auto with_smem = [&](auto kern, int ring) { CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, W * ring * STAGE)); return kern; };
    auto k3h = with_smem(k_cpasync<3, true>, 3); time("cp.async ring3 hint", rows, [&](uint8_t* p) { k3h<<<sms, W * 32, W * 3 * STAGE>>>(p, rows, sink); });
    auto k3 = with_smem(k_cpasync<3, false>, 3); time("cp.async ring3", rows, [&](uint8_t* p) { k3<<<sms, W * 32, W * 3 * STAGE>>>(p, rows, sink); });
    auto k4 = with_smem(k_cpasync<4, true>, 4); time("cp.async ring4 hint", rows, [&](uint8_t* p) { k4<<<sms, W * 32, W * 4 * STAGE>>>(p, rows, sink); });
    auto b3 = with_smem(k_bulk<3, true>, 3); time("bulk ring3 hint", rows, [&](uint8_t* p) { b3<<<sms, W * 32, W * 3 * STAGE>>>(p, rows, sink); });
    auto b3n = with_smem(k_bulk<3, false>, 3); time("bulk ring3", rows, [&](uint8_t* p) { b3n<<<sms, W * 32, W * 3 * STAGE>>>(p, rows, sink); });
    auto b4 = with_smem(k_bulk<4, true>, 4); time("bulk ring4 hint", rows, [&](uint8_t* p) { b4<<<sms, W * 32, W * 4 * STAGE>>>(p, rows, sink); });
    auto kb = k_block<8, 10>; CK(cudaFuncSetAttribute(kb, cudaFuncAttributeMaxDynamicSharedMemorySize, 10 * 8 * TILE));
    time("block tma 8x10", rows, [&](uint8_t* p) { kb<<<sms, W * 32, 10 * 8 * TILE>>>(p, rows, sink); });
    auto kc = k_block<24, 4>; CK(cudaFuncSetAttribute(kc, cudaFuncAttributeMaxDynamicSharedMemorySize, 4 * 24 * TILE));
    time("block tma 24x4", rows, [&](uint8_t* p) { kc<<<sms, W * 32, 4 * 24 * TILE>>>(p, rows, sink); });
    time("regs 2 ahead", rows, [&](uint8_t* p) { k_regs<<<sms, W * 32>>>(p, rows, sink); });
  }
  CK(cudaFree(buf));
  CK(cudaFree(sink));
  return 0;
}
