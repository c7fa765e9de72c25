// kv/hadamard.h — the fixed orthogonal rotation H·S/√m shared by turbo_kv_* and rotated q8_0/q4_0:
// a seeded ±1 diagonal S followed by a normalised fast Walsh–Hadamard transform per sub-block.
#pragma once

#include <cstdint>

namespace kvant {

// Seed of the sign generator: the ASCII bytes "kvant" read as a number.
inline constexpr uint64_t kKvRotationSeed = 0x6b76616e74ull;

// splitmix64 step (Steele, Lea, Flood 2014): advances state and returns the next output.
uint64_t splitmix64_next(uint64_t& state);

// S as ±1.0f for element indices 0..kKvMaxHeadDim-1. Element i takes bit (i % 64) of the (i / 64)-th
// splitmix64 output from kKvRotationSeed; bit 1 means -1. Every head_dim uses the prefix it needs.
const float* kv_rotation_signs();

// In-place unnormalised Walsh–Hadamard transform of n = 2^k values (natural/Hadamard order).
void fwht_inplace(float* x, int n);

// x' = H·S·x with H = Walsh–Hadamard/√m applied to each power-of-two sub-block of d (one block when d
// is a power of two; otherwise the binary decomposition, largest first: 96 = 64 + 32). Orthogonal.
// d must satisfy kv_rotation_supported(d). `out` may alias `x`.
void kv_rotate(int d, const float* x, float* out);
// The inverse: x = S·H·x' per sub-block (H/√m is its own inverse). `out` may alias `x`.
void kv_unrotate(int d, const float* x, float* out);

}  // namespace kvant
