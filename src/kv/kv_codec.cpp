// kv/kv_codec.cpp — ISA detection, the dispatch table (type x ISA -> kernels) and the rotation wrapper.
#include "kv/kv_codec.h"

#include <cstring>
#include <string>

#include "kv/hadamard.h"

namespace kvant {
namespace {

using kv_internal::KvKernels;

const KvKernels& kernels_for(KvType type, KvIsa isa) {
  const bool avx2 = isa != KvIsa::Scalar;  // Avx512 falls back to AVX2 for types without a kernel
  const bool avx512 = isa == KvIsa::Avx512;
  switch (type) {
    case KvType::F32: return avx2 ? kv_internal::kAvx2F32 : kv_internal::kScalarF32;
    case KvType::F16: return avx2 ? kv_internal::kAvx2F16 : kv_internal::kScalarF16;
    case KvType::Q8_0: return avx2 ? kv_internal::kAvx2Q8_0 : kv_internal::kScalarQ8_0;
    case KvType::Q4_0: return avx2 ? kv_internal::kAvx2Q4_0 : kv_internal::kScalarQ4_0;
    case KvType::TURBO_2B:
      return avx512 ? kv_internal::kAvx512Turbo2 : avx2 ? kv_internal::kAvx2Turbo2 : kv_internal::kScalarTurbo2;
    case KvType::TURBO_3B:
      return avx512 ? kv_internal::kAvx512Turbo3 : avx2 ? kv_internal::kAvx2Turbo3 : kv_internal::kScalarTurbo3;
    case KvType::TURBO_4B:
      return avx512 ? kv_internal::kAvx512Turbo4 : avx2 ? kv_internal::kAvx2Turbo4 : kv_internal::kScalarTurbo4;
    case KvType::TURBO_5B:
      return avx512 ? kv_internal::kAvx512Turbo5 : avx2 ? kv_internal::kAvx2Turbo5 : kv_internal::kScalarTurbo5;
  }
  return kv_internal::kScalarF32;
}

}  // namespace

const char* kv_isa_name(KvIsa isa) {
  switch (isa) {
    case KvIsa::Scalar: return "scalar";
    case KvIsa::Avx2: return "avx2";
    case KvIsa::Avx512: return "avx512";
  }
  return "?";
}

bool kv_isa_supported(KvIsa isa) {
  if (isa == KvIsa::Scalar) return true;
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                           __builtin_cpu_supports("f16c");
  static const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return isa == KvIsa::Avx512 ? avx512 : avx2;
#else
  return false;
#endif
}

KvIsa kv_best_isa() {
  static const KvIsa best = kv_isa_supported(KvIsa::Avx512) ? KvIsa::Avx512
                            : kv_isa_supported(KvIsa::Avx2) ? KvIsa::Avx2
                                                            : KvIsa::Scalar;
  return best;
}

Expected<KvCodec> make_kv_codec(KvType type, int head_dim, bool rotate, std::string_view role, KvIsa isa) {
  const bool rotated = rotate || kv_type_is_turbo(type);
  KVANT_RETURN_IF_ERROR(kv_check_head_dim(type, head_dim, rotated, role));
  if (!kv_isa_supported(isa)) {
    return Status::error(std::string(role) + " cache: kernels for " + kv_isa_name(isa) +
                         " are not supported by this CPU");
  }
  KvCodec codec;
  codec.type_ = type;
  codec.rotated_ = rotated;
  codec.head_dim_ = head_dim;
  codec.bytes_ = kv_bytes_per_vector(type, head_dim);
  codec.isa_ = isa;
  codec.kernels_ = kernels_for(type, KvIsa::Scalar);
  if (isa != KvIsa::Scalar) {
    const KvKernels& fast = kernels_for(type, isa);
    codec.kernels_.score_group = fast.score_group;
    codec.kernels_.accumulate_group = fast.accumulate_group;
  }
  return codec;
}

void KvCodec::encode(const float* x, uint8_t* dst) const {
  if (!rotated_) {
    kernels_.encode(head_dim_, x, dst);
    return;
  }
  float rotated[kKvMaxHeadDim];
  kv_rotate(head_dim_, x, rotated);
  kernels_.encode(head_dim_, rotated, dst);
}

void KvCodec::decode(const uint8_t* src, float* out) const {
  kernels_.decode(head_dim_, src, out);
  if (rotated_) kv_unrotate(head_dim_, out, out);
}

void KvCodec::prepare_query(const float* q, float* q_prepared) const {
  if (rotated_) {
    kv_rotate(head_dim_, q, q_prepared);
  } else if (q_prepared != q) {
    std::memcpy(q_prepared, q, sizeof(float) * size_t(head_dim_));
  }
}

void KvCodec::finish_output(float* acc) const {
  if (rotated_) kv_unrotate(head_dim_, acc, acc);
}

}  // namespace kvant
