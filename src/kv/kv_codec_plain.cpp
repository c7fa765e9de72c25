// kv/kv_codec_plain.cpp — f32 and f16 KV blocks (scalar reference): d floats / d IEEE halves, no scale.
#include <cstring>

#include "core/fp16.h"
#include "kv/kv_kernels.h"

namespace kvant::kv_internal {
namespace {

void f32_encode(int d, const float* x, uint8_t* dst) { std::memcpy(dst, x, sizeof(float) * size_t(d)); }
void f32_decode(int d, const uint8_t* src, float* out) { std::memcpy(out, src, sizeof(float) * size_t(d)); }

float f32_dot(int d, const float* q, const uint8_t* block) {
  float sum = 0.0f;
  for (int i = 0; i < d; ++i) {
    float k;
    std::memcpy(&k, block + 4 * size_t(i), 4);
    sum += q[i] * k;
  }
  return sum;
}

void f32_axpy(int d, float w, const uint8_t* block, float* acc) {
  for (int i = 0; i < d; ++i) {
    float v;
    std::memcpy(&v, block + 4 * size_t(i), 4);
    acc[i] += w * v;
  }
}

uint16_t load_u16(const uint8_t* p) { uint16_t h; std::memcpy(&h, p, 2); return h; }

void f16_encode(int d, const float* x, uint8_t* dst) {
  for (int i = 0; i < d; ++i) {
    const uint16_t h = fp32_to_fp16(x[i]);
    std::memcpy(dst + 2 * size_t(i), &h, 2);
  }
}

void f16_decode(int d, const uint8_t* src, float* out) {
  for (int i = 0; i < d; ++i) out[i] = fp16_to_fp32(load_u16(src + 2 * size_t(i)));
}

float f16_dot(int d, const float* q, const uint8_t* block) {
  float sum = 0.0f;
  for (int i = 0; i < d; ++i) sum += q[i] * fp16_to_fp32(load_u16(block + 2 * size_t(i)));
  return sum;
}

void f16_axpy(int d, float w, const uint8_t* block, float* acc) {
  for (int i = 0; i < d; ++i) acc[i] += w * fp16_to_fp32(load_u16(block + 2 * size_t(i)));
}

}  // namespace

const KvKernels kScalarF32 = {f32_encode, f32_decode, scalar_score_group<f32_dot>,
                              scalar_accumulate_group<f32_axpy>};
const KvKernels kScalarF16 = {f16_encode, f16_decode, scalar_score_group<f16_dot>,
                              scalar_accumulate_group<f16_axpy>};

}  // namespace kvant::kv_internal
