// backends/cuda/attention.cuh — the split-sequence (flash-decoding) attention kernel over the encoded
// KV cache, templated on the K and V codecs and the lane layout; one instantiation set per K type lives
// in attention_k_*.cu. A block (4 warps; 16 in the wide blocks of a long-context tensor-core decode)
// handles one (query row, KV head, group chunk, split); each warp walks its own 32-key steps with its own
// online softmax (no block barriers in the key loop):
//  - score: LPK lanes per key, each holding 8 query elements per head in registers, decode 8 cached
//    elements once for the whole group; the LPK partial dots meet in one reduce-scatter tree so that
//    every lane ends up owning the score of one key of the step (turbo: the per-vector scale is applied
//    once);
//  - Σ p·v: the same LPK lanes per key decode 8 elements of V and add weight·value (turbo: weight =
//    p·scale times the centroid), the weights published by their owners in shared memory.
// Turbo K/V of the compressed segment are staged per warp in shared memory with cp.async (2–3 steps in
// flight); other types and the f16 window are read directly (coalesced 16-byte chunks). turbo_kv_4b K
// and V at head_dim 64/128 run their compressed segment on tensor cores instead (attend_warp_mma), staged
// by bulk copies (TMA) that complete on an mbarrier per buffer. The warps are merged in shared memory;
// a block that covers the whole context (one split) writes the normalised output itself, rotating V
// back, otherwise partials (m, l, acc) go to the combine kernel in attention.cu.
#pragma once

#include <cuda_pipeline.h>

#include "backends/cuda/kv_device.cuh"

namespace kvant::cuda {

constexpr int kAttnThreads = 128, kAttnWarps = kAttnThreads / 32, kAttnStep = 32, kAttnMinChunk = 64;
constexpr int kAttnMaxStages = 8;  // staging buffers per warp at most (AttentionArgs::stages)
constexpr int kAttnSmemPerSm = 228 * 1024;  // sm_90's shared memory per SM

// Query heads per block: 8 only for groups of more than 4 with head_dim ≤ 128 (register budget).
__host__ __device__ inline int attention_group_chunk(int d, int group) { return group <= 4 || d > 128 ? 4 : 8; }
// Query heads per block of a launch: attention_group_chunk, or one when the launch is a decode step whose
// heads each see all their keys in one block of an f16 cache or window (short contexts, window-only
// caches; AttentionArgs::per_head_blocks): four to eight times the blocks, each warp with a quarter or
// less of the dependent per-key work of a whole GQA group.
inline int attention_block_heads(const AttentionArgs& a) {
  const int d = a.kv.head_dim;
  if (a.per_head_blocks && a.n_rows == 1 && a.splits_main + a.splits_window == 1 && a.kv.type_k == KvType::F16 &&
      a.kv.type_v == KvType::F16 && d <= 256)
    return 1;
  return attention_group_chunk(d, a.n_head / a.kv.n_head_kv);
}

// Whether a launch may run wide blocks (AttentionArgs::warps = kAttnWideWarps): a tensor-core launch of
// 4-head blocks (the register budget of 128 per thread at 16 warps per SM is the 4-block one's).
inline bool attention_wide_ok(const AttentionArgs& a) {
  return a.mma && attention_uses_mma(a.kv.type_k, a.kv.type_v, a.kv.head_dim) &&
         attention_block_heads(a) == 4;
}
// Replicas of the pair table (AttentionArgs::lut_copies): entry b of replica r at word copies·b + r.
// Lane l reads replica l % copies: 32 replicas keep a warp's lookups free of bank conflicts, 16 let lanes
// l and l + 16 meet in a bank (each lookup then takes two shared-memory wavefronts) for half the bytes.
__host__ __device__ constexpr int mma_lut_bytes(int copies) { return 256 * copies * 4; }

// Shared memory of one block of `warps` warps: [centroids K, V: 64 floats][stats: 128][pair table and
// staging mbarriers: tensor-core launches][q or output: gm·d][value weights: warps·32·gm][region], the
// region holding either the per-warp staging buffers (key loop) or the warps' accumulators (merge). The
// codebooks come first so that a lookup is one shared load at a constant offset from the code's shifted
// bits.
struct AttnSmem {
  int fixed = 0, kcap = 0, vcap = 0, stages = 0, region = 0, lut = 0, bars = 0;
  int step = kAttnStep;        // keys per staging step (AttentionArgs::step_keys on the tensor-core path)
  int kcodes = 0, vcodes = 0;  // where a K, V buffer's scales start (attention_stage_code_cap)
  __host__ __device__ int bytes() const { return fixed + region; }
};
// A staging buffer of `keys` turbo vectors of vec_bytes (TurboHalf): the code rows + 15 bytes of 16-byte
// alignment slack in front + 8 bytes read past the end by the aligned-word code loads, rounded up to 16
// bytes (attention_stage_code_cap); then the scales (2 bytes a key + 15 of slack, rounded up).
__host__ __device__ inline int attention_stage_code_cap(size_t vec_bytes, int keys) {
  return (keys * (int(vec_bytes) - 2) + 15 + 8 + 15) / 16 * 16;
}
__host__ __device__ inline int attention_stage_cap(size_t vec_bytes, int keys) {
  return attention_stage_code_cap(vec_bytes, keys) + (2 * keys + 15 + 15) / 16 * 16;
}
// Turbo K and V of the compressed segment are always staged: `stages` buffers per warp when given
// (AttentionArgs::stages; wide blocks: at most what fits), else 3 when that stays under 48 KiB (wide
// blocks: under the SM's shared memory), else 2 (above 48 KiB the launch raises the kernel's limit).
// mma: AttentionArgs::mma (the pair table only where the tensor-core path runs); step_keys: its
// AttentionArgs::step_keys (the CUDA-core path stages kAttnStep keys a step).
__host__ __device__ inline AttnSmem attention_smem(KvType tk, size_t k_bytes, KvType tv, size_t v_bytes, int d, int gm,
                                                   int stages = 0, bool mma = false, int lut_copies = 16,
                                                   int warps = kAttnWarps, int step_keys = kAttnStep) {
  AttnSmem p;
  p.lut = mma && attention_uses_mma(tk, tv, d) ? mma_lut_bytes(lut_copies) : 0;
  p.bars = p.lut > 0 ? warps * kAttnMaxStages * 8 : 0;
  p.fixed = 4 * (64 + 128 + gm * d + warps * kAttnStep * gm) + p.lut + p.bars;
  const int merge = 4 * warps * gm * d;
  p.step = p.lut > 0 ? step_keys : kAttnStep;
  p.kcodes = kv_is_turbo(tk) ? attention_stage_code_cap(k_bytes, p.step) : 0;
  p.vcodes = kv_is_turbo(tv) ? attention_stage_code_cap(v_bytes, p.step) : 0;
  p.kcap = kv_is_turbo(tk) ? attention_stage_cap(k_bytes, p.step) : 0;
  p.vcap = kv_is_turbo(tv) ? attention_stage_cap(v_bytes, p.step) : 0;
  // Wide blocks: the SM's shared memory less the KiB the system keeps per block.
  const int budget = warps > kAttnWarps ? kAttnSmemPerSm - 1024 : 48 * 1024;
  if (p.kcap + p.vcap > 0) {
    p.stages = stages >= 2 ? stages : p.fixed + warps * 3 * (p.kcap + p.vcap) <= budget ? 3 : 2;
    // A wide block's requested stages, as many as fit (at least 2).
    while (warps > kAttnWarps && p.stages > 2 && p.fixed + warps * p.stages * (p.kcap + p.vcap) > budget) --p.stages;
  }
  const int staging = warps * p.stages * (p.kcap + p.vcap);
  const int token = 4 * 2 * 3 * d;  // the fused token write's scratch: two warps, 3·d floats each
  p.region = staging > merge ? staging : merge;
  p.region = p.region > token ? p.region : token;
  return p;
}

// Vectors of one segment: the compressed cache (ring = 0: vector t at base + t·stride) or the f16 window
// ring (ring = slots: vector t in slot t mod ring, made by ring_segment). at<true> takes the slot with a
// branch-free multiply-high modulo (Lemire's fastmod, exact for 32-bit t), so that the global loads of a
// step's unrolled passes are not separated by branches and stay in flight together.
// A turbo segment is a head of a TurboHalf: base and stride address its code rows, scales its f16 scales.
struct AttnSeg {
  const uint8_t* base;
  size_t stride;
  int ring;
  uint64_t ring_magic = 0;  // 2^64 / ring + 1 (ring_segment)
  const uint8_t* scales = nullptr;
  template <bool kRing>
  __device__ const uint8_t* at(int t) const {
    if constexpr (kRing) {
      const uint32_t slot = uint32_t(__umul64hi(ring_magic * uint32_t(t), uint64_t(uint32_t(ring))));
      return base + size_t(slot) * stride;
    } else {
      return base + size_t(t) * stride;
    }
  }
};
__device__ inline AttnSeg ring_segment(const uint8_t* base, size_t stride, int ring) {
  return AttnSeg{base, stride, ring, ~uint64_t(0) / uint32_t(ring) + 1};
}
// This block's staging region: per warp `stages` K buffers of kcap bytes, then the V buffers; a buffer
// holds a step's code rows, then from byte kscales (vscales) its scales (attention_stage_cap).
struct AttnStage {
  uint8_t *k, *v;
  int kcap, vcap, stages;
  uint64_t policy;  // L2 policy of the staging copies (evict-first), 0: none
  int kscales = 0, vscales = 0;
  int step = kAttnStep;  // keys a step (AttnSmem::step)
};
template <int GM, int NCH>
struct AttnWarpState {
  float m[GM], l[GM], acc[NCH][GM][8];
};

// 16-byte copies per lane that staging one step's code rows of B-bit turbo vectors of at most d_max
// elements takes at most: the rows' bytes plus up to 15 bytes of alignment in front, dealt over 32 lanes
// (0: B = 0, nothing staged). A step's scales (64 bytes + alignment) take one copy on lanes 0..4.
__host__ __device__ constexpr int stage_lane_chunks(int bits, int d_max) {
  return bits == 0 ? 0 : ((15 + kAttnStep * (d_max * bits / 8) + 15) / 16 + 31) / 32;
}

// Async copy (by one warp) of the bytes of vectors [t0, t0 + n_t) at base into dst, from the 16-byte
// boundary at or below the first byte; the first vector lands at dst + stage_offset(...). policy: an L2
// cache policy (evict-first) or 0. kChunks (stage_lane_chunks) copies per lane, unrolled and predicated:
// no loop, no branches.
template <int kChunks>
__device__ __forceinline__ void stage_warp(uint8_t* dst, const uint8_t* base, size_t stride, int t0, int n_t, int lane,
                                           uint64_t policy) {
  const uint8_t* a0 = base + size_t(t0) * stride;
  const uint8_t* s0 = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(a0) & ~uintptr_t(15));
  const int n16 = int((a0 + size_t(n_t) * stride - s0 + 15) / 16);
  const uint32_t d0 = uint32_t(__cvta_generic_to_shared(dst)) + 16 * lane;
  const uint8_t* const src = s0 + 16 * lane;
  if (policy != 0) {
#pragma unroll
    for (int u = 0; u < kChunks; ++u) copy16_async_if(lane + 32 * u < n16, d0 + 512 * u, src + 512 * u, policy);
  } else {
#pragma unroll
    for (int u = 0; u < kChunks; ++u) copy16_async_if(lane + 32 * u < n16, d0 + 512 * u, src + 512 * u);
  }
}
__device__ __forceinline__ int stage_offset(const uint8_t* base, size_t stride, int t0) {
  return int(reinterpret_cast<uintptr_t>(base + size_t(t0) * stride) & 15);
}

