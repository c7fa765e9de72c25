// backends/cpu/act_quant.h — the activation conversion of a matmul (float rows to the weight format's
// dot type: Q8_0 or Q8_K) with AVX2 where present, byte-identical to the scalar quantize_activations.
#pragma once

#include <cstdint>

#include "quant/ggml_type.h"

namespace kvant {

using ActQuantFn = void (*)(const float* src, void* dst, int64_t n);

// The SIMD conversion to act_type (Q8_0 or Q8_K, AVX2, when the CPU has it and KVANT_MAX_ISA allows), or
// nullptr: then the scalar quantize_activations (quant/quant.h) is the one to use.
ActQuantFn simd_quantize_activations(GgmlType act_type);

namespace avx2 {
// Defined in act_quant_avx2.cpp; call only when cpu_has_avx2(). nullptr for types without a kernel.
ActQuantFn quantize_activations(GgmlType act_type);
}  // namespace avx2

}  // namespace kvant
