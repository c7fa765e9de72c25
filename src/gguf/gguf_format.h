// gguf/gguf_format.h — internal GGUF format constants and value-type helpers shared by reader and writer.
#pragma once

#include <cstdint>
#include <optional>

#include "gguf/gguf.h"

namespace kvant::gguf::detail {

inline constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
inline constexpr uint32_t kWriteVersion = 3;
inline constexpr uint64_t kDefaultAlignment = 32;
inline constexpr uint32_t kMaxDims = 4;
inline constexpr int kMaxArrayDepth = 16;  // nested arrays deeper than this are refused

inline bool is_known(uint32_t raw) { return raw <= static_cast<uint32_t>(ValueType::FLOAT64); }

inline bool is_unsigned(ValueType t) {
  return t == ValueType::UINT8 || t == ValueType::UINT16 || t == ValueType::UINT32 || t == ValueType::UINT64;
}
inline bool is_signed(ValueType t) {
  return t == ValueType::INT8 || t == ValueType::INT16 || t == ValueType::INT32 || t == ValueType::INT64;
}
inline bool is_float(ValueType t) { return t == ValueType::FLOAT32 || t == ValueType::FLOAT64; }

// Encoded size of a fixed-size scalar; nullopt for STRING and ARRAY.
inline std::optional<uint64_t> scalar_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    default: return std::nullopt;
  }
}

// Fewest bytes one encoded element of type t can take (string: its u64 length; array: type + count).
inline uint64_t min_encoded_size(ValueType t) {
  if (auto s = scalar_size(t)) return *s;
  return t == ValueType::STRING ? 8 : 12;
}

inline bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Rounds v up to a multiple of the power of two a; nullopt on overflow.
inline std::optional<uint64_t> align_up(uint64_t v, uint64_t a) {
  uint64_t sum = 0;
  if (__builtin_add_overflow(v, a - 1, &sum)) return std::nullopt;
  return sum & ~(a - 1);
}

}  // namespace kvant::gguf::detail