// Byte offset, in a centroid table of floats, of index k of a packed little-endian run of B-bit codes:
// the index shifted left by 2 in one shift and one mask.
template <int B, typename Bits>
__device__ __forceinline__ uint32_t centroid_offset(Bits bits, int k) {
  constexpr uint32_t mask = ((1u << B) - 1u) << 2;
  const int shift = B * k - 2;
  return shift < 0 ? (uint32_t(bits) << 2) & mask : uint32_t(bits >> shift) & mask;
}

// The f16 at the even byte offset off of a staging buffer (a turbo vector's scale), as a float.
__device__ __forceinline__ float staged_half(const uint8_t* buf, int off) {
  return half_bits_to_float(*reinterpret_cast<const uint16_t*>(buf + off));
}

// x[0..8) = the raw centroids of elements 8*j8 .. 8*j8+7 of the turbo code row at byte vec_off of a
// 16-byte aligned staging buffer (any byte alignment of the row: the code bytes are read as aligned
// words and funnel-shifted, all offsets 32-bit; the stage has 8 readable bytes past its last row).
// tab: the codebook, a table of floats in shared memory.
template <int B>
__device__ __forceinline__ void decode_turbo_staged(const uint8_t* buf, int vec_off, int j8, const float* tab,
                                                    float (&x)[8]) {
  const int off = vec_off + j8 * B, mis = off & 3;
  const uint32_t* w = reinterpret_cast<const uint32_t*>(buf + (off - mis));
  const uint32_t lo = __funnelshift_r(w[0], w[1], 8 * mis);
  const uint8_t* t = reinterpret_cast<const uint8_t*>(tab);
  if constexpr (B == 4) {
    // Byte m of `even` / `odd` = 4 × code 2m / 2m+1; one byte extract per element.
    const uint32_t even = (lo << 2) & 0x3C3C3C3Cu, odd = (lo >> 2) & 0x3C3C3C3Cu;
#pragma unroll
    for (int m = 0; m < 4; ++m) {
      x[2 * m] = *reinterpret_cast<const float*>(t + __byte_perm(even, 0, 0x4440 + m));
      x[2 * m + 1] = *reinterpret_cast<const float*>(t + __byte_perm(odd, 0, 0x4440 + m));
    }
  } else if constexpr (B < 4) {
#pragma unroll
    for (int k = 0; k < 8; ++k) x[k] = *reinterpret_cast<const float*>(t + centroid_offset<B>(lo, k));
  } else {
    const uint64_t bits = uint64_t(lo) | (uint64_t(__funnelshift_r(w[1], w[2], 8 * mis)) << 32);
#pragma unroll
    for (int k = 0; k < 8; ++k) x[k] = *reinterpret_cast<const float*>(t + centroid_offset<B>(bits, k));
  }
}

template <KvType T>
__device__ __forceinline__ void load_centroids(const KvTables& t, float* dst) {
  if constexpr (KvBits<T>::value > 0) {
    constexpr int n = 1 << KvBits<T>::value;
    for (int i = threadIdx.x; i < n; i += blockDim.x) dst[i] = t.centroids[KvBits<T>::value - 2][i];
  }
}

// What a warp's staging rings share: its steps of `step` keys of [begin, end) (steps warp, warp + n_warps,
// ...), n_my of them, and per warp S buffers of K (kw, kcap bytes each) and of V (vw), slot the one readied
// last.
struct StepRingBase {
  const AttnSeg &ks, &vs;
  const AttnStage& st;
  int begin, end, step, warp, lane, n_warps, n_my, S;
  int slot = -1;  // buffer of the step arrive() readied last
  uint8_t *kw, *vw;
  __device__ StepRingBase(const AttnSeg& k, const AttnSeg& v, const AttnStage& stage, int b, int e, int step_keys,
                          int stages, bool k_staged, bool v_staged)
      : ks(k), vs(v), st(stage), begin(b), end(e), step(step_keys) {
    lane = int(threadIdx.x) % 32;
    warp = int(threadIdx.x) / 32;
    n_warps = int(blockDim.x) / 32;
    const int n_steps = (end - begin + step - 1) / step;
    n_my = warp < n_steps ? (n_steps - warp + n_warps - 1) / n_warps : 0;
    S = stages;
    kw = k_staged ? st.k + size_t(warp) * S * st.kcap : nullptr;
    vw = v_staged ? st.v + size_t(warp) * S * st.vcap : nullptr;
  }
  __device__ int t0(int j) const { return begin + step * (warp + n_warps * j); }
  __device__ int n_t(int j) const { return min(step, end - t0(j)); }
  // kbuf, vbuf: the current step's 16-byte aligned staging buffers; koff, voff(j): the byte offset of step
  // j's first vector in them.
  __device__ const uint8_t* kbuf() const { return kw + slot * st.kcap; }
  __device__ const uint8_t* vbuf() const { return vw + slot * st.vcap; }
  __device__ int koff(int j) const { return stage_offset(ks.base, ks.stride, t0(j)); }
  __device__ int voff(int j) const { return stage_offset(vs.base, vs.stride, t0(j)); }
  // ksoff, vsoff(j): the byte offset of step j's first scale in kbuf, vbuf.
  __device__ int ksoff(int j) const { return st.kscales + stage_offset(ks.scales, 2, t0(j)); }
  __device__ int vsoff(int j) const { return st.vscales + stage_offset(vs.scales, 2, t0(j)); }
};

