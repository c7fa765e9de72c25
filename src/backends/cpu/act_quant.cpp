// backends/cpu/act_quant.cpp — picks the SIMD activation conversion for a dot type (act_quant.h).
#include "backends/cpu/act_quant.h"

#include "backends/cpu/dot_kernels.h"

namespace kvant {

ActQuantFn simd_quantize_activations(GgmlType act_type) {
#if defined(__x86_64__) || defined(__i386__)
  if (isa_limit() >= IsaLimit::Avx2 && cpu_has_avx2()) return avx2::quantize_activations(act_type);
#endif
  (void)act_type;
  return nullptr;
}

}  // namespace kvant
