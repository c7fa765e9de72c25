// gguf/gguf_writer.cpp — GGUF v3 writer: header, metadata in insertion order, tensor directory and
// tensor data aligned to general.alignment (default 32).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "gguf/gguf.h"
#include "gguf/gguf_format.h"
#include "quant/ggml_type.h"

namespace kvant::gguf {
namespace {

// Little-endian serialisation into a growing byte buffer.
class Encoder {
 public:
  void bits(uint64_t v, uint64_t size) {
    for (uint64_t b = 0; b < size; ++b) bytes_.push_back(static_cast<uint8_t>(v >> (8 * b)));
  }
  void u32(uint32_t v) { bits(v, 4); }
  void u64(uint64_t v) { bits(v, 8); }
  void string(const std::string& s) {
    u64(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

uint64_t float_bits(ValueType type, double f) {
  if (type == ValueType::FLOAT32) {
    const float v = static_cast<float>(f);
    uint32_t b;
    std::memcpy(&b, &v, sizeof b);
    return b;
  }
  uint64_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// Encodes one scalar element held in the member matching `type`'s class.
void encode_scalar(Encoder& enc, ValueType type, uint64_t u, int64_t i, double f) {
  const uint64_t size = *detail::scalar_size(type);
  if (detail::is_signed(type)) enc.bits(static_cast<uint64_t>(i), size);
  else if (detail::is_float(type)) enc.bits(float_bits(type, f), size);
  else if (type == ValueType::BOOL) enc.bits(u != 0 ? 1 : 0, size);
  else enc.bits(u, size);
}

// Encodes an array body (element type, count, elements); `v.elem_type` picks the element vector.
Status encode_array(Encoder& enc, const std::string& key, const Value& v, int depth) {
  if (!detail::is_known(static_cast<uint32_t>(v.elem_type))) {
    return Status::error("key '" + key + "' array has unknown element type " +
                         std::to_string(static_cast<uint32_t>(v.elem_type)));
  }
  if (depth > detail::kMaxArrayDepth) {
    return Status::error("key '" + key + "' has arrays nested deeper than " + std::to_string(detail::kMaxArrayDepth));
  }
  enc.u32(static_cast<uint32_t>(v.elem_type));
  enc.u64(v.array_size());
  const ValueType t = v.elem_type;
  if (t == ValueType::STRING) {
    for (const std::string& s : v.arr_str) enc.string(s);
  } else if (t == ValueType::ARRAY) {
    for (const Value& inner : v.arrays) KVANT_RETURN_IF_ERROR(encode_array(enc, key, inner, depth + 1));
  } else if (detail::is_signed(t)) {
    for (int64_t x : v.arr_i) encode_scalar(enc, t, 0, x, 0.0);
  } else if (detail::is_float(t)) {
    for (double x : v.arr_f) encode_scalar(enc, t, 0, 0, x);
  } else {
    for (uint64_t x : v.arr_u) encode_scalar(enc, t, x, 0, 0.0);
  }
  return Status::ok();
}

Status encode_key_value(Encoder& enc, const KeyValue& kv) {
  const ValueType t = kv.value.type;
  if (!detail::is_known(static_cast<uint32_t>(t))) {
    return Status::error("key '" + kv.key + "' has unknown value type " + std::to_string(static_cast<uint32_t>(t)));
  }
  enc.string(kv.key);
  enc.u32(static_cast<uint32_t>(t));
  if (t == ValueType::STRING) {
    enc.string(kv.value.str);
    return Status::ok();
  }
  if (t == ValueType::ARRAY) return encode_array(enc, kv.key, kv.value, 1);
  encode_scalar(enc, t, kv.value.u, kv.value.i, kv.value.f);
  return Status::ok();
}

Expected<uint64_t> alignment_of(const std::vector<KeyValue>& metadata) {
  for (const KeyValue& kv : metadata) {
    if (kv.key != "general.alignment") continue;
    const Value& v = kv.value;
    uint64_t a = 0;
    if (detail::is_unsigned(v.type)) a = v.u;
    else if (detail::is_signed(v.type) && v.i > 0) a = uint64_t(v.i);
    if (!detail::is_power_of_two(a)) {
      return Status::error("general.alignment must be a nonzero power of two integer (type " +
                           std::string(value_type_name(v.type)) + ")");
    }
    return a;
  }
  return detail::kDefaultAlignment;
}

// Owns a FILE* and reports the first write error with the path.
class OutFile {
 public:
  explicit OutFile(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "wb")) {}
  ~OutFile() {
    if (f_) std::fclose(f_);
  }
  Status open_status() const {
    return f_ ? Status::ok() : Status::error(path_ + ": cannot open for writing: " + std::strerror(errno));
  }
  Status write(const void* data, size_t n) {
    if (n == 0 || std::fwrite(data, 1, n, f_) == n) return Status::ok();
    return Status::error(path_ + ": write failed: " + std::strerror(errno));
  }
  Status pad_to(uint64_t pos, uint64_t target) {
    static const uint8_t zeros[256] = {};
    while (pos < target) {
      const size_t n = size_t(std::min<uint64_t>(target - pos, sizeof zeros));
      KVANT_RETURN_IF_ERROR(write(zeros, n));
      pos += n;
    }
    return Status::ok();
  }
  Status close() {
    FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) return Status::error(path_ + ": close failed: " + std::strerror(errno));
    return Status::ok();
  }

 private:
  std::string path_;
  FILE* f_;
};

}  // namespace

void Writer::set(std::string key, Value value) {
  for (KeyValue& kv : metadata_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  metadata_.push_back(KeyValue{std::move(key), std::move(value)});
}

Status Writer::add_tensor(std::string name, uint32_t type_id, std::vector<uint64_t> ne, const void* data,
                          size_t n_bytes) {
  const std::string what = "tensor '" + name + "'";
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return Status::error("duplicate tensor name '" + name + "'");
  }
  if (ne.empty() || ne.size() > detail::kMaxDims) {
    return Status::error(what + " has n_dims " + std::to_string(ne.size()) + " (must be 1..4)");
  }
  const auto geometry = ggml_type_geometry(type_id);
  if (!geometry) return Status::error(what + " has unknown type id " + std::to_string(type_id));
  if (ne[0] % geometry->block_elems != 0) {
    return Status::error(what + " row length ne[0] " + std::to_string(ne[0]) +
                         " is not a multiple of the block size " + std::to_string(geometry->block_elems));
  }
  uint64_t n = 1;
  for (uint64_t d : ne) {
    if (__builtin_mul_overflow(n, d, &n)) return Status::error(what + " element count overflows");
  }
  uint64_t expected = 0;
  if (n != 0) {
    uint64_t row = 0;
    if (__builtin_mul_overflow(ne[0] / geometry->block_elems, uint64_t(geometry->block_bytes), &row) ||
        __builtin_mul_overflow(n / ne[0], row, &expected)) {
      return Status::error(what + " byte size overflows");
    }
  }
  if (expected != n_bytes) {
    return Status::error(what + " data is " + std::to_string(n_bytes) + " bytes, expected " +
                         std::to_string(expected) + " for type " +
                         std::string(ggml_type_name(static_cast<GgmlType>(type_id))));
  }
  if (n_bytes > 0 && data == nullptr) return Status::error(what + " data is null");
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  tensors_.push_back(PendingTensor{std::move(name), type_id, std::move(ne),
                                   n_bytes ? std::vector<uint8_t>(bytes, bytes + n_bytes) : std::vector<uint8_t>()});
  return Status::ok();
}

Status Writer::write(const std::string& path) const {
  auto alignment = alignment_of(metadata_);
  if (!alignment) return alignment.status().with_context(path);
  const uint64_t align = *alignment;

  Encoder enc;
  enc.u32(detail::kMagic);
  enc.u32(detail::kWriteVersion);
  enc.u64(tensors_.size());
  enc.u64(metadata_.size());
  for (const KeyValue& kv : metadata_) {
    Status st = encode_key_value(enc, kv);
    if (!st) return st.with_context(path);
  }
  std::vector<uint64_t> offsets;
  uint64_t data_size = 0;
  for (const PendingTensor& t : tensors_) {
    const uint64_t offset = *detail::align_up(data_size, align);
    offsets.push_back(offset);
    data_size = offset + t.bytes.size();
    enc.string(t.name);
    enc.u32(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) enc.u64(d);
    enc.u32(t.type_id);
    enc.u64(offset);
  }

  OutFile out(path);
  KVANT_RETURN_IF_ERROR(out.open_status());
  const std::vector<uint8_t>& head = enc.bytes();
  KVANT_RETURN_IF_ERROR(out.write(head.data(), head.size()));
  const uint64_t data_start = *detail::align_up(head.size(), align);
  KVANT_RETURN_IF_ERROR(out.pad_to(head.size(), data_start));
  uint64_t pos = 0;  // relative to data_start
  for (size_t k = 0; k < tensors_.size(); ++k) {
    KVANT_RETURN_IF_ERROR(out.pad_to(pos, offsets[k]));
    KVANT_RETURN_IF_ERROR(out.write(tensors_[k].bytes.data(), tensors_[k].bytes.size()));
    pos = offsets[k] + tensors_[k].bytes.size();
  }
  if (!tensors_.empty()) KVANT_RETURN_IF_ERROR(out.pad_to(pos, *detail::align_up(pos, align)));
  return out.close();
}

}  // namespace kvant::gguf