// One warp's 32-key steps of [begin, end) (steps warp, warp + 4, ...) and, for the staged halves, its
// ring of `stages` staging buffers filled with cp.async S − 1 steps ahead. arrive(j) is called for
// j = 0, 1, ... in turn; it tracks step j's buffer (j mod S) by counting instead of dividing.
// kKChunks, kVChunks: stage_lane_chunks of the staged K, V (0 where not staged).
template <bool kSK, bool kSV, int kKChunks, int kVChunks>
struct StepRing : StepRingBase {
  static_assert((kSK == (kKChunks > 0)) && (kSV == (kVChunks > 0)));
  static constexpr bool kStaged = kSK || kSV;
  __device__ StepRing(const AttnSeg& k, const AttnSeg& v, const AttnStage& stage, int b, int e)
      : StepRingBase(k, v, stage, b, e, kAttnStep, kStaged ? stage.stages : 1, kSK, kSV) {}
  __device__ void stage(int j, int b) const {
    if constexpr (kSK) {
      uint8_t* const dst = kw + b * st.kcap;
      stage_warp<kKChunks>(dst, ks.base, ks.stride, t0(j), n_t(j), lane, st.policy);
      stage_warp<1>(dst + st.kscales, ks.scales, 2, t0(j), n_t(j), lane, st.policy);
    }
    if constexpr (kSV) {
      uint8_t* const dst = vw + b * st.vcap;
      stage_warp<kVChunks>(dst, vs.base, vs.stride, t0(j), n_t(j), lane, st.policy);
      stage_warp<1>(dst + st.vscales, vs.scales, 2, t0(j), n_t(j), lane, st.policy);
    }
  }
  // Before the first step: the first S − 1 steps in flight.
  __device__ void prime() const {
    if constexpr (kStaged) {
      for (int j = 0; j + 1 < S; ++j) {
        if (j < n_my) stage(j, j);
        __pipeline_commit();
      }
    }
  }
  // At step j: refill the buffer step j − 1 used (the caller ends each step with __syncwarp), then wait
  // for step j's copies.
  __device__ void arrive(int j) {
    slot = slot + 1 == S ? 0 : slot + 1;
    if constexpr (kStaged) {
      if (j + S - 1 < n_my) stage(j + S - 1, slot == 0 ? S - 1 : slot - 1);
      __pipeline_commit();
      __pipeline_wait_prior(size_t(S - 1));
      __syncwarp();
    }
  }
  __device__ void drain() const {
    if constexpr (kStaged) __pipeline_wait_prior(0);
  }
};

// StepRing's interface for the tensor-core path, filled by bulk copies: steps of AttnStage::step keys (32,
// or 64 for wide blocks at d = 64: AttentionArgs::step_keys), per warp `stages` K and V buffers
// as in StepRing, each pair filled by four bulk copies (TMA: K's code rows and scales, V's) that lane 0
// issues and that complete on the buffer's mbarrier (bars: this warp's kAttnMaxStages barriers). They copy
// the bytes StepRing's lanes would: from the 16-byte boundary at or below a step's first row (scale) up to
// the next boundary past its last.
struct BulkStepRing : StepRingBase {
  uint32_t parity = 0;  // bit b: parity of the phase that buffer b's next fill completes
  uint32_t bars;        // shared address of this warp's barriers, 8 bytes each
  uint64_t policy;
  bool primed;          // the first S − 1 steps were issued by an earlier ring of the same steps
  // primed: a ring of the same warp, segment and keys initialised the barriers and called prime() before
  // (AttentionArgs::stage_before_wait); this one takes over its state, which is still the initial one.
  __device__ BulkStepRing(const AttnSeg& k, const AttnSeg& v, const AttnStage& stage, uint64_t* warp_bars, int b, int e,
                          bool already_primed = false)
      : StepRingBase(k, v, stage, b, e, stage.step, stage.stages, true, true), primed(already_primed) {
    bars = uint32_t(__cvta_generic_to_shared(warp_bars));
    policy = st.policy != 0 ? st.policy : l2_evict_normal_policy();
    if (lane == 0 && !primed) {
      for (int i = 0; i < S; ++i) mbarrier_init(bars + 8 * i, 1);
      fence_proxy_async_shared();
    }
    __syncwarp();
  }
  // The 16-byte aligned span of rows [t, t + n) of stride bytes at base: its start and length.
  struct Span {
    const uint8_t* src;
    uint32_t bytes;
  };
  __device__ static Span span(const uint8_t* base, size_t stride, int t, int n) {
    const uint8_t* const first = base + size_t(t) * stride;
    const uint8_t* const src = reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(first) & ~uintptr_t(15));
    return {src, uint32_t(first + size_t(n) * stride - src + 15) & ~15u};
  }
  // Lane 0: arm buffer b's barrier with the four copies' bytes, then issue them. The fence orders the
  // warp's reads of the buffer's previous step (finished at the caller's __syncwarp) before the copies' writes.
  __device__ void stage(int j, int b) const {
    if (lane != 0) return;
    const int t = t0(j), n = n_t(j);
    const Span kc = span(ks.base, ks.stride, t, n), kss = span(ks.scales, 2, t, n);
    const Span vc = span(vs.base, vs.stride, t, n), vss = span(vs.scales, 2, t, n);
    const uint32_t bar = bars + 8 * b;
    const uint32_t kdst = uint32_t(__cvta_generic_to_shared(kw + b * st.kcap));
    const uint32_t vdst = uint32_t(__cvta_generic_to_shared(vw + b * st.vcap));
    fence_proxy_async_shared();
    mbarrier_arrive_expect_tx(bar, kc.bytes + kss.bytes + vc.bytes + vss.bytes);
    bulk_copy_async(kdst, kc.src, kc.bytes, bar, policy);
    bulk_copy_async(kdst + st.kscales, kss.src, kss.bytes, bar, policy);
    bulk_copy_async(vdst, vc.src, vc.bytes, bar, policy);
    bulk_copy_async(vdst + st.vscales, vss.src, vss.bytes, bar, policy);
  }
  __device__ void prime() const {
    if (primed) return;
    for (int j = 0; j + 1 < S && j < n_my; ++j) stage(j, j);
  }
  __device__ void arrive(int j) {
    slot = slot + 1 == S ? 0 : slot + 1;
    if (j + S - 1 < n_my) stage(j + S - 1, slot == 0 ? S - 1 : slot - 1);
    mbarrier_wait_parity(bars + 8 * slot, (parity >> slot) & 1u);
    parity ^= 1u << slot;
  }
  __device__ void drain() const {}  // every fill issued was waited for by its step
};

// Reduce-scatter of the per-pass partial dots over the LPK lanes of a key group: pass J + j of the
// subtree at level H is folded with lane bit H as soon as both halves exist (depth first, so only
// log2(LPK) partials per head are live); lane c ends up holding the full dot of pass c. LPK − 1
// shuffles per head instead of log2(LPK) per head and pass.
template <int LPK, int H, int J, int GM, typename PassDot>
__device__ __forceinline__ void reduce_passes(float (&r)[GM], const PassDot& pass_dot, int c) {
  if constexpr (H == LPK) {
    pass_dot(J, r);
  } else {
    float lo[GM], hi[GM];
    reduce_passes<LPK, 2 * H, J, GM>(lo, pass_dot, c);
    reduce_passes<LPK, 2 * H, J + H, GM>(hi, pass_dot, c);
    const bool upper = (c & H) != 0;
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      const float sent = __shfl_xor_sync(0xffffffffu, upper ? lo[g] : hi[g], H);
      r[g] = (upper ? hi[g] : lo[g]) + sent;
    }
  }
}

