// gguf/gguf_reader.cpp — GGUF v2/v3 parser over a memory-mapped file and the File accessors/getters.
// Every length, count and offset is checked against the bytes left before it is used or allocated.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <string>

#include "gguf/gguf.h"
#include "gguf/gguf_format.h"
#include "quant/ggml_type.h"

namespace kvant::gguf {

using detail::is_float;
using detail::is_signed;
using detail::is_unsigned;

namespace {

// Everything parsed from one file; File::Impl (private to File) is this state.
struct FileState {
  MappedFile map;
  std::string path;
  uint32_t version = 0;
  uint64_t alignment = detail::kDefaultAlignment;
  uint64_t data_offset = 0;
  std::vector<KeyValue> metadata;
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> key_index;
  std::map<std::string, size_t, std::less<>> tensor_index;
};

constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;  // empty name, 1 dim, type, offset
constexpr uint64_t kMinKeyValueBytes = 8 + 4 + 1;            // empty key, type, 1-byte value

// A name from the file quoted for a one-line message: control bytes become '?', long names are cut.
std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}

std::string str(uint64_t v) { return std::to_string(v); }

// Bounds-checked little-endian reads from the mapped bytes.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  Status need(uint64_t n, std::string_view what) const {
    if (n <= remaining()) return Status::ok();
    return Status::error("unexpected end of file reading " + std::string(what) + " at offset " + str(pos_) +
                         ": need " + str(n) + " bytes, " + str(remaining()) + " left");
  }

  // Reads `size` (1, 2, 4 or 8) bytes as an unsigned little-endian integer.
  Expected<uint64_t> read_bits(uint64_t size, std::string_view what) {
    KVANT_RETURN_IF_ERROR(need(size, what));
    uint64_t v = 0;
    for (uint64_t b = 0; b < size; ++b) v |= uint64_t(data_[pos_ + b]) << (8 * b);
    pos_ += size;
    return v;
  }
  Expected<uint32_t> read_u32(std::string_view what) {
    KVANT_ASSIGN_OR_RETURN(uint64_t v, read_bits(4, what));
    return static_cast<uint32_t>(v);
  }
  Expected<uint64_t> read_u64(std::string_view what) { return read_bits(8, what); }

  Expected<std::string> read_string(std::string_view what) {
    const uint64_t at = pos_;
    KVANT_ASSIGN_OR_RETURN(uint64_t len, read_u64(what));
    if (len > remaining()) {
      return Status::error(std::string(what) + " string length " + str(len) + " at offset " + str(at) +
                           " exceeds the " + str(remaining()) + " bytes left");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), size_t(len));
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

int64_t sign_extend(uint64_t raw, uint64_t size) {
  if (size == 8) return static_cast<int64_t>(raw);
  const uint64_t sign = uint64_t(1) << (8 * size - 1);
  return static_cast<int64_t>((raw ^ sign) - sign);
}

double float_from_bits(uint64_t raw, ValueType type) {
  if (type == ValueType::FLOAT32) {
    float f;
    const uint32_t bits = static_cast<uint32_t>(raw);
    std::memcpy(&f, &bits, sizeof f);
    return f;
  }
  double d;
  std::memcpy(&d, &raw, sizeof d);
  return d;
}

class Parser {
 public:
  explicit Parser(Cursor& cur) : cur_(cur) {}

  // Reads one value of a known `type` for metadata key `key` into `out`.
  Status read_value(ValueType type, const std::string& key, Value& out) {
    out.type = type;
    if (type == ValueType::ARRAY) return read_array(key, 1, out);
    if (type == ValueType::STRING) {
      KVANT_ASSIGN_OR_RETURN(out.str, cur_.read_string("value of key " + quoted(key)));
      return Status::ok();
    }
    const uint64_t size = *detail::scalar_size(type);
    KVANT_ASSIGN_OR_RETURN(uint64_t raw, cur_.read_bits(size, "value of key " + quoted(key)));
    if (is_signed(type)) out.i = sign_extend(raw, size);
    else if (is_float(type)) out.f = float_from_bits(raw, type);
    else out.u = (type == ValueType::BOOL) ? (raw != 0 ? 1 : 0) : raw;
    return Status::ok();
  }

