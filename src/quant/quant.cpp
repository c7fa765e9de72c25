// quant/quant.cpp — the registry of weight-format traits and the activation-conversion dispatcher.
#include <cassert>
#include <cstring>

#include "core/fp16.h"
#include "quant/formats.h"

namespace kvant {

const QuantTraits* quant_traits(GgmlType type) {
  switch (type) {
    case GgmlType::F32: return &formats::kF32;
    case GgmlType::F16: return &formats::kF16;
    case GgmlType::BF16: return &formats::kBF16;
    case GgmlType::Q8_0: return &formats::kQ8_0;
    case GgmlType::Q8_1: return &formats::kQ8_1;
    case GgmlType::Q4_0: return &formats::kQ4_0;
    case GgmlType::Q4_1: return &formats::kQ4_1;
    case GgmlType::Q5_0: return &formats::kQ5_0;
    case GgmlType::Q5_1: return &formats::kQ5_1;
    case GgmlType::Q8_K: return &formats::kQ8_K;
    case GgmlType::Q2_K: return &formats::kQ2_K;
    case GgmlType::Q3_K: return &formats::kQ3_K;
    case GgmlType::Q4_K: return &formats::kQ4_K;
    case GgmlType::Q5_K: return &formats::kQ5_K;
    case GgmlType::Q6_K: return &formats::kQ6_K;
    default: return nullptr;
  }
}

void quantize_activations(GgmlType act_type, const float* src, void* dst, int64_t n) {
  switch (act_type) {
    case GgmlType::F32:
      std::memcpy(dst, src, size_t(n) * sizeof(float));
      return;
    case GgmlType::F16: {
      uint16_t* h = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) h[i] = fp32_to_fp16(src[i]);
      return;
    }
    case GgmlType::BF16: {
      uint16_t* b = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) b[i] = fp32_to_bf16(src[i]);
      return;
    }
    case GgmlType::Q8_0: formats::quantize_activations_q8_0(src, dst, n); return;
    case GgmlType::Q8_1: formats::quantize_activations_q8_1(src, dst, n); return;
    case GgmlType::Q8_K: formats::quantize_activations_q8_k(src, dst, n); return;
    default:
      assert(false && "quantize_activations: not an activation type");
      return;
  }
}

}  // namespace kvant
