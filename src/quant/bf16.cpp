// quant/bf16.cpp — BF16 format: upper 16 bits of an f32 (round to nearest even); BF16·BF16 dot in float.
#include "core/fp16.h"
#include "quant/formats.h"

namespace kvant {
namespace {

void dequantize_row_bf16(const void* src, float* dst, int64_t n) {
  const uint16_t* b = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(b[i]);
}

void quantize_row_bf16(const float* src, void* dst, int64_t n) {
  uint16_t* b = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) b[i] = fp32_to_bf16(src[i]);
}

float vec_dot_bf16(int64_t n, const void* weights, const void* activations) {
  const uint16_t* w = static_cast<const uint16_t*>(weights);
  const uint16_t* a = static_cast<const uint16_t*>(activations);
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += bf16_to_fp32(w[i]) * bf16_to_fp32(a[i]);
  return sum;
}

}  // namespace

const QuantTraits formats::kBF16 = {
    GgmlType::BF16, 1, 2, GgmlType::BF16, dequantize_row_bf16, quantize_row_bf16, vec_dot_bf16,
};

}  // namespace kvant