 private:
  // Reads element type, count and elements of an array (depth 1 = the key's own value).
  Status read_array(const std::string& key, int depth, Value& out) {
    out.type = ValueType::ARRAY;
    const std::string what = "array of key " + quoted(key);
    KVANT_ASSIGN_OR_RETURN(uint32_t raw_elem, cur_.read_u32(what + " element type"));
    if (!detail::is_known(raw_elem)) {
      return Status::error("key " + quoted(key) + " array has unknown element type " + str(raw_elem));
    }
    const ValueType elem = static_cast<ValueType>(raw_elem);
    out.elem_type = elem;
    const uint64_t count_at = cur_.pos();
    KVANT_ASSIGN_OR_RETURN(uint64_t count, cur_.read_u64(what + " count"));
    const uint64_t min_size = detail::min_encoded_size(elem);
    if (count > cur_.remaining() / min_size) {
      return Status::error("key " + quoted(key) + " array count " + str(count) + " of " +
                           std::string(value_type_name(elem)) + " at offset " + str(count_at) +
                           " exceeds what the " + str(cur_.remaining()) + " bytes left can hold");
    }
    if (elem == ValueType::ARRAY && depth >= detail::kMaxArrayDepth) {
      return Status::error("key " + quoted(key) + " has arrays nested deeper than " +
                           str(detail::kMaxArrayDepth));
    }
    constexpr uint64_t kMaxReserve = 1 << 16;  // growth beyond this follows the bytes actually read
    const size_t reserve = size_t(std::min(count, kMaxReserve));
    if (elem == ValueType::STRING) {
      out.arr_str.reserve(reserve);
      const std::string elem_what = "element of " + what;
      for (uint64_t k = 0; k < count; ++k) {
        KVANT_ASSIGN_OR_RETURN(std::string s, cur_.read_string(elem_what));
        out.arr_str.push_back(std::move(s));
      }
      return Status::ok();
    }
    if (elem == ValueType::ARRAY) {
      out.arrays.reserve(reserve);
      for (uint64_t k = 0; k < count; ++k) {
        out.arrays.emplace_back();
        KVANT_RETURN_IF_ERROR(read_array(key, depth + 1, out.arrays.back()));
      }
      return Status::ok();
    }
    // Fixed-size scalars: the count check above guarantees count * size <= remaining.
    const uint64_t size = *detail::scalar_size(elem);
    const std::string elem_what = "element of " + what;
    if (is_signed(elem)) out.arr_i.resize(size_t(count));
    else if (is_float(elem)) out.arr_f.resize(size_t(count));
    else out.arr_u.resize(size_t(count));
    for (uint64_t k = 0; k < count; ++k) {
      KVANT_ASSIGN_OR_RETURN(uint64_t raw, cur_.read_bits(size, elem_what));
      if (is_signed(elem)) out.arr_i[k] = sign_extend(raw, size);
      else if (is_float(elem)) out.arr_f[k] = float_from_bits(raw, elem);
      else out.arr_u[k] = (elem == ValueType::BOOL) ? (raw != 0 ? 1 : 0) : raw;
    }
    return Status::ok();
  }

  Cursor& cur_;
};

// Alignment from general.alignment: a non-negative integer that is a nonzero power of two.
Expected<uint64_t> read_alignment(const FileState& impl) {
  auto it = impl.key_index.find("general.alignment");
  if (it == impl.key_index.end()) return detail::kDefaultAlignment;
  const Value& v = impl.metadata[it->second].value;
  uint64_t a = 0;
  if (is_unsigned(v.type)) {
    a = v.u;
  } else if (is_signed(v.type) && v.i >= 0) {
    a = uint64_t(v.i);
  } else if (is_signed(v.type)) {
    return Status::error("general.alignment " + std::to_string(v.i) + " is not a nonzero power of two");
  } else {
    return Status::error("general.alignment has type " + std::string(value_type_name(v.type)) +
                         ", expected uint32");
  }
  if (!detail::is_power_of_two(a)) {
    return Status::error("general.alignment " + str(a) + " is not a nonzero power of two");
  }
  return a;
}

