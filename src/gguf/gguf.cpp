// gguf/gguf.cpp — metadata Value helpers shared by the GGUF reader and writer: type names, array size,
// convenience constructors.
#include "gguf/gguf.h"

#include "gguf/gguf_format.h"

namespace kvant::gguf {

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

uint64_t Value::array_size() const {
  if (type != ValueType::ARRAY) return 0;
  if (elem_type == ValueType::STRING) return arr_str.size();
  if (elem_type == ValueType::ARRAY) return arrays.size();
  if (detail::is_float(elem_type)) return arr_f.size();
  if (detail::is_signed(elem_type)) return arr_i.size();
  return arr_u.size();  // unsigned and bool
}

Value Value::of_u32(uint32_t v) {
  Value out;
  out.type = ValueType::UINT32;
  out.u = v;
  return out;
}

Value Value::of_i32(int32_t v) {
  Value out;
  out.type = ValueType::INT32;
  out.i = v;
  return out;
}

Value Value::of_u64(uint64_t v) {
  Value out;
  out.type = ValueType::UINT64;
  out.u = v;
  return out;
}

Value Value::of_f32(float v) {
  Value out;
  out.type = ValueType::FLOAT32;
  out.f = v;
  return out;
}

Value Value::of_bool(bool v) {
  Value out;
  out.type = ValueType::BOOL;
  out.u = v ? 1 : 0;
  return out;
}

Value Value::of_string(std::string v) {
  Value out;
  out.type = ValueType::STRING;
  out.str = std::move(v);
  return out;
}

Value Value::of_string_array(std::vector<std::string> v) {
  Value out;
  out.type = ValueType::ARRAY;
  out.elem_type = ValueType::STRING;
  out.arr_str = std::move(v);
  return out;
}

Value Value::of_f32_array(const std::vector<float>& v) {
  Value out;
  out.type = ValueType::ARRAY;
  out.elem_type = ValueType::FLOAT32;
  out.arr_f.assign(v.begin(), v.end());
  return out;
}

Value Value::of_i32_array(const std::vector<int32_t>& v) {
  Value out;
  out.type = ValueType::ARRAY;
  out.elem_type = ValueType::INT32;
  out.arr_i.assign(v.begin(), v.end());
  return out;
}

}  // namespace kvant::gguf
