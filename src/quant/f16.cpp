// quant/f16.cpp — F16 format: IEEE half per element (round to nearest even); F16·F16 dot in float.
#include "core/fp16.h"
#include "quant/formats.h"

namespace kvant {
namespace {

void dequantize_row_f16(const void* src, float* dst, int64_t n) {
  const uint16_t* h = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
}

void quantize_row_f16(const float* src, void* dst, int64_t n) {
  uint16_t* h = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
}

float vec_dot_f16(int64_t n, const void* weights, const void* activations) {
  const uint16_t* w = static_cast<const uint16_t*>(weights);
  const uint16_t* a = static_cast<const uint16_t*>(activations);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(w[i]) * fp16_to_fp32(a[i]);
  return sum;
}

}  // namespace

const QuantTraits formats::kF16 = {
    GgmlType::F16, 1, 2, GgmlType::F16, dequantize_row_f16, quantize_row_f16, vec_dot_f16,
};

}  // namespace kvant