// One warp's share of keys [begin, end): steps of 32 keys, step s = warp, warp + 4, ...; lane (kg, c)
// = (lane / LPK, lane % LPK) handles chunks c + LPK·i of key kg + KP·p in pass p and owns key kg + KP·c.
// wsh: this warp's [32][GM] floats of shared memory for the step's value weights.
template <KvType KD, KvType VD, bool kSK, bool kSV, bool kRing, int LPK, int NCH, int GM, bool kVE>
__device__ __forceinline__ void attend_warp(const AttnSeg& ks, const AttnSeg& vs, int begin, int end, int d8,
                                            const AttnStage& st, const float* ck, const float* cv, float* wsh,
                                            const float (&q)[NCH][GM][8], AttnWarpState<GM, NCH>& w) {
  constexpr int KP = 32 / LPK;
  StepRing<kSK, kSV, kSK ? stage_lane_chunks(KvBits<KD>::value, 8 * LPK * NCH) : 0,
           kSV ? stage_lane_chunks(KvBits<VD>::value, 8 * LPK * NCH) : 0>
      ring(ks, vs, st, begin, end);
  const int lane = ring.lane;
  const int kg = lane / LPK, c = lane % LPK;
  const int own = kg + KP * c;  // the key of the step whose score and weight this lane owns
  const int k_stride = int(ks.stride), v_stride = int(vs.stride);
  ring.prime();
  for (int j = 0; j < ring.n_my; ++j) {
    const int t0 = ring.t0(j), n_t = ring.n_t(j);
    ring.arrive(j);
    // Staged vectors are addressed by 32-bit byte offsets from their 16-byte aligned buffer.
    const uint8_t* const kbuf = kSK ? ring.kbuf() : nullptr;
    const uint8_t* const vbuf = kSV ? ring.vbuf() : nullptr;
    const int koff = kSK ? ring.koff(j) : 0, ksoff = kSK ? ring.ksoff(j) : 0;
    const int voff = kSV ? ring.voff(j) : 0, vsoff = kSV ? ring.vsoff(j) : 0;
    auto k_decode = [&](int kk, int j8, float(&x)[8]) {
      if constexpr (kSK) decode_turbo_staged<KvBits<KD>::value>(kbuf, koff + kk * k_stride, j8, ck, x);
      else kv_decode8<KD>(ks.at<kRing>(t0 + kk), j8, x);  // in global memory
    };
    auto v_decode = [&](int kk, int j8, float(&x)[8]) {
      if constexpr (kSV) decode_turbo_staged<KvBits<VD>::value>(vbuf, voff + kk * v_stride, j8, cv, x);
      else kv_decode8<VD>(vs.at<kRing>(t0 + kk), j8, x);
    };
    auto k_scale = [&](int kk) { return kSK ? staged_half(kbuf, ksoff + 2 * kk) : 1.0f; };
    auto v_scale = [&](int kk) { return kSV ? staged_half(vbuf, vsoff + 2 * kk) : 1.0f; };
    const bool own_valid = own < n_t;

    // Passes past the step's last key read key 0 of the step instead (always present): no branch around
    // the loads, so the unrolled passes' global loads are in flight together rather than one round trip
    // each. Their scores are masked by the owner (own_valid), their value weights are 0 (wsh).
    auto pass_key = [&](int p) {
      const int kk = kg + KP * p;
      return kk < n_t ? kk : 0;
    };
    // One query head per block (short contexts, f16 values in place; kVE: AttentionArgs::values_early):
    // the step's value chunks are loaded with its keys, not after the softmax — one L2 round trip less on
    // the chain such a launch is. Up to d = 128 (LPK ≤ 16): they take 4·LPK registers.
    constexpr bool kValuesEarly = kVE && !kSV && VD == KvType::F16 && GM == 1 && LPK <= 16;
    uint4 v_early[kValuesEarly ? LPK : 1][NCH];
    if constexpr (kValuesEarly) {
#pragma unroll
      for (int p = 0; p < LPK; ++p)
#pragma unroll
        for (int i = 0; i < NCH; ++i)
          v_early[p][i] = *(reinterpret_cast<const uint4*>(vs.at<kRing>(t0 + pass_key(p))) + min(c + LPK * i, d8 - 1));
    }
    // ---- scores: s[g] of the key this lane owns (turbo: times the key's scale, applied once) ----
    auto pass_dot = [&](int p, float (&dot)[GM]) {
      const int kk = pass_key(p);
#pragma unroll
      for (int g = 0; g < GM; ++g) dot[g] = 0.0f;
#pragma unroll
      for (int i = 0; i < NCH; ++i) {
        float x[8];
        k_decode(kk, min(c + LPK * i, d8 - 1), x);  // chunks past d: q is 0 there
#pragma unroll
        for (int g = 0; g < GM; ++g)
#pragma unroll
          for (int e = 0; e < 8; ++e) dot[g] += q[i][g][e] * x[e];
      }
    };
    float s[GM];
    reduce_passes<LPK, 1, 0, GM>(s, pass_dot, c);
    if constexpr (kv_is_turbo(KD)) {
      const float sc = own_valid ? k_scale(own) : 0.0f;
#pragma unroll
      for (int g = 0; g < GM; ++g) s[g] *= sc;
    }

    // ---- online softmax (m warp-uniform, l per lane until the end) ----
    float pr[GM];
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      const float sg = own_valid ? s[g] : -INFINITY;
      const float m_new = fmaxf(w.m[g], warp_max(sg));  // finite: key 0 of the step is valid
      const float corr = expf(w.m[g] - m_new);
      pr[g] = own_valid ? expf(sg - m_new) : 0.0f;
      w.l[g] = w.l[g] * corr + pr[g];
      w.m[g] = m_new;
#pragma unroll
      for (int i = 0; i < NCH; ++i)
#pragma unroll
        for (int e = 0; e < 8; ++e) w.acc[i][g][e] *= corr;
    }
    // The owner publishes its key's value weights (turbo: times the value's scale) for the lanes that
    // decode that key's value.
    {
      const float vsc = kv_is_turbo(VD) && own_valid ? v_scale(own) : 1.0f;
#pragma unroll
      for (int g = 0; g < GM; ++g) wsh[own * GM + g] = pr[g] * vsc;
    }
    __syncwarp();

    // ---- Σ p·v ---- (staged: one pass at a time, its loads are shared-memory loads; in place: passes
    // unrolled so that their global loads are in flight together)
    auto v_pass = [&](int p) {
      const int kw = kg + KP * p, kk = pass_key(p);  // weight of key kw (0 past the step's end), value of kk
      float wt[GM];
      if constexpr (GM % 4 == 0) {
#pragma unroll
        for (int g = 0; g < GM; g += 4) {
          const float4 w4 = *reinterpret_cast<const float4*>(wsh + kw * GM + g);
          wt[g] = w4.x; wt[g + 1] = w4.y; wt[g + 2] = w4.z; wt[g + 3] = w4.w;
        }
      } else {
#pragma unroll
        for (int g = 0; g < GM; ++g) wt[g] = wsh[kw * GM + g];
      }
#pragma unroll
      for (int i = 0; i < NCH; ++i) {
        float x[8];
        if constexpr (kValuesEarly) f16x8_to_float(v_early[p][i], x);
        else v_decode(kk, min(c + LPK * i, d8 - 1), x);  // chunks past d: accumulated, never stored
#pragma unroll
        for (int g = 0; g < GM; ++g)
#pragma unroll
          for (int e = 0; e < 8; ++e) w.acc[i][g][e] += wt[g] * x[e];
      }
    };
    if constexpr (kSV) {
#pragma unroll 1
      for (int p = 0; p < LPK; ++p) v_pass(p);
    } else {
      constexpr int kUnroll = GM == 1 ? LPK : 2;  // more would spill the 128-register kernels
#pragma unroll kUnroll
      for (int p = 0; p < LPK; ++p) v_pass(p);
    }
    __syncwarp();  // this step's buffers and weights may be rewritten from now on
  }
  ring.drain();
  // Warp totals: l summed over lanes, acc over the KP key groups (lanes kg = 0 then hold it).
