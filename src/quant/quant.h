// quant/quant.h — the weight-format traits table: per type, scalar reference dequantize / quantize /
// dot, and the activation ("vec_dot") type its dot product consumes. One .cpp per format implements it.
#pragma once

#include <cstdint>

#include "quant/ggml_type.h"

namespace kvant {

// Scalar reference kernels for one format. Rows are n elements long, n a multiple of block_elems.
struct QuantTraits {
  GgmlType type;
  uint32_t block_elems;
  uint32_t block_bytes;
  // Type the activations are converted to before vec_dot (llama.cpp's vec_dot_type):
  // F32 -> F32, F16 -> F16, BF16 -> BF16, Q8_0/Q4_0/Q5_0 -> Q8_0, Q4_1/Q5_1 -> Q8_1, K-quants -> Q8_K.
  GgmlType vec_dot_type;
  // Exact dequantisation (bit-identical to ggml's to_float).
  void (*dequantize_row)(const void* src, float* dst, int64_t n);
  // Weight quantiser (used by synth and tests). Need not be byte-identical to llama-quantize.
  void (*quantize_row)(const float* src, void* dst, int64_t n);
  // Dot product of one row of this type with n activations already in vec_dot_type.
  // nullptr for pure activation types (Q8_1, Q8_K) that are never weights.
  float (*vec_dot)(int64_t n, const void* weights, const void* activations);
};

// Traits for a type kvant can compute with, or nullptr (the loader then refuses the tensor by name).
const QuantTraits* quant_traits(GgmlType type);

// Converts n activations to an activation type exactly as llama.cpp's x86 CPU backend does
// (Q8_0: d = f16(amax/127), q = round_half_even(x*127/amax); Q8_1 adds s = f16(d*Σq);
// Q8_K: per 256, iscale = -127/max_signed, q = min(127, rne(iscale*x)), d = 1/iscale;
// F16/BF16 round to nearest even; F32 copies).
void quantize_activations(GgmlType act_type, const float* src, void* dst, int64_t n);

}  // namespace kvant
