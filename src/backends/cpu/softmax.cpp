// backends/cpu/softmax.cpp — scalar softmax reference and the runtime dispatch.
#include "backends/cpu/softmax.h"

#include <algorithm>
#include <cmath>

namespace kvant {

void softmax_scalar(float* x, int64_t n) {
  const float max_v = *std::max_element(x, x + n);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i] = std::exp(x[i] - max_v);
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void softmax(float* x, int64_t n) {
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (has_avx2) {
    softmax_avx2(x, n);
  } else {
    softmax_scalar(x, n);
  }
}

}  // namespace kvant
