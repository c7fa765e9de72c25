// backends/cpu/softmax.h — in-place softmax of attention scores: a scalar reference (std::exp, double
// sum) and an AVX2 version with a polynomial exp (relative error < 2e-7), chosen once by CPU feature.
#pragma once

#include <cstdint>

namespace kvant {

// x[i] = exp(x[i] - max) / Σ exp(x[j] - max), n >= 1.
void softmax_scalar(float* x, int64_t n);
void softmax_avx2(float* x, int64_t n);  // only call when the CPU has AVX2+FMA
void softmax(float* x, int64_t n);       // best available

}  // namespace kvant
