// backends/cpu/gemm.h — prefill GEMM for quantised weights: register-blocked micro-kernels (4 weight rows
// x 4 activation rows for Q8_0/Q4_0, 1 x 8 for K-quants) with AVX-512 VNNI integer dots
// (gemm_avx512.cpp), and AMX-INT8 tiles where present (gemm_amx.cpp); the CPU checks run once per process.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"

namespace kvant::gemm {

// True when the CPU has AVX-512 F/BW/VL + VNNI (and KVANT_MAX_ISA allows it) and a GEMM kernel exists for weight_type
// (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K). Checked once per process.
bool available(GgmlType weight_type);

// Bytes of one packed activation row: the row in the format's vec_dot type plus per-block extras.
size_t packed_row_bytes(GgmlType weight_type, int64_t n_in);

// Quantises x (n_in floats) as quantize_activations does and appends the extras the kernel needs.
void pack_row(GgmlType weight_type, const float* x, int64_t n_in, uint8_t* dst);

// y[r * ldy + j] = dot(weight row j, activation row r) for r in [r0, r1), j in [j0, j1).
// w: weight rows of w_row_bytes; act: packed rows of act_row_bytes (packed_row_bytes).
void compute_tile(GgmlType weight_type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, const uint8_t* act,
                  size_t act_row_bytes, int r0, int r1, int64_t j0, int64_t j1, float* y, int64_t ldy);

namespace avx512 {
// Defined in gemm_avx512.cpp; call only when available() is true.
bool has_kernel(GgmlType weight_type);
size_t packed_row_bytes(GgmlType weight_type, int64_t n_in);
void pack_extras(GgmlType weight_type, int64_t n_in, uint8_t* row);
void compute_tile(GgmlType weight_type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, const uint8_t* act,
                  size_t act_row_bytes, int r0, int r1, int64_t j0, int64_t j1, float* y, int64_t ldy);
}  // namespace avx512

// Intel AMX-INT8 path (gemm_amx.cpp): weights decoded 16 rows at a time to int8 groups, activations
// quantised to int8 per 32 and packed 16 rows per tile in the tile unit's VNNI order.
namespace amx {
// True when the CPU has AMX-INT8, Linux granted this process the tile state, KVANT_MAX_ISA allows amx, and
// a decoder exists for weight_type (Q8_0, Q4_0, Q4_K, Q5_K, Q6_K). Checked once per process.
bool available(GgmlType weight_type);
// Defined in gemm_amx.cpp; call only when available() is true (pack_row_tiles needs AVX-512 only).
bool has_kernel(GgmlType weight_type);
// Bytes of n_rows activation rows packed (rounded up to whole 16-row tiles).
size_t packed_bytes(GgmlType weight_type, int64_t n_in, int n_rows);
// Packs the 16-row tiles [t0, t1) of x (n_rows rows of n_in floats); rows past n_rows pack as zero.
void pack_row_tiles(GgmlType weight_type, const float* x, int64_t n_in, int n_rows, int t0, int t1,
                    uint8_t* packed);
// y[r * ldy + j] = dot(weight row j, activation row r) for every r < n_rows and j in [j0, min(j0 + 16, n_out)).
void compute_column_tile(GgmlType weight_type, const uint8_t* w, size_t w_row_bytes, int64_t n_in, int64_t n_out,
                         int64_t j0, const uint8_t* packed, int n_rows, float* y, int64_t ldy);
}  // namespace amx

}  // namespace kvant::gemm
