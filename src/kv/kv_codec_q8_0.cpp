// kv/kv_codec_q8_0.cpp — q8_0 KV blocks (scalar reference), byte-identical to ggml's block_q8_0:
// per 32 elements, fp16 d then int8 qs[32], x ≈ d·q; quantised like ggml's quantize_row_q8_0_ref.
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kv/kv_kernels.h"

namespace kvant::kv_internal {
namespace {

constexpr int kBlock = 32;
constexpr size_t kBlockBytes = 34;

float block_scale(const uint8_t* block) {
  uint16_t h;
  std::memcpy(&h, block, 2);
  return fp16_to_fp32(h);
}

void q8_0_encode(int d, const float* x, uint8_t* dst) {
  for (int b = 0; b < d / kBlock; ++b, x += kBlock, dst += kBlockBytes) {
    float amax = 0.0f;
    for (int j = 0; j < kBlock; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float scale = amax / 127.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    const uint16_t h = fp32_to_fp16(scale);
    std::memcpy(dst, &h, 2);
    for (int j = 0; j < kBlock; ++j) dst[2 + j] = uint8_t(int8_t(std::roundf(x[j] * inv)));
  }
}

void q8_0_decode(int d, const uint8_t* src, float* out) {
  for (int b = 0; b < d / kBlock; ++b, src += kBlockBytes, out += kBlock) {
    const float scale = block_scale(src);
    for (int j = 0; j < kBlock; ++j) out[j] = scale * float(int8_t(src[2 + j]));
  }
}

float q8_0_dot(int d, const float* q, const uint8_t* block) {
  float sum = 0.0f;
  for (int b = 0; b < d / kBlock; ++b, block += kBlockBytes, q += kBlock) {
    float partial = 0.0f;
    for (int j = 0; j < kBlock; ++j) partial += q[j] * float(int8_t(block[2 + j]));
    sum += block_scale(block) * partial;
  }
  return sum;
}

void q8_0_axpy(int d, float w, const uint8_t* block, float* acc) {
  for (int b = 0; b < d / kBlock; ++b, block += kBlockBytes, acc += kBlock) {
    const float ws = w * block_scale(block);
    for (int j = 0; j < kBlock; ++j) acc[j] += ws * float(int8_t(block[2 + j]));
  }
}

}  // namespace

const KvKernels kScalarQ8_0 = {q8_0_encode, q8_0_decode, scalar_score_group<q8_0_dot>,
                               scalar_accumulate_group<q8_0_axpy>};

}  // namespace kvant::kv_internal