#pragma unroll
  for (int g = 0; g < GM; ++g) w.l[g] = warp_sum(w.l[g]);
#pragma unroll
  for (int o = LPK; o < 32; o <<= 1)
#pragma unroll
    for (int i = 0; i < NCH; ++i)
#pragma unroll
      for (int g = 0; g < GM; ++g)
#pragma unroll
        for (int e = 0; e < 8; ++e) w.acc[i][g][e] += __shfl_xor_sync(0xffffffffu, w.acc[i][g][e], o);
}

// ---- tensor-core path for the compressed segment of a turbo_kv_4b K and V cache (head_dim 64, 128) ----
// One warp and one 32-key step: Sᵀ[keys × 8 heads] = K·Qᵀ as 2 × d/16 mma.sync.m16n8k16 (f16 operands,
// f32 accumulation; heads past the group are zero columns), the online softmax on the accumulator
// fragments, then Oᵀ[d × 8] += Vᵀ·(p·scale_v)ᵀ as d/16 × 2 more. A byte of codes (two elements) becomes
// the f16 pair an operand register holds with one shared load from a 256-entry pair table (16 replicas,
// one per lane % 16, so that a warp's random lookups spread over the banks: at most 2 lanes per bank).
// The element order within an mma k-step is free as long as K and Q agree, and Oᵀ's row order is undone
// when it is stored, so every lane reads contiguous code bytes: K rows as runs of d/8 bytes (lane t of a
// row group: bytes (d/8)·t ...), V rows as runs of d/16 bytes (lane group g: bytes (d/16)·g ...).

__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&h);
}
// The pair table as one lane reads it: its replica's byte offset and the entry shift (log2 of 4·copies).
struct MmaLut {
  const uint8_t* base;
  uint32_t lane4, shift, mask;  // mask = 0xFF << shift
  __device__ MmaLut(const uint8_t* lut, int copies, int lane)
      : base(lut), lane4(4 * uint32_t(lane % copies)), shift(copies == 32 ? 7 : 6), mask(0xFFu << shift) {}
  // The f16 pair (low nibble's centroid, high nibble's) of byte j of w: shift, mask-and-or (one LOP3), load.
  __device__ __forceinline__ uint32_t pair(uint32_t w, int j) const {
    const uint32_t off = ((j == 0 ? w << shift : w >> (8 * j - shift)) & mask) | lane4;
    return *reinterpret_cast<const uint32_t*>(base + off);
  }
};
// Fills the pair table: entry b, replica r at word copies·b + r = {centroid[b & 15], centroid[b >> 4]} in
// f16 (copies: 16 or 32). One thread per entry writes its replicas as 16-byte stores.
__device__ inline void fill_code_pairs(const KvTables& t, uint32_t* lut, int copies) {
  const float* c = t.centroids[2];  // 4-bit codebook
  for (int b = threadIdx.x; b < 256; b += blockDim.x) {
    const uint32_t pair = pack_half2(c[b & 15], c[b >> 4]);
    uint4* const dst = reinterpret_cast<uint4*>(lut + copies * b);
    for (int r = 0; r < copies / 4; ++r) dst[r] = make_uint4(pair, pair, pair, pair);
  }
}

template <int D>
struct MmaWarpState {
  float o[D / 16][4];  // Oᵀ fragments: tile i rows (d/8)·g + 2i (+1), heads 2t, 2t + 1
  float m[2], l[2];    // heads 2t, 2t + 1 (l: this lane's part)
};

// 2^x by the hardware's approximation (one MUFU op; −inf → 0).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
constexpr float kLog2e = 1.4426950408889634f, kLn2 = 0.6931471805599453f;
// Row stride, in halves, of a step's f16 weights [head][key] (32 keys + 8 of padding: the four t-lanes of
// a store and the eight g-lanes of a fragment load fall in different banks).
constexpr int kMmaWeightStride = 40;

// One warp's share of keys [begin, end) of the staged turbo_kv_4b segment on tensor cores. q_sh: the
// block's G rotated, scaled query heads [GM][D]; pw: this warp's weights, min(GM, 8) rows of
// kMmaWeightStride halves; lut: the pair table. Scores, m and the softmax run in base 2 (the query is
// scaled by log2 e); w.m is left in base 2.
template <int D, int GM>
__device__ __forceinline__ void attend_warp_mma(BulkStepRing& ring, const MmaLut& lut, uint16_t* pw, const float* q_sh,
                                                int G, MmaWarpState<D>& w) {
  static_assert(GM * kAttnStep >= (GM < 8 ? GM : 8) * kMmaWeightStride / 2, "weights exceed the warp's share");
  constexpr int kSteps = D / 16;  // k-steps of the score mma, row tiles of the value mma
  constexpr int kKWords = D / 32, kVWords = (D / 16 + 3) / 4;
  const int lane = ring.lane, g = lane >> 2, t = lane & 3;
  const int k_stride = int(ring.ks.stride), v_stride = int(ring.vs.stride);
  // Query fragments (B of K·Qᵀ), times log2 e: head g, elements (D/4)·t + 4s .. + 3 for k-step s.
  uint32_t qb[kSteps][2];
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
    const bool on = g < G;  // columns past the group are zero (q_sh holds GM ≤ 8 heads)
    const float* qr = q_sh + (on ? g : 0) * D + (D / 4) * t + 4 * s;
    qb[s][0] = pack_half2(on ? qr[0] * kLog2e : 0.0f, on ? qr[1] * kLog2e : 0.0f);
    qb[s][1] = pack_half2(on ? qr[2] * kLog2e : 0.0f, on ? qr[3] * kLog2e : 0.0f);
  }
  // The weight row this lane's B fragments read: head g, or (heads past GM, whose columns are dropped)
  // a row that exists.
  const uint16_t* const pw_row = pw + (g < GM ? g : g - GM) * kMmaWeightStride;
#pragma unroll
  for (int i = 0; i < kSteps; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) w.o[i][e] = 0.0f;
  w.m[0] = w.m[1] = -INFINITY;
  w.l[0] = w.l[1] = 0.0f;

  ring.prime();
  for (int j = 0; j < ring.n_my; ++j) {
    const int n_step = ring.n_t(j);
    ring.arrive(j);
    const uint8_t* const kbuf = ring.kbuf();
    const uint8_t* const vbuf = ring.vbuf();
    // Code rows of d/2 = 32 or 64 bytes from 16-byte aligned heads (TurboHalf): koff = voff = 0 and every
    // lane's run is an aligned vector load.
    const int koff0 = ring.koff(j), voff0 = ring.voff(j), ksoff0 = ring.ksoff(j), vsoff0 = ring.vsoff(j);
    // A staged step of 64 keys (d = 64 only, attention_step_keys) is attended as two 32-key sub-steps: one
    // set of bulk copies and one barrier wait for both; the loop body stays one copy of the code. At d = 128
    // the loop runs once (its registers are at the 128 limit of four blocks per SM).
    constexpr int kSubSteps = D <= 64 ? 2 : 1;
#pragma unroll 1
    for (int sub = 0; sub < (kSubSteps > 1 ? n_step : 1); sub += kAttnStep) {
      const int n_t = min(kAttnStep, n_step - sub);
      const int koff = koff0 + sub * k_stride, voff = voff0 + sub * v_stride;
      const int ksoff = ksoff0 + 2 * sub, vsoff = vsoff0 + 2 * sub;

      // ---- scores: s[mt][e] = key 16·mt + g (+ 8 for e ≥ 2), head 2t + (e & 1) ----
      float s[2][4];
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        const int k0 = 16 * mt + g, k1 = k0 + 8;
        uint32_t r0[kKWords], r1[kKWords];
        words_aligned(kbuf, koff + k0 * k_stride + (D / 8) * t, r0);
        words_aligned(kbuf, koff + k1 * k_stride + (D / 8) * t, r1);
        float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
        for (int ks_ = 0; ks_ < kSteps; ++ks_) {
          const int word = ks_ / 2, byte = 2 * (ks_ % 2);
          const uint32_t a[4] = {lut.pair(r0[word], byte), lut.pair(r1[word], byte), lut.pair(r0[word], byte + 1),
                                 lut.pair(r1[word], byte + 1)};
          mma_16816(c, a, qb[ks_][0], qb[ks_][1]);
        }
        const bool v0 = k0 < n_t, v1 = k1 < n_t;
        const float sc0 = v0 ? staged_half(kbuf, ksoff + 2 * k0) : 0.0f;
        const float sc1 = v1 ? staged_half(kbuf, ksoff + 2 * k1) : 0.0f;
        s[mt][0] = v0 ? c[0] * sc0 : -INFINITY;
        s[mt][1] = v0 ? c[1] * sc0 : -INFINITY;
        s[mt][2] = v1 ? c[2] * sc1 : -INFINITY;
        s[mt][3] = v1 ? c[3] * sc1 : -INFINITY;
      }

      // ---- online softmax per head (the 8 lanes of a t share their heads) ----
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = fmaxf(fmaxf(s[0][h], s[0][h + 2]), fmaxf(s[1][h], s[1][h + 2]));
#pragma unroll
        for (int o = 4; o < 32; o <<= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        const float m_new = fmaxf(w.m[h], mx);  // finite: key 0 of the step is valid
        const float corr = exp2_approx(w.m[h] - m_new);
        w.m[h] = m_new;
        float sum = 0.0f;
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int e = h; e < 4; e += 2) {
            s[mt][e] = exp2_approx(s[mt][e] - m_new);  // −inf (invalid key) → 0
            sum += s[mt][e];
          }
        w.l[h] = w.l[h] * corr + sum;
#pragma unroll
        for (int i = 0; i < kSteps; ++i) w.o[i][h] *= corr, w.o[i][h + 2] *= corr;
      }
      // Weights p·scale_v as f16 [head][key] for the B fragments of the value mma.
