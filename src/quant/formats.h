// quant/formats.h — the traits objects defined by each per-format file (src/quant/<format>.cpp),
// gathered by the registry in quant.cpp. Activation-only types (Q8_1, Q8_K) have no vec_dot.
#pragma once

#include "quant/quant.h"

namespace kvant::formats {

extern const QuantTraits kF32;   // f32.cpp
extern const QuantTraits kF16;   // f16.cpp
extern const QuantTraits kBF16;  // bf16.cpp
extern const QuantTraits kQ8_0;  // q8_0.cpp
extern const QuantTraits kQ8_1;  // q8_1.cpp (activation type for Q4_1/Q5_1)
extern const QuantTraits kQ4_0;  // q4_0.cpp
extern const QuantTraits kQ4_1;  // q4_1.cpp
extern const QuantTraits kQ5_0;  // q5_0.cpp
extern const QuantTraits kQ5_1;  // q5_1.cpp
extern const QuantTraits kQ8_K;  // q8_k.cpp (activation type for K-quants)
extern const QuantTraits kQ2_K;  // q2_k.cpp
extern const QuantTraits kQ3_K;  // q3_k.cpp
extern const QuantTraits kQ4_K;  // q4_k.cpp
extern const QuantTraits kQ5_K;  // q5_k.cpp
extern const QuantTraits kQ6_K;  // q6_k.cpp

// Activation converters (llama.cpp x86 semantics, see quant.h), defined beside their format.
void quantize_activations_q8_0(const float* src, void* dst, int64_t n);  // q8_0.cpp
void quantize_activations_q8_1(const float* src, void* dst, int64_t n);  // q8_1.cpp
void quantize_activations_q8_k(const float* src, void* dst, int64_t n);  // q8_k.cpp

}  // namespace kvant::formats
