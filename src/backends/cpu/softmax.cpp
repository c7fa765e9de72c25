// backends/cpu/softmax.cpp — scalar softmax reference and the runtime dispatch.
#include "backends/cpu/softmax.h"

#include <algorithm>
#include <cmath>

namespace kvant {

void softmax_parts_scalar(float* a, int64_t na, float* b, int64_t nb) {
  float max_v = -INFINITY;
  for (int64_t i = 0; i < na; ++i) max_v = std::max(max_v, a[i]);
  for (int64_t i = 0; i < nb; ++i) max_v = std::max(max_v, b[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < na; ++i) sum += a[i] = std::exp(a[i] - max_v);
  for (int64_t i = 0; i < nb; ++i) sum += b[i] = std::exp(b[i] - max_v);
  const float inv = float(1.0 / sum);
  for (int64_t i = 0; i < na; ++i) a[i] *= inv;
  for (int64_t i = 0; i < nb; ++i) b[i] *= inv;
}

void softmax_parts(float* a, int64_t na, float* b, int64_t nb) {
  static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (has_avx2) {
    softmax_parts_avx2(a, na, b, nb);
  } else {
    softmax_parts_scalar(a, na, b, nb);
  }
}

}  // namespace kvant
