// quant/ggml_type.cpp — names (as llama.cpp prints them) and block geometry of every ggml type id.
// Geometry only: which of these kvant can compute with is decided by the quant registry.
#include "quant/ggml_type.h"

#include <array>

namespace kvant {
namespace {

struct TypeEntry {
  uint32_t id;
  std::string_view name;
  uint32_t block_elems;
  uint32_t block_bytes;
};

// Block layouts (bytes): K-quants and IQ types use 256-element super-blocks.
constexpr std::array<TypeEntry, 32> kTypes = {{
    {0, "f32", 1, 4},
    {1, "f16", 1, 2},
    {2, "q4_0", 32, 18},       // fp16 d + 16 nibble bytes
    {3, "q4_1", 32, 20},       // fp16 d, m + 16
    {6, "q5_0", 32, 22},       // fp16 d + 4 qh + 16
    {7, "q5_1", 32, 24},       // fp16 d, m + 4 qh + 16
    {8, "q8_0", 32, 34},       // fp16 d + 32 int8
    {9, "q8_1", 32, 36},       // fp16 d, s + 32 int8
    {10, "q2_K", 256, 84},     // 16 scales + 64 qs + fp16 d, dmin
    {11, "q3_K", 256, 110},    // 32 hmask + 64 qs + 12 scales + fp16 d
    {12, "q4_K", 256, 144},    // fp16 d, dmin + 12 scales + 128 qs
    {13, "q5_K", 256, 176},    // fp16 d, dmin + 12 scales + 32 qh + 128 qs
    {14, "q6_K", 256, 210},    // 128 ql + 64 qh + 16 scales + fp16 d
    {15, "q8_K", 256, 292},    // f32 d + 256 int8 + 16 int16 bsums
    {16, "iq2_xxs", 256, 66},  // fp16 d + 32 uint16
    {17, "iq2_xs", 256, 74},   // fp16 d + 32 uint16 + 8 scales
    {18, "iq3_xxs", 256, 98},  // fp16 d + 96
    {19, "iq1_s", 256, 50},    // fp16 d + 32 qs + 8 uint16 qh
    {20, "iq4_nl", 32, 18},    // fp16 d + 16
    {21, "iq3_s", 256, 110},   // fp16 d + 64 qs + 8 qh + 32 signs + 4 scales
    {22, "iq2_s", 256, 82},    // fp16 d + 64 qs + 8 qh + 8 scales
    {23, "iq4_xs", 256, 136},  // fp16 d + uint16 scales_h + 4 scales_l + 128 qs
    {24, "i8", 1, 1},
    {25, "i16", 1, 2},
    {26, "i32", 1, 4},
    {27, "i64", 1, 8},
    {28, "f64", 1, 8},
    {29, "iq1_m", 256, 56},    // 32 qs + 16 qh + 8 scales
    {30, "bf16", 1, 2},
    {34, "tq1_0", 256, 54},    // 48 qs + 4 qh + fp16 d
    {35, "tq2_0", 256, 66},    // 64 qs + fp16 d
    {39, "mxfp4", 32, 17},     // e8m0 exponent + 16 nibble bytes
}};

const TypeEntry* find_entry(uint32_t id) {
  for (const TypeEntry& e : kTypes) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

}  // namespace

std::string_view ggml_type_name(GgmlType type) {
  const TypeEntry* e = find_entry(static_cast<uint32_t>(type));
  return e != nullptr ? e->name : std::string_view("unknown");
}

std::optional<BlockGeometry> ggml_type_geometry(uint32_t type_id) {
  const TypeEntry* e = find_entry(type_id);
  if (e == nullptr) return std::nullopt;
  return BlockGeometry{e->block_elems, e->block_bytes};
}

}  // namespace kvant
