// backends/cpu/softmax.h — in-place softmax of attention scores: a scalar reference (std::exp, double
// sum) and an AVX2 version with a polynomial exp (relative error < 2e-7), chosen once by CPU feature.
// The two-part form normalises scores kept in two arrays (compressed keys and the f16 window) as one.
#pragma once

#include <cstdint>

namespace kvant {

// a[i], b[j] = exp(v - max) / Σ exp(v - max) over all na + nb values together; na + nb >= 1.
void softmax_parts_scalar(float* a, int64_t na, float* b, int64_t nb);
void softmax_parts_avx2(float* a, int64_t na, float* b, int64_t nb);  // only with AVX2+FMA
void softmax_parts(float* a, int64_t na, float* b, int64_t nb);       // best available

inline void softmax_scalar(float* x, int64_t n) { softmax_parts_scalar(x, n, nullptr, 0); }
inline void softmax_avx2(float* x, int64_t n) { softmax_parts_avx2(x, n, nullptr, 0); }
inline void softmax(float* x, int64_t n) { softmax_parts(x, n, nullptr, 0); }

}  // namespace kvant