#pragma unroll
      for (int mt = 0; mt < 2; ++mt)
#pragma unroll
        for (int hi = 0; hi < 2; ++hi) {
          const int key = 16 * mt + g + 8 * hi;
          const float sv = key < n_t ? staged_half(vbuf, vsoff + 2 * key) : 0.0f;
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            if (2 * t + h < GM)
              pw[(2 * t + h) * kMmaWeightStride + key] = __half_as_ushort(__float2half_rn(s[mt][2 * hi + h] * sv));
          }
        }
      __syncwarp();

      // ---- Oᵀ += Vᵀ · Pᵀ: k-step kq = keys 16·kq .. + 15; lane keys 16·kq + 2t (+1, +8, +9) ----
#pragma unroll
      for (int kq = 0; kq < 2; ++kq) {
        const int ka = 16 * kq + 2 * t;
        const uint32_t b0 = *reinterpret_cast<const uint32_t*>(pw_row + ka);
        const uint32_t b1 = *reinterpret_cast<const uint32_t*>(pw_row + ka + 8);
        uint32_t wa[kVWords], wb[kVWords], wa8[kVWords], wb8[kVWords];
        const int run = (D / 16) * g;
        words_aligned(vbuf, voff + ka * v_stride + run, wa);
        words_aligned(vbuf, voff + (ka + 1) * v_stride + run, wb);
        words_aligned(vbuf, voff + (ka + 8) * v_stride + run, wa8);
        words_aligned(vbuf, voff + (ka + 9) * v_stride + run, wb8);
#pragma unroll
        for (int i = 0; i < kSteps; ++i) {  // byte i of each key's run: rows (d/8)·g + 2i, + 1 of tile i
          const uint32_t pa = lut.pair(wa[i / 4], i % 4), pb = lut.pair(wb[i / 4], i % 4);
          const uint32_t pa8 = lut.pair(wa8[i / 4], i % 4), pb8 = lut.pair(wb8[i / 4], i % 4);
          const uint32_t a[4] = {__byte_perm(pa, pb, 0x5410), __byte_perm(pa, pb, 0x7632),
                                 __byte_perm(pa8, pb8, 0x5410), __byte_perm(pa8, pb8, 0x7632)};
          mma_16816(w.o[i], a, b0, b1);
        }
      }
      __syncwarp();  // this sub-step's weights (and after the last, the step's buffers) may be rewritten now
    }
  }
  ring.drain();
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], o);
}

