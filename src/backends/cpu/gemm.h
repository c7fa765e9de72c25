// backends/cpu/gemm.h — prefill GEMM for quantised weights: register-blocked micro-kernels (4 weight rows
// x 4 activation rows for Q8_0/Q4_0, 1 x 8 for K-quants) with AVX-512 VNNI integer dots
// (gemm_avx512.cpp); the CPU check runs once per process.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/ggml_type.h"

namespace kvant::gemm {

// True when the CPU has AVX-512 F/BW/VL + VNNI and a GEMM kernel exists for weight_type
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

}  // namespace kvant::gemm
