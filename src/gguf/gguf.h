// gguf/gguf.h — bounds-checked GGUF (v2/v3) reader over a memory-mapped file, and a GGUF writer.
// Knows no model: metadata key/values, the tensor directory and aligned tensor data.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"
#include "kvant/status.h"

namespace kvant::gguf {

// Metadata value types as stored in the file.
enum class ValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
std::string_view value_type_name(ValueType type);

// One metadata value. Scalars keep their exact value in the member matching their type class;
// arrays keep their element type and elements in the matching vector (nested arrays in `arrays`).
struct Value {
  ValueType type = ValueType::UINT32;
  ValueType elem_type = ValueType::UINT32;  // meaningful when type == ARRAY
  uint64_t u = 0;         // UINT8/16/32/64, BOOL (0/1)
  int64_t i = 0;          // INT8/16/32/64
  double f = 0.0;         // FLOAT32/64
  std::string str;        // STRING
  // ARRAY: exactly one of these holds the elements, by elem_type class.
  std::vector<uint64_t> arr_u;
  std::vector<int64_t> arr_i;
  std::vector<double> arr_f;
  std::vector<std::string> arr_str;
  std::vector<Value> arrays;  // elem_type == ARRAY
  uint64_t array_size() const;

  // Convenience constructors (used by the writer and tests).
  static Value of_u32(uint32_t v);
  static Value of_i32(int32_t v);
  static Value of_u64(uint64_t v);
  static Value of_f32(float v);
  static Value of_bool(bool v);
  static Value of_string(std::string v);
  static Value of_string_array(std::vector<std::string> v);
  static Value of_f32_array(const std::vector<float>& v);
  static Value of_i32_array(const std::vector<int32_t>& v);
};

struct KeyValue {
  std::string key;
  Value value;
};

// One entry of the tensor directory. `data` points into the mapping and spans `n_bytes`.
struct TensorInfo {
  std::string name;
  uint32_t type_id = 0;              // ggml_type id (see quant/ggml_type.h)
  uint32_t n_dims = 0;
  std::array<uint64_t, 4> ne{1, 1, 1, 1};  // ne[0] is the contiguous dimension
  uint64_t offset = 0;               // relative to the start of the tensor data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;
};

// A parsed GGUF file. Every count, length and offset was checked against the file size (overflow-safe)
// before use; tensors whose type has unknown block geometry are rejected at open with the tensor's name.
class File {
 public:
  static Expected<File> open(const std::string& path);

  const std::string& path() const;
  uint32_t version() const;
  uint64_t alignment() const;
  uint64_t data_offset() const;   // absolute file offset of the tensor data section
  const std::vector<KeyValue>& metadata() const;
  const std::vector<TensorInfo>& tensors() const;

  const Value* find(std::string_view key) const;
  const TensorInfo* find_tensor(std::string_view name) const;

  // Typed getters. Errors name the file, the key, the expected and the actual type or value.
  // get_uint accepts any integer type whose value is >= 0; get_int any integer type; get_float any
  // integer or float type.
  Expected<uint64_t> get_uint(std::string_view key) const;
  Expected<int64_t> get_int(std::string_view key) const;
  Expected<double> get_float(std::string_view key) const;
  Expected<bool> get_bool(std::string_view key) const;
  Expected<std::string> get_string(std::string_view key) const;
  // Arrays: element type must match the class (strings; any float/int for floats; any int for ints).
  Expected<const std::vector<std::string>*> get_string_array(std::string_view key) const;
  Expected<std::vector<float>> get_float_array(std::string_view key) const;
  Expected<std::vector<int64_t>> get_int_array(std::string_view key) const;

  // Optional variants: nullopt when the key is absent; error when present with a wrong type.
  Expected<std::optional<uint64_t>> get_uint_opt(std::string_view key) const;
  Expected<std::optional<double>> get_float_opt(std::string_view key) const;
  Expected<std::optional<bool>> get_bool_opt(std::string_view key) const;
  Expected<std::optional<std::string>> get_string_opt(std::string_view key) const;

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  ~File();

 private:
  File();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Builds a GGUF v3 file in memory order: header, metadata, tensor directory, aligned data.
class Writer {
 public:
  void set(std::string key, Value value);           // replaces an existing key
  // ne has n_dims entries, ne[0] contiguous; data must hold exactly the type's byte size for ne.
  Status add_tensor(std::string name, uint32_t type_id, std::vector<uint64_t> ne, const void* data,
                    size_t n_bytes);
  Status write(const std::string& path) const;       // alignment from general.alignment, default 32

 private:
  struct PendingTensor {
    std::string name;
    uint32_t type_id;
    std::vector<uint64_t> ne;
    std::vector<uint8_t> bytes;
  };
  std::vector<KeyValue> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace kvant::gguf
