// quant/ggml_type.h — GGUF/ggml tensor type ids and their block geometry (no kernels here).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kvant {

// Numeric ids as stored in GGUF tensor infos (ggml_type).
enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22,
  IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30,
  TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

// Name as llama.cpp prints it ("q4_K", "f16"...); "unknown" for ids kvant has no name for.
std::string_view ggml_type_name(GgmlType type);
// Elements per block and bytes per block for every type kvant knows the geometry of (including ones it
// cannot compute with, so the loader can still report sizes). nullopt for unknown ids.
struct BlockGeometry {
  uint32_t block_elems;
  uint32_t block_bytes;
};
std::optional<BlockGeometry> ggml_type_geometry(uint32_t type_id);

// Bytes for a row of n elements; n must be a multiple of block_elems (caller checks).
inline size_t row_bytes(BlockGeometry g, uint64_t n) { return size_t(n / g.block_elems) * g.block_bytes; }

}  // namespace kvant
