// kv/kv_types.h — the KV-cache element types (f32, f16, q8_0, q4_0, turbo_kv_2b..5b): names, parsing,
// bytes per head vector and the head_dim each type accepts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "kvant/status.h"

namespace kvant {

enum class KvType { F32, F16, Q8_0, Q4_0, TURBO_2B, TURBO_3B, TURBO_4B, TURBO_5B };

inline constexpr KvType kAllKvTypes[] = {KvType::F32,      KvType::F16,      KvType::Q8_0,
                                         KvType::Q4_0,     KvType::TURBO_2B, KvType::TURBO_3B,
                                         KvType::TURBO_4B, KvType::TURBO_5B};

// Largest head vector any codec accepts (codecs keep one vector on the stack).
inline constexpr int kKvMaxHeadDim = 1024;

// "f32", "f16", "q8_0", "q4_0", "turbo_kv_2b" .. "turbo_kv_5b".
const char* kv_type_name(KvType type);
// Parses a name as written by kv_type_name; the error lists every valid name.
Expected<KvType> parse_kv_type(std::string_view name);
// "f32, f16, q8_0, q4_0, turbo_kv_2b, turbo_kv_3b, turbo_kv_4b, turbo_kv_5b".
std::string kv_type_names();

bool kv_type_is_turbo(KvType type);
// Index bits per coordinate of a turbo type (2..5); 0 for the others.
int kv_turbo_bits(KvType type);

// Bytes one encoded head vector of `head_dim` elements takes (head_dim must be valid for the type).
size_t kv_bytes_per_vector(KvType type, int head_dim);
// Storage bits per element including scales: f16 16, q8_0 8.5, q4_0 4.5, turbo_kv_4b at d=128 4.125.
double kv_bits_per_element(KvType type, int head_dim);

// Whether a vector of `head_dim` elements can be rotated: a power of two, or a multiple of 32
// (rotated as power-of-two sub-blocks, largest first: 96 = 64 + 32).
bool kv_rotation_supported(int head_dim);

// Checks that `type` (rotated or not) can store head vectors of `head_dim` elements. `role` names
// the cache in the message ("K", "V"): "K cache type q8_0 needs head_dim divisible by 32, model has 8".
Status kv_check_head_dim(KvType type, int head_dim, bool rotate, std::string_view role = "KV");

}  // namespace kvant
