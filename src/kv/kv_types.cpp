// kv/kv_types.cpp — names, parsing and sizes of the KV-cache element types.
#include "kv/kv_types.h"

#include <cassert>

namespace kvant {

const char* kv_type_name(KvType type) {
  switch (type) {
    case KvType::F32: return "f32";
    case KvType::F16: return "f16";
    case KvType::Q8_0: return "q8_0";
    case KvType::Q4_0: return "q4_0";
    case KvType::TURBO_2B: return "turbo_kv_2b";
    case KvType::TURBO_3B: return "turbo_kv_3b";
    case KvType::TURBO_4B: return "turbo_kv_4b";
    case KvType::TURBO_5B: return "turbo_kv_5b";
  }
  return "?";
}

std::string kv_type_names() {
  std::string names;
  for (KvType t : kAllKvTypes) {
    if (!names.empty()) names += ", ";
    names += kv_type_name(t);
  }
  return names;
}

Expected<KvType> parse_kv_type(std::string_view name) {
  for (KvType t : kAllKvTypes) {
    if (name == kv_type_name(t)) return t;
  }
  return Status::error("unknown KV cache type '" + std::string(name) + "', valid: " + kv_type_names());
}

bool kv_type_is_turbo(KvType type) { return kv_turbo_bits(type) != 0; }

int kv_turbo_bits(KvType type) {
  switch (type) {
    case KvType::TURBO_2B: return 2;
    case KvType::TURBO_3B: return 3;
    case KvType::TURBO_4B: return 4;
    case KvType::TURBO_5B: return 5;
    default: return 0;
  }
}

size_t kv_bytes_per_vector(KvType type, int head_dim) {
  assert(head_dim > 0);
  const size_t d = size_t(head_dim);
  switch (type) {
    case KvType::F32: return 4 * d;
    case KvType::F16: return 2 * d;
    case KvType::Q8_0: return d / 32 * 34;
    case KvType::Q4_0: return d / 32 * 18;
    default: return 2 + d * size_t(kv_turbo_bits(type)) / 8;  // fp16 scale + packed indices
  }
}

double kv_bits_per_element(KvType type, int head_dim) {
  return 8.0 * double(kv_bytes_per_vector(type, head_dim)) / double(head_dim);
}

bool kv_rotation_supported(int head_dim) {
  if (head_dim <= 0) return false;
  const bool power_of_two = (head_dim & (head_dim - 1)) == 0;
  return power_of_two || head_dim % 32 == 0;
}

Status kv_check_head_dim(KvType type, int head_dim, bool rotate, std::string_view role) {
  const std::string prefix = std::string(role) + " cache type " + kv_type_name(type);
  const std::string model_has = ", model has " + std::to_string(head_dim);
  if (head_dim <= 0 || head_dim > kKvMaxHeadDim) {
    return Status::error(prefix + " needs head_dim in 1.." + std::to_string(kKvMaxHeadDim) + model_has);
  }
  if ((type == KvType::Q8_0 || type == KvType::Q4_0) && head_dim % 32 != 0) {
    return Status::error(prefix + " needs head_dim divisible by 32" + model_has);
  }
  if (kv_type_is_turbo(type)) {
    if (head_dim % 8 != 0 || !kv_rotation_supported(head_dim)) {
      return Status::error(prefix +
                           " needs head_dim a power of two >= 8 or a multiple of 32" + model_has);
    }
  } else if (rotate && !kv_rotation_supported(head_dim)) {
    return Status::error(prefix +
                         " with rotation needs head_dim a power of two or a multiple of 32" + model_has);
  }
  return Status::ok();
}

}  // namespace kvant
