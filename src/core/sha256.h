// core/sha256.h — a small SHA-256 (FIPS 180-4) for checksumming tensors and files in tests and tools.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace kvant {

// Incremental hasher: update() any number of times, then digest() once.
class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::array<uint8_t, 32> digest();

 private:
  void compress(const uint8_t block[64]);
  std::array<uint32_t, 8> state_;
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

// Lower-case hex digest of n bytes.
std::string sha256_hex(const void* data, size_t n);

}  // namespace kvant
