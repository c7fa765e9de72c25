// quant/f32.cpp — F32 "format": plain little-endian floats; dot product in float.
#include <cstring>

#include "quant/formats.h"

namespace kvant {
namespace {

void dequantize_row_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}

void quantize_row_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, size_t(n) * sizeof(float));
}

float vec_dot_f32(int64_t n, const void* weights, const void* activations) {
  const float* w = static_cast<const float*>(weights);
  const float* a = static_cast<const float*>(activations);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * a[i];
  return sum;
}

}  // namespace

const QuantTraits formats::kF32 = {
    GgmlType::F32, 1, 4, GgmlType::F32, dequantize_row_f32, quantize_row_f32, vec_dot_f32,
};

}  // namespace kvant
