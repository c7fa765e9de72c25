// kv/kv_codec_q4_0.cpp — q4_0 KV blocks (scalar reference), byte-identical to ggml's block_q4_0:
// per 32 elements, fp16 d then qs[16] (low nibbles = elements 0-15, high = 16-31), x ≈ d·(q-8);
// quantised like ggml's quantize_row_q4_0_ref (d = signed max-magnitude / -8).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/fp16.h"
#include "kv/kv_kernels.h"

namespace kvant::kv_internal {
namespace {

constexpr int kBlock = 32;
constexpr size_t kBlockBytes = 18;

float block_scale(const uint8_t* block) {
  uint16_t h;
  std::memcpy(&h, block, 2);
  return fp16_to_fp32(h);
}

void q4_0_encode(int d, const float* x, uint8_t* dst) {
  for (int b = 0; b < d / kBlock; ++b, x += kBlock, dst += kBlockBytes) {
    float amax = 0.0f, max = 0.0f;  // largest magnitude and its signed value (first one wins)
    for (int j = 0; j < kBlock; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float scale = max / -8.0f;
    const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    const uint16_t h = fp32_to_fp16(scale);
    std::memcpy(dst, &h, 2);
    for (int j = 0; j < kBlock / 2; ++j) {
      // x * inv lies in [-8, 8]; +8.5 then truncation rounds to the nearest level 0..16, clamped to 15.
      const int lo = std::min(15, int(int8_t(x[j] * inv + 8.5f)));
      const int hi = std::min(15, int(int8_t(x[j + 16] * inv + 8.5f)));
      dst[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void q4_0_decode(int d, const uint8_t* src, float* out) {
  for (int b = 0; b < d / kBlock; ++b, src += kBlockBytes, out += kBlock) {
    const float scale = block_scale(src);
    for (int j = 0; j < 16; ++j) {
      out[j] = scale * float((src[2 + j] & 0x0F) - 8);
      out[j + 16] = scale * float((src[2 + j] >> 4) - 8);
    }
  }
}

float q4_0_dot(int d, const float* q, const uint8_t* block) {
  float sum = 0.0f;
  for (int b = 0; b < d / kBlock; ++b, block += kBlockBytes, q += kBlock) {
    float partial = 0.0f;
    for (int j = 0; j < 16; ++j) {
      partial += q[j] * float((block[2 + j] & 0x0F) - 8) + q[j + 16] * float((block[2 + j] >> 4) - 8);
    }
    sum += block_scale(block) * partial;
  }
  return sum;
}

void q4_0_axpy(int d, float w, const uint8_t* block, float* acc) {
  for (int b = 0; b < d / kBlock; ++b, block += kBlockBytes, acc += kBlock) {
    const float ws = w * block_scale(block);
    for (int j = 0; j < 16; ++j) {
      acc[j] += ws * float((block[2 + j] & 0x0F) - 8);
      acc[j + 16] += ws * float((block[2 + j] >> 4) - 8);
    }
  }
}

}  // namespace

const KvKernels kScalarQ4_0 = {q4_0_encode, q4_0_decode, scalar_score_group<q4_0_dot>,
                               scalar_accumulate_group<q4_0_axpy>};

}  // namespace kvant::kv_internal