// Reads one tensor directory entry and checks its shape, type and offset alignment.
Status read_tensor_info(Cursor& cur, uint64_t index, uint64_t alignment, TensorInfo& t) {
  KVANT_ASSIGN_OR_RETURN(t.name, cur.read_string("name of tensor #" + str(index)));
  const std::string name = "tensor " + quoted(t.name);
  KVANT_ASSIGN_OR_RETURN(t.n_dims, cur.read_u32("n_dims of " + name));
  if (t.n_dims == 0 || t.n_dims > detail::kMaxDims) {
    return Status::error(name + " has n_dims " + str(t.n_dims) + " (must be 1.." + str(detail::kMaxDims) + ")");
  }
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    KVANT_ASSIGN_OR_RETURN(t.ne[d], cur.read_u64("ne[" + str(d) + "] of " + name));
  }
  KVANT_ASSIGN_OR_RETURN(t.type_id, cur.read_u32("type of " + name));
  KVANT_ASSIGN_OR_RETURN(t.offset, cur.read_u64("offset of " + name));

  std::string shape = "[";
  for (uint32_t d = 0; d < t.n_dims; ++d) shape += (d ? ", " : "") + str(t.ne[d]);
  shape += "]";
  uint64_t n = 1;
  for (uint32_t d = 0; d < t.n_dims; ++d) {
    if (__builtin_mul_overflow(n, t.ne[d], &n) || n > uint64_t(std::numeric_limits<int64_t>::max())) {
      return Status::error(name + " element count overflows (ne " + shape + ")");
    }
  }
  t.n_elements = n;
  const auto geometry = ggml_type_geometry(t.type_id);
  if (!geometry) return Status::error(name + " has unknown type id " + str(t.type_id));
  const std::string type_name(ggml_type_name(static_cast<GgmlType>(t.type_id)));
  if (t.ne[0] % geometry->block_elems != 0) {
    return Status::error(name + " row length ne[0] " + str(t.ne[0]) + " is not a multiple of the block size " +
                         str(geometry->block_elems) + " of type " + type_name);
  }
  uint64_t bytes = 0;
  if (n != 0) {
    const uint64_t rows = n / t.ne[0];
    uint64_t row = 0;
    if (__builtin_mul_overflow(t.ne[0] / geometry->block_elems, uint64_t(geometry->block_bytes), &row) ||
        __builtin_mul_overflow(rows, row, &bytes)) {
      return Status::error(name + " byte size overflows (ne " + shape + ", type " + type_name + ")");
    }
  }
  t.n_bytes = bytes;
  if (t.offset % alignment != 0) {
    return Status::error(name + " offset " + str(t.offset) + " is not a multiple of the alignment " + str(alignment));
  }
  return Status::ok();
}

