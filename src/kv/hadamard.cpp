// kv/hadamard.cpp — seeded sign diagonal and the fast Walsh–Hadamard rotation.
#include "kv/hadamard.h"

#include <array>
#include <cassert>
#include <cmath>

#include "kv/kv_types.h"

namespace kvant {
namespace {

std::array<float, kKvMaxHeadDim> make_signs() {
  std::array<float, kKvMaxHeadDim> s{};
  uint64_t state = kKvRotationSeed;
  uint64_t word = 0;
  for (int i = 0; i < kKvMaxHeadDim; ++i) {
    if (i % 64 == 0) word = splitmix64_next(state);
    s[size_t(i)] = ((word >> (i % 64)) & 1u) ? -1.0f : 1.0f;
  }
  return s;
}

// Calls fn(offset, size) for each power-of-two sub-block of d, largest first.
template <typename Fn>
void for_each_block(int d, Fn fn) {
  int offset = 0;
  for (int bit = 30; bit >= 0; --bit) {
    const int m = 1 << bit;
    if (d & m) {
      fn(offset, m);
      offset += m;
    }
  }
}

}  // namespace

uint64_t splitmix64_next(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

const float* kv_rotation_signs() {
  static const std::array<float, kKvMaxHeadDim> signs = make_signs();
  return signs.data();
}

void fwht_inplace(float* x, int n) {
  for (int len = 1; len < n; len <<= 1) {
    for (int i = 0; i < n; i += 2 * len) {
      for (int j = i; j < i + len; ++j) {
        const float a = x[j], b = x[j + len];
        x[j] = a + b;
        x[j + len] = a - b;
      }
    }
  }
}

void kv_rotate(int d, const float* x, float* out) {
  assert(kv_rotation_supported(d) && d <= kKvMaxHeadDim);
  const float* s = kv_rotation_signs();
  for (int i = 0; i < d; ++i) out[i] = s[i] * x[i];
  for_each_block(d, [&](int offset, int m) {
    fwht_inplace(out + offset, m);
    const float norm = 1.0f / std::sqrt(float(m));
    for (int i = 0; i < m; ++i) out[offset + i] *= norm;
  });
}

void kv_unrotate(int d, const float* x, float* out) {
  assert(kv_rotation_supported(d) && d <= kKvMaxHeadDim);
  const float* s = kv_rotation_signs();
  if (out != x) {
    for (int i = 0; i < d; ++i) out[i] = x[i];
  }
  for_each_block(d, [&](int offset, int m) {
    fwht_inplace(out + offset, m);
    const float norm = 1.0f / std::sqrt(float(m));
    for (int i = 0; i < m; ++i) out[offset + i] *= norm;
  });
  for (int i = 0; i < d; ++i) out[i] *= s[i];
}

}  // namespace kvant
