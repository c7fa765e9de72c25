// tests/cuda/cuda_test.h — a tiny check harness for the CUDA device tests (plain executables, no
// GoogleTest on the GPU machine): CHECK macros that count failures, relative errors, random data and
// the "skip with exit code 77" rule when no device is present.
#pragma once

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backends/cuda/cuda_backend.h"
#include "quant/quant.h"

namespace kvant::test {

inline int& failures() {
  static int n = 0;
  return n;
}

#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) {                                                    \
      ++::kvant::test::failures();                                    \
      std::printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
      std::printf(__VA_ARGS__);                                       \
      std::printf("\n");                                              \
    }                                                                 \
  } while (0)

// Exits 77 (ctest: skipped) with a message when there is no usable CUDA device.
inline void require_device() {
  const CudaDeviceInfo& dev = cuda_device_info();
  if (!dev.available) {
    std::printf("SKIP: %s\n", dev.reason.c_str());
    std::exit(77);
  }
  std::printf("device: %s (%.1f GiB free)\n", dev.name.c_str(), double(dev.free_bytes) / (1u << 30));
}

// ||a - b|| / ||b||; NaN or a size mismatch gives +inf.
inline double rel_error(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i])) return INFINITY;
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
inline double rel_error(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() != b.size() ? INFINITY : rel_error(a.data(), b.data(), a.size());
}

inline std::vector<float> random_normal(size_t n, uint64_t seed, float stddev = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// n_out rows of N(0, 0.05^2) values quantised row by row to `type`, and the rows dequantised again
// (the exact weights a kernel must reproduce).
struct QuantisedRows {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // [n_out][n_in]
  size_t row_bytes = 0;
};
inline QuantisedRows quantised_random_rows(GgmlType type, int n_in, int n_out, uint64_t seed) {
  const QuantTraits* t = quant_traits(type);
  QuantisedRows w;
  w.row_bytes = size_t(n_in / t->block_elems) * t->block_bytes;
  w.bytes.resize(w.row_bytes * n_out);
  w.deq.resize(size_t(n_in) * n_out);
  const std::vector<float> src = random_normal(size_t(n_in) * n_out, seed, 0.05f);
  for (int r = 0; r < n_out; ++r) {
    t->quantize_row(src.data() + size_t(r) * n_in, w.bytes.data() + r * w.row_bytes, n_in);
    t->dequantize_row(w.bytes.data() + r * w.row_bytes, w.deq.data() + size_t(r) * n_in, n_in);
  }
  return w;
}

inline int finish(const char* name) {
  if (failures() == 0) {
    std::printf("%s: all checks passed\n", name);
    return 0;
  }
  std::printf("%s: %d check(s) FAILED\n", name, failures());
  return 1;
}

}  // namespace kvant::test
