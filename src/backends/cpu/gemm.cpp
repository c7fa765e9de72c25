// backends/cpu/gemm.cpp — start-up ISA check and dispatch for the prefill GEMM kernels (gemm_avx512.cpp).
#include "backends/cpu/gemm.h"

#include "backends/cpu/act_quant.h"
#include "backends/cpu/dot_kernels.h"
#include "quant/quant.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace kvant::gemm {

namespace {
#if defined(__x86_64__) && defined(KVANT_HAVE_AMX)
// AMX-TILE and AMX-INT8 in CPUID leaf 7, then Linux's permission for the tile data state, which a
// process must request before its first tile instruction (arch_prctl ARCH_REQ_XCOMP_PERM).
bool cpu_has_amx_int8() {
  static const bool has = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return false;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const bool tile = (edx >> 24) & 1u, int8 = (edx >> 25) & 1u;
    if (!tile || !int8 || !cpu_has_avx512_vnni()) return false;
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
  }();
  return has;
}
#endif
}  // namespace

namespace amx {
bool available(GgmlType weight_type) {
#if defined(__x86_64__) && defined(KVANT_HAVE_AMX)
  return isa_limit() >= IsaLimit::Amx && cpu_has_amx_int8() && has_kernel(weight_type);
#else
  (void)weight_type;
  return false;
#endif
}
}  // namespace amx

bool available(GgmlType weight_type) {
#if defined(__x86_64__)
  return isa_limit() >= IsaLimit::Avx512 && cpu_has_avx512_vnni() && avx512::has_kernel(weight_type);
#else
  (void)weight_type;
  return false;
#endif
}

size_t packed_row_bytes(GgmlType weight_type, int64_t n_in) {
#if defined(__x86_64__)
  return avx512::packed_row_bytes(weight_type, n_in);
#else
  (void)weight_type; (void)n_in;
  return 0;
#endif
}

void pack_row(GgmlType weight_type, const float* x, int64_t n_in, uint8_t* dst) {
  const GgmlType act_type = quant_traits(weight_type)->vec_dot_type;
  static const ActQuantFn simd_q8_0 = simd_quantize_activations(GgmlType::Q8_0);
  static const ActQuantFn simd_q8_k = simd_quantize_activations(GgmlType::Q8_K);
  const ActQuantFn simd = act_type == GgmlType::Q8_0 ? simd_q8_0 : act_type == GgmlType::Q8_K ? simd_q8_k : nullptr;
  if (simd) {
    simd(x, dst, n_in);
  } else {
    quantize_activations(act_type, x, dst, n_in);
  }
#if defined(__x86_64__)
  avx512::pack_extras(weight_type, n_in, dst);
#endif
}

void compute_tile(GgmlType weight_type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, const uint8_t* act,
                  size_t act_row_bytes, int r0, int r1, int64_t j0, int64_t j1, float* y, int64_t ldy) {
#if defined(__x86_64__)
  avx512::compute_tile(weight_type, w, w_row_bytes, n_in, act, act_row_bytes, r0, r1, j0, j1, y, ldy);
#else
  (void)weight_type; (void)w; (void)w_row_bytes; (void)n_in; (void)act; (void)act_row_bytes;
  (void)r0; (void)r1; (void)j0; (void)j1; (void)y; (void)ldy;
#endif
}

}  // namespace kvant::gemm