// LPK lanes per key, NCH chunks of 8 elements per lane (d ≤ 8·LPK·NCH), GM query heads per block, NW
// warps per block (4, or kAttnWideWarps for wide tensor-core launches). GM = 4, NCH = 1 is held to 128
// registers (16 warps per SM: 4 blocks, or 1 wide block), the others to 255.
__host__ __device__ constexpr int attention_blocks_per_sm(int warps, int gm, int nch) {
  return warps > kAttnWarps ? 1 : gm == 4 && nch == 1 ? 4 : 2;
}
template <int NW, int GM, int NCH>
constexpr int attention_min_blocks() {
  return attention_blocks_per_sm(NW, GM, NCH);
}
// VE: the one-head-per-block instantiations (GM = 1) of AttentionArgs::values_early (attend_warp).
template <KvType KT, KvType VT, int LPK, int NCH, int GM, int NW, bool VE>
__global__ void __launch_bounds__(32 * NW, (attention_min_blocks<NW, GM, NCH>())) attention_kernel(AttentionArgs a) {
  if (a.launch_dependents) pdl_launch_dependents();
  extern __shared__ __align__(16) uint8_t smem[];
  const int d = a.kv.head_dim, d8 = d / 8, n_kv = a.kv.n_head_kv;
  const int g_total = a.n_head / n_kv;
  const int n_gchunks = (g_total + GM - 1) / GM;
  int bx = blockIdx.x;
  const int gchunk = bx % n_gchunks;
  bx /= n_gchunks;
  const int h = bx % n_kv, r = bx / n_kv;
  const int g0 = gchunk * GM, G = min(GM, g_total - g0);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  const AttnSmem plan =
      attention_smem(KT, a.kv.k_bytes, VT, a.kv.v_bytes, d, GM, a.stages, a.mma, a.lut_copies, NW, a.step_keys);
  float* const ck = reinterpret_cast<float*>(smem);    // [32]
  float* const cv = ck + 32;                            // [32]
  float* const m_w = cv + 32;                           // [warps][GM]
  float* const l_w = m_w + NW * GM;                     // [warps][GM]
  float* const wt_w = l_w + NW * GM;                    // [warps][GM] merge weights
  float* const m_tot = wt_w + NW * GM;                  // [GM]
  float* const l_tot = m_tot + GM;                      // [GM]
  uint32_t* const lut = reinterpret_cast<uint32_t*>(ck + 64 + 128);  // [256 · lut_copies] (plan.lut bytes)
  uint64_t* const bars = reinterpret_cast<uint64_t*>(lut + plan.lut / 4);  // [warps][kAttnMaxStages] (plan.bars)
  float* const q_sh = ck + 64 + 128 + (plan.lut + plan.bars) / 4;  // [GM][d]: query, later the rotated-back output
  float* const wsh = q_sh + GM * d;                     // [warps][32][GM]: a step's value weights
  uint8_t* const region = smem + plan.fixed;
  float* const merge = reinterpret_cast<float*>(region);  // [warps][GM][d] after the key loop

  // The codebooks (constant tables, not written by earlier kernels) before waiting for the previous kernel.
  load_centroids<KT>(a.tables, ck);
  load_centroids<VT>(a.tables, cv);
  // The compressed segment on tensor cores (attend_warp_mma): turbo_kv_4b K and V, d = 8·LPK ∈ {64, 128}.
  constexpr bool kMmaKernel = attention_mma_types(KT, VT) && NCH == 1 && (LPK == 8 || LPK == 16) && GM <= 8;
  const bool use_mma = kMmaKernel && plan.lut > 0 && d == 8 * LPK && int(blockIdx.y) < a.splits_main;
  if (use_mma) fill_code_pairs(a.tables, lut, a.lut_copies);
  // The positions come from the upload that precedes a forward's first kernel (stream order), so they can
  // be read before the wait for the previous kernel.
  const int n_keys = a.positions[r] + 1;
  const int n_recent = a.kv.window > 0 ? min(a.kv.window, n_keys) : 0;
  const int n_old = n_keys - n_recent;
  const bool in_window = int(blockIdx.y) >= a.splits_main;
  const int split = in_window ? blockIdx.y - a.splits_main : blockIdx.y;
  const int n_splits = in_window ? a.splits_window : a.splits_main;
  const int seg_begin = in_window ? n_old : 0, seg_end = in_window ? n_keys : n_old;
  const int chunk = max((seg_end - seg_begin + n_splits - 1) / n_splits, kAttnMinChunk);
  const int begin = seg_begin + split * chunk, end = min(seg_end, begin + chunk);
  const int n_parts = a.splits_main + a.splits_window;
  const size_t head0 = size_t(r) * a.n_head + size_t(h) * g_total + g0;
  const float scale = 1.0f / sqrtf(float(d));
  const int pos = n_keys - 1;
  // The compressed segment of head h: host-layout vectors, or a turbo head's code rows and scales.
  auto main_segment = [&](uint8_t* half, size_t bytes, bool turbo) {
    if (!turbo) return AttnSeg{half + size_t(h) * a.kv.n_ctx * bytes, bytes, 0};
    const TurboHalf th(half, n_kv, a.kv.n_ctx, bytes);
    AttnSeg seg{th.code_row(h, 0), th.code_bytes, 0};
    seg.scales = th.scale_at(h, 0);
    return seg;
  };
  const AttnSeg ks_main = main_segment(a.layer.k, a.kv.k_bytes, kv_is_turbo(KT));
  const AttnSeg vs_main = main_segment(a.layer.v, a.kv.v_bytes, kv_is_turbo(VT));
  const AttnStage st_main{region,
                          region + size_t(NW) * plan.stages * plan.kcap,
                          plan.kcap,
                          plan.vcap,
                          plan.stages,
                          a.evict_kv ? l2_evict_first_policy() : 0,
                          plan.kcodes,
                          plan.vcodes,
                          plan.step};
  // The blocks whose keys end at the token (fused decode write) store it before attending.
  const bool stores_token = a.token.on && begin < end && end == n_keys;
  // A decode step's first bulk copies of old keys go out before the wait (AttentionArgs::stage_before_wait):
  // their DRAM latency overlaps the previous kernel's tail and the query's preparation below. A block that
  // stores the token stages after the block barrier, as without.
  const bool staged_early = use_mma && a.stage_before_wait && !stores_token;
  if constexpr (kMmaKernel) {
    if (staged_early) BulkStepRing(ks_main, vs_main, st_main, bars + warp * kAttnMaxStages, begin, end).prime();
  }
  pdl_prologue();  // from here on: queries and cache written by earlier kernels
  // Each warp readies its own query heads g = warp, warp + 4, ...: load, RoPE (fused token write), scale,
  // rotate (compressed K of a rotating codec) — warp-synchronous, one block barrier below. The loads come
  // first, all in flight together: the query heads and, in a block that stores the token (below), its K
  // (warp 0) or V (warp 1) head.
  const bool writes_token = stores_token && warp < 2;
  // Query head g is readied by warp g % NW; with fewer heads than warps, by warps 2, 3, ... (0 and 1
  // store the token).
  const int q_warp = GM < NW ? (warp + NW - 2) % NW : warp;
  float* const token_x = reinterpret_cast<float*>(region) + size_t(warp) * 3 * d;
  constexpr int kPer = LPK * NCH / 4 > 0 ? LPK * NCH / 4 : 1;  // d ≤ 8·LPK·NCH = 32·kPer
  // A decode step's RoPE angles (the table the embed kernel wrote) load with the query, not after it.
  const bool rope_table = a.token.on && a.token.rope.table != nullptr;
  RopeLaneAngles<(kPer + 1) / 2> angles;  // rope_dim / 2 ≤ d / 2 ≤ 16·kPer pairs
  auto rope = [&](float* x) {
    if (rope_table) angles.rotate(x, a.token.rope, lane);
    else rope_shared(x, pos, a.token.rope, lane);
  };
  {
    constexpr int kHeads = (GM + NW - 1) / NW;
    float qv[kHeads][kPer], tv[kPer];
#pragma unroll
    for (int k = 0; k < kHeads; ++k) {
      const int g = q_warp + NW * k;
#pragma unroll
      for (int j = 0; j < kPer; ++j) {
        const int i = lane + 32 * j;
        qv[k][j] = g < G && i < d ? a.q[(head0 + g) * d + i] : 0.0f;
      }
    }
    if (rope_table && (a.token.rope_q || writes_token)) angles.load(a.token.rope, lane);
    if (writes_token) {
      const float* src = (warp == 0 ? a.token.k : a.token.v) + size_t(h) * d;
#pragma unroll
      for (int j = 0; j < kPer; ++j) tv[j] = lane + 32 * j < d ? src[lane + 32 * j] : 0.0f;
    }
#pragma unroll
    for (int k = 0; k < kHeads; ++k) {
      const int g = q_warp + NW * k;
#pragma unroll
      for (int j = 0; j < kPer; ++j)
        if (g < GM && lane + 32 * j < d) q_sh[g * d + lane + 32 * j] = qv[k][j];
    }
    if (writes_token) {
#pragma unroll
      for (int j = 0; j < kPer; ++j)
        if (lane + 32 * j < d) token_x[lane + 32 * j] = tv[j];
    }
    __syncwarp();
  }
  for (int g = q_warp; g < G; g += NW) {
    float* qg = q_sh + g * d;
    if (a.token.on && a.token.rope_q) rope(qg);
    for (int i = lane; i < d; i += 32) qg[i] *= scale;
    __syncwarp();
    if (!in_window && a.kv.rotate_k) rotate_shared(qg, d, a.tables.signs, false, lane, 32, WarpSync{});
  }
  // Fused token write: the blocks whose keys end at the token (one per query-head chunk; they store the
  // same bytes) rope its K head and write K (warp 0) and V (warp 1) to the cache before attending. The
  // scratch is the staging/merge region, unused until after the barrier.
  if (writes_token) {
    const bool is_k = warp == 0;
    float* const x = token_x;
    if (is_k && a.token.rope_k) rope(x);
    store_token_vector(a.kv, a.layer, a.tables, false, a.token.stage, is_k, h, pos, x,
                       reinterpret_cast<int*>(x + d), reinterpret_cast<uint8_t*>(x + 2 * d), lane);
  }
  __syncthreads();  // queries ready, this token's K/V stored (visible to the block)
  // ---- the key loop, then each warp's m, l and accumulators to shared memory for the merge (the
  // staging region becomes the merge buffer after a barrier) ----
  float* const wsh_w = wsh + warp * kAttnStep * GM;
  auto cuda_core_path = [&]() {
    float q[NCH][GM][8];
    const int c = lane % LPK;
#pragma unroll
    for (int i = 0; i < NCH; ++i)
#pragma unroll
      for (int g = 0; g < GM; ++g)
#pragma unroll
        for (int e = 0; e < 8; ++e) q[i][g][e] = c + LPK * i < d8 ? q_sh[g * d + 8 * (c + LPK * i) + e] : 0.0f;
    AttnWarpState<GM, NCH> w;
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      w.m[g] = -INFINITY;
      w.l[g] = 0.0f;
#pragma unroll
      for (int i = 0; i < NCH; ++i)
#pragma unroll
        for (int e = 0; e < 8; ++e) w.acc[i][g][e] = 0.0f;
    }
    if (begin < end) {
      if (in_window) {
        const size_t head_off = size_t(h) * a.kv.ring_slots * 2 * d;
        const AttnSeg ks = ring_segment(a.layer.k_win + head_off, 2 * size_t(d), a.kv.ring_slots);
        const AttnSeg vs = ring_segment(a.layer.v_win + head_off, 2 * size_t(d), a.kv.ring_slots);
        const AttnStage none{nullptr, nullptr, 0, 0, 0, 0};
        attend_warp<KvType::F16, KvType::F16, false, false, true, LPK, NCH, GM, VE>(ks, vs, begin, end, d8, none, ck,
                                                                                     cv, wsh_w, q, w);
      } else {
        attend_warp<KT, VT, kv_is_turbo(KT), kv_is_turbo(VT), false, LPK, NCH, GM, VE>(
            ks_main, vs_main, begin, end, d8, st_main, ck, cv, wsh_w, q, w);
      }
    }
    __syncthreads();
    if (lane < LPK) {
#pragma unroll
      for (int i = 0; i < NCH; ++i) {
        const int j8 = lane + LPK * i;
        if (j8 < d8) {
#pragma unroll
          for (int g = 0; g < GM; ++g)
#pragma unroll
            for (int e = 0; e < 8; ++e) merge[(warp * GM + g) * d + 8 * j8 + e] = w.acc[i][g][e];
        }
      }
    }
    if (lane == 0) {
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        m_w[warp * GM + g] = w.m[g];
        l_w[warp * GM + g] = w.l[g];
      }
    }
  };
  if constexpr (kMmaKernel) {
    if (use_mma) {
      MmaWarpState<8 * LPK> wm;
      BulkStepRing ring(ks_main, vs_main, st_main, bars + warp * kAttnMaxStages, begin, end, staged_early);
      attend_warp_mma<8 * LPK, GM>(ring, MmaLut(reinterpret_cast<const uint8_t*>(lut), a.lut_copies, lane),
                                   reinterpret_cast<uint16_t*>(wsh_w), q_sh, G, wm);
      __syncthreads();
      // Oᵀ fragments back to the element order (see attend_warp_mma).
      const int g8 = lane >> 2, t = lane & 3;
#pragma unroll
      for (int i = 0; i < LPK / 2; ++i) {
        const int row = LPK * g8 + 2 * i;
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          if (2 * t + hh < GM) {
            merge[(warp * GM + 2 * t + hh) * d + row] = wm.o[i][hh];
            merge[(warp * GM + 2 * t + hh) * d + row + 1] = wm.o[i][hh + 2];
          }
        }
      }
      if (g8 == 0) {
#pragma unroll
        for (int hh = 0; hh < 2; ++hh) {
          if (2 * t + hh < GM) {
            m_w[warp * GM + 2 * t + hh] = wm.m[hh] * kLn2;  // base 2 → e
            l_w[warp * GM + 2 * t + hh] = wm.l[hh];
          }
        }
      }
    } else {
      cuda_core_path();
    }
  } else {
    cuda_core_path();
  }
  __syncthreads();
  if (tid < G) {
    float m = -INFINITY;
    for (int k = 0; k < NW; ++k)
      if (l_w[k * GM + tid] > 0.0f) m = fmaxf(m, m_w[k * GM + tid]);
    float l = 0.0f;
    for (int k = 0; k < NW; ++k) {
      const float lk = l_w[k * GM + tid];
      const float wk = lk > 0.0f ? expf(m_w[k * GM + tid] - m) : 0.0f;
      wt_w[k * GM + tid] = wk;
      l += lk * wk;
    }
    m_tot[tid] = m;
    l_tot[tid] = l;
  }
  __syncthreads();
  auto merged = [&](int i) {  // i = g * d + e
    const int g = i / d, e = i % d;
    float x = 0.0f;
#pragma unroll
    for (int k = 0; k < NW; ++k) x += wt_w[k * GM + g] * merge[(k * GM + g) * d + e];
    return x;
  };
  if (n_parts == 1) {  // this block saw every key: final output
    float* out = a.out + head0 * d;
    if (!in_window && a.kv.rotate_v) {
      for (int i = tid; i < G * d; i += 32 * NW) q_sh[i] = merged(i);
      __syncthreads();
      for (int g = warp; g < G; g += NW) rotate_shared(q_sh + g * d, d, a.tables.signs, true, lane, 32, WarpSync{});
      __syncthreads();
      for (int i = tid; i < G * d; i += 32 * NW) out[i] = q_sh[i] / l_tot[i / d];
    } else {
      for (int i = tid; i < G * d; i += 32 * NW) out[i] = merged(i) / l_tot[i / d];
    }
  } else {
    const size_t part_stride = size_t(n_parts) * (d + 2);
    float* part = a.partial + (head0 * n_parts + blockIdx.y) * (d + 2);  // + g * part_stride
    for (int i = tid; i < G * d; i += 32 * NW) part[(i / d) * part_stride + 2 + i % d] = merged(i);
    if (tid < G) {
      part[tid * part_stride] = m_tot[tid];
      part[tid * part_stride + 1] = l_tot[tid];
    }
  }
}