// Parses header, metadata and tensor directory of the mapped file into impl.
Status parse(FileState& impl) {
  Cursor cur(impl.map.data(), impl.map.size());
  KVANT_ASSIGN_OR_RETURN(uint32_t magic, cur.read_u32("magic"));
  if (magic != detail::kMagic) {
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", magic);
    return Status::error(std::string("bad magic ") + hex + " (not a GGUF file)");
  }
  KVANT_ASSIGN_OR_RETURN(impl.version, cur.read_u32("version"));
  if (impl.version != 2 && impl.version != 3) {
    return Status::error("unsupported GGUF version " + str(impl.version) + " (supported: 2, 3)");
  }
  KVANT_ASSIGN_OR_RETURN(uint64_t n_tensors, cur.read_u64("tensor count"));
  KVANT_ASSIGN_OR_RETURN(uint64_t n_kv, cur.read_u64("metadata count"));
  if (n_kv > cur.remaining() / kMinKeyValueBytes) {
    return Status::error("metadata count " + str(n_kv) + " exceeds what the " + str(cur.remaining()) +
                         " bytes left can hold");
  }
  if (n_tensors > cur.remaining() / kMinTensorInfoBytes) {
    return Status::error("tensor count " + str(n_tensors) + " exceeds what the " + str(cur.remaining()) +
                         " bytes left can hold");
  }

  Parser parser(cur);
  impl.metadata.reserve(size_t(n_kv));
  for (uint64_t k = 0; k < n_kv; ++k) {
    KeyValue kv;
    KVANT_ASSIGN_OR_RETURN(kv.key, cur.read_string("key of metadata entry #" + str(k)));
    KVANT_ASSIGN_OR_RETURN(uint32_t raw_type, cur.read_u32("value type of key " + quoted(kv.key)));
    if (!detail::is_known(raw_type)) {
      return Status::error("key " + quoted(kv.key) + " has unknown value type " + str(raw_type));
    }
    KVANT_RETURN_IF_ERROR(parser.read_value(static_cast<ValueType>(raw_type), kv.key, kv.value));
    if (!impl.key_index.emplace(kv.key, impl.metadata.size()).second) {
      return Status::error("duplicate key " + quoted(kv.key));
    }
    impl.metadata.push_back(std::move(kv));
  }
  KVANT_ASSIGN_OR_RETURN(impl.alignment, read_alignment(impl));

  if (n_tensors > cur.remaining() / kMinTensorInfoBytes) {
    return Status::error("tensor count " + str(n_tensors) + " exceeds what the " + str(cur.remaining()) +
                         " bytes left after the metadata can hold");
  }
  impl.tensors.resize(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo& t = impl.tensors[k];
    KVANT_RETURN_IF_ERROR(read_tensor_info(cur, k, impl.alignment, t));
    if (!impl.tensor_index.emplace(t.name, size_t(k)).second) {
      return Status::error("duplicate tensor name " + quoted(t.name));
    }
  }

  const uint64_t file_size = impl.map.size();
  const auto data_offset = detail::align_up(cur.pos(), impl.alignment);
  if (!data_offset) return Status::error("data section offset overflows");
  impl.data_offset = *data_offset;
  if (impl.tensors.empty()) return Status::ok();  // vocab-only files may end before the padding
  if (impl.data_offset > file_size) {
    return Status::error("data section offset " + str(impl.data_offset) + " is past end of file (size " +
                         str(file_size) + ")");
  }
  const uint64_t available = file_size - impl.data_offset;
  for (TensorInfo& t : impl.tensors) {
    if (t.offset > available || t.n_bytes > available - t.offset) {
      uint64_t abs = 0;
      const std::string where = __builtin_add_overflow(impl.data_offset, t.offset, &abs)
                                    ? "data section + " + str(t.offset) : str(abs);
      return Status::error("tensor " + quoted(t.name) + " data [offset " + where + ", " + str(t.n_bytes) +
                           " bytes] extends past end of file (size " + str(file_size) + ")");
    }
    t.data = impl.map.data() + impl.data_offset + t.offset;
  }
  return Status::ok();
}

std::string describe(const Value& v) {
  if (v.type != ValueType::ARRAY) return std::string(value_type_name(v.type));
  return "array of " + std::string(value_type_name(v.elem_type));
}

}  // namespace

struct File::Impl : FileState {};

File::File() : impl_(std::make_unique<Impl>()) {}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

Expected<File> File::open(const std::string& path) {
  File file;
  file.impl_->path = path;
  KVANT_ASSIGN_OR_RETURN(file.impl_->map, MappedFile::open(path));
  Status st = parse(*file.impl_);
  if (!st) return st.with_context(path);
  return file;
}

const std::string& File::path() const { return impl_->path; }
uint32_t File::version() const { return impl_->version; }
uint64_t File::alignment() const { return impl_->alignment; }
uint64_t File::data_offset() const { return impl_->data_offset; }
const std::vector<KeyValue>& File::metadata() const { return impl_->metadata; }
const std::vector<TensorInfo>& File::tensors() const { return impl_->tensors; }

