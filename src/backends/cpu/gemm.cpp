// backends/cpu/gemm.cpp — start-up ISA check and dispatch for the prefill GEMM kernels (gemm_avx512.cpp).
#include "backends/cpu/gemm.h"

#include "quant/quant.h"

namespace kvant::gemm {

namespace {
bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
           __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  }();
  return has;
#else
  return false;
#endif
}
}  // namespace

bool available(GgmlType weight_type) {
#if defined(__x86_64__)
  return cpu_has_avx512_vnni() && avx512::has_kernel(weight_type);
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
  quantize_activations(quant_traits(weight_type)->vec_dot_type, x, dst, n_in);
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