template <KvType KT, KvType VT, int LPK, int NCH, int GM, int NW = kAttnWarps, bool VE = false>
void launch_attention_cfg(const AttentionArgs& a, dim3 grid, size_t smem, cudaStream_t stream) {
  if (smem > 48 * 1024) {  // large head_dim with turbo staging, wide blocks: raise the limit once per size
    static size_t raised = 0;
    if (smem > raised) {
      KVANT_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<KT, VT, LPK, NCH, GM, NW, VE>,
                                            cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
      raised = smem;
    }
  }
  launch_kernel(attention_kernel<KT, VT, LPK, NCH, GM, NW, VE>, grid, 32 * NW, smem, stream, a);
}

// One query head per block (attention_block_heads == 1: f16 K and V).
template <KvType KT, KvType VT, bool VE>
void launch_attention_head(const AttentionArgs& a, dim3 grid, size_t smem, cudaStream_t stream) {
  const int d = a.kv.head_dim;
  if (d > 128) launch_attention_cfg<KT, VT, 32, 1, 1>(a, grid, smem, stream);  // values early up to d = 128
  else if (d > 64) launch_attention_cfg<KT, VT, 16, 1, 1, kAttnWarps, VE>(a, grid, smem, stream);
  else launch_attention_cfg<KT, VT, 8, 1, 1, kAttnWarps, VE>(a, grid, smem, stream);
}

template <KvType KT, KvType VT>
void launch_attention_kv(const AttentionArgs& a, dim3 grid, size_t smem, cudaStream_t stream) {
  const int d = a.kv.head_dim;
  if constexpr (KT == KvType::F16 && VT == KvType::F16) {
    if (attention_block_heads(a) == 1) {
      if (a.values_early) launch_attention_head<KT, VT, true>(a, grid, smem, stream);
      else launch_attention_head<KT, VT, false>(a, grid, smem, stream);
      return;
    }
  }
  const bool eight_heads = attention_group_chunk(d, a.n_head / a.kv.n_head_kv) == 8;
  if constexpr (attention_mma_types(KT, VT)) {
    if (a.warps == kAttnWideWarps && attention_wide_ok(a)) {
      if (d == 128) launch_attention_cfg<KT, VT, 16, 1, 4, kAttnWideWarps>(a, grid, smem, stream);
      else launch_attention_cfg<KT, VT, 8, 1, 4, kAttnWideWarps>(a, grid, smem, stream);
      return;
    }
  }
  if (d > 256) {
    launch_attention_cfg<KT, VT, 32, 2, 4>(a, grid, smem, stream);
  } else if (d > 128) {
    launch_attention_cfg<KT, VT, 32, 1, 4>(a, grid, smem, stream);
  } else if (d > 64) {
    if (eight_heads) launch_attention_cfg<KT, VT, 16, 1, 8>(a, grid, smem, stream);
    else launch_attention_cfg<KT, VT, 16, 1, 4>(a, grid, smem, stream);
  } else {
    if (eight_heads) launch_attention_cfg<KT, VT, 8, 1, 8>(a, grid, smem, stream);
    else launch_attention_cfg<KT, VT, 8, 1, 4>(a, grid, smem, stream);
  }
}

template <KvType KT>
void launch_attention_k(const AttentionArgs& a, dim3 grid, size_t smem, cudaStream_t stream) {
  switch (a.kv.type_v) {
#define KVANT_V_CASE(V)                                   \
  case KvType::V:                                         \
    launch_attention_kv<KT, KvType::V>(a, grid, smem, stream); \
    break;
    KVANT_V_CASE(F32) KVANT_V_CASE(F16) KVANT_V_CASE(Q8_0) KVANT_V_CASE(Q4_0)
    KVANT_V_CASE(TURBO_2B) KVANT_V_CASE(TURBO_3B) KVANT_V_CASE(TURBO_4B) KVANT_V_CASE(TURBO_5B)
#undef KVANT_V_CASE
  }
  KVANT_CUDA_LAUNCHED();
}

}  // namespace kvant::cuda