const Value* File::find(std::string_view key) const {
  auto it = impl_->key_index.find(key);
  return it == impl_->key_index.end() ? nullptr : &impl_->metadata[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

namespace {

Status wrong_type(const std::string& path, std::string_view key, std::string_view expected, const Value& v) {
  return Status::error(path + ": key " + quoted(key) + " has type " + describe(v) + ", expected " +
                       std::string(expected));
}

Status missing(const std::string& path, std::string_view key) {
  return Status::error(path + ": key " + quoted(key) + " not found");
}

// Converters shared by the plain and the optional getters; `path` only for messages.
Expected<uint64_t> as_uint(const std::string& path, std::string_view key, const Value& v) {
  if (is_unsigned(v.type)) return v.u;
  if (is_signed(v.type)) {
    if (v.i >= 0) return uint64_t(v.i);
    return Status::error(path + ": key " + quoted(key) + " has negative value " + std::to_string(v.i) +
                         ", expected unsigned integer");
  }
  return wrong_type(path, key, "unsigned integer", v);
}

Expected<int64_t> as_int(const std::string& path, std::string_view key, const Value& v) {
  if (is_signed(v.type)) return v.i;
  if (is_unsigned(v.type)) {
    if (v.u <= uint64_t(std::numeric_limits<int64_t>::max())) return int64_t(v.u);
    return Status::error(path + ": key " + quoted(key) + " value " + str(v.u) + " does not fit int64");
  }
  return wrong_type(path, key, "integer", v);
}

Expected<double> as_float(const std::string& path, std::string_view key, const Value& v) {
  if (is_float(v.type)) return v.f;
  if (is_signed(v.type)) return double(v.i);
  if (is_unsigned(v.type)) return double(v.u);
  return wrong_type(path, key, "float or integer", v);
}

Expected<bool> as_bool(const std::string& path, std::string_view key, const Value& v) {
  if (v.type == ValueType::BOOL) return v.u != 0;
  return wrong_type(path, key, "bool", v);
}

Expected<std::string> as_string(const std::string& path, std::string_view key, const Value& v) {
  if (v.type == ValueType::STRING) return v.str;
  return wrong_type(path, key, "string", v);
}

}  // namespace

Expected<uint64_t> File::get_uint(std::string_view key) const {
  const Value* v = find(key);
  return v ? as_uint(impl_->path, key, *v) : Expected<uint64_t>(missing(impl_->path, key));
}

Expected<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  return v ? as_int(impl_->path, key, *v) : Expected<int64_t>(missing(impl_->path, key));
}

Expected<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  return v ? as_float(impl_->path, key, *v) : Expected<double>(missing(impl_->path, key));
}

Expected<bool> File::get_bool(std::string_view key) const {
  const Value* v = find(key);
  return v ? as_bool(impl_->path, key, *v) : Expected<bool>(missing(impl_->path, key));
}

Expected<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  return v ? as_string(impl_->path, key, *v) : Expected<std::string>(missing(impl_->path, key));
}

Expected<const std::vector<std::string>*> File::get_string_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(impl_->path, key);
  if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING) {
    return wrong_type(impl_->path, key, "array of string", *v);
  }
  return &v->arr_str;
}

Expected<std::vector<float>> File::get_float_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(impl_->path, key);
  if (v->type != ValueType::ARRAY) return wrong_type(impl_->path, key, "array of float", *v);
  std::vector<float> out;
  if (is_float(v->elem_type)) out.assign(v->arr_f.begin(), v->arr_f.end());
  else if (is_signed(v->elem_type)) out.assign(v->arr_i.begin(), v->arr_i.end());
  else if (is_unsigned(v->elem_type)) out.assign(v->arr_u.begin(), v->arr_u.end());
  else return wrong_type(impl_->path, key, "array of float", *v);
  return out;
}

Expected<std::vector<int64_t>> File::get_int_array(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return missing(impl_->path, key);
  if (v->type == ValueType::ARRAY && is_signed(v->elem_type)) return v->arr_i;
  if (v->type != ValueType::ARRAY || !is_unsigned(v->elem_type)) {
    return wrong_type(impl_->path, key, "array of integer", *v);
  }
  std::vector<int64_t> out;
  out.reserve(v->arr_u.size());
  for (size_t k = 0; k < v->arr_u.size(); ++k) {
    if (v->arr_u[k] > uint64_t(std::numeric_limits<int64_t>::max())) {
      return Status::error(impl_->path + ": key " + quoted(key) + " element " + str(k) + " value " +
                           str(v->arr_u[k]) + " does not fit int64");
    }
    out.push_back(int64_t(v->arr_u[k]));
  }
  return out;
}

Expected<std::optional<uint64_t>> File::get_uint_opt(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::optional<uint64_t>();
  KVANT_ASSIGN_OR_RETURN(uint64_t out, as_uint(impl_->path, key, *v));
  return std::optional<uint64_t>(out);
}

Expected<std::optional<double>> File::get_float_opt(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::optional<double>();
  KVANT_ASSIGN_OR_RETURN(double out, as_float(impl_->path, key, *v));
  return std::optional<double>(out);
}

Expected<std::optional<bool>> File::get_bool_opt(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::optional<bool>();
  KVANT_ASSIGN_OR_RETURN(bool out, as_bool(impl_->path, key, *v));
  return std::optional<bool>(out);
}

Expected<std::optional<std::string>> File::get_string_opt(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return std::optional<std::string>();
  KVANT_ASSIGN_OR_RETURN(std::string out, as_string(impl_->path, key, *v));
  return std::optional<std::string>(out);
}

}  // namespace kvant::gguf
