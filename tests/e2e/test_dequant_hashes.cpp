// tests/e2e/test_dequant_hashes.cpp — every tensor of every synthetic GGUF, dequantised to f32 row by
// row with quant_traits(type)->dequantize_row, must hash to llama.cpp's sha256 in reference.json; and
// kvant's quantisers must reproduce llama-quantize's bytes for the legacy formats from the F32 file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "core/sha256.h"
#include "gguf/gguf.h"
#include "quant/quant.h"
#include "test_support.h"

namespace kvant {
namespace {

const char* const kSyntheticFiles[] = {
    "synth-llama-F32.gguf",  "synth-llama-F16.gguf",    "synth-llama-BF16.gguf",
    "synth-llama-Q8_0.gguf", "synth-llama-Q4_0.gguf",   "synth-llama-Q4_1.gguf",
    "synth-llama-Q5_0.gguf", "synth-llama-Q5_1.gguf",   "synth-llama-Q2_K.gguf",
    "synth-llama-Q3_K_M.gguf", "synth-llama-Q4_K_M.gguf", "synth-llama-Q5_K_M.gguf",
    "synth-llama-Q6_K.gguf",
};

// Files whose weight format is quantised by ggml's reference quantiser, which kvant mirrors exactly.
const char* const kRequantizableFiles[] = {
    "synth-llama-F16.gguf",  "synth-llama-BF16.gguf", "synth-llama-Q8_0.gguf", "synth-llama-Q4_0.gguf",
    "synth-llama-Q4_1.gguf", "synth-llama-Q5_0.gguf", "synth-llama-Q5_1.gguf",
};

std::string test_name(const ::testing::TestParamInfo<const char*>& info) {
  std::string name = info.param;
  name = name.substr(0, name.find(".gguf"));
  for (char& ch : name) if (ch == '-') ch = '_';
  return name;
}

// Dequantises a whole tensor row by row (rows of ne[0] elements).
Expected<std::vector<float>> dequantize_tensor(const gguf::TensorInfo& info) {
  const QuantTraits* traits = quant_traits(GgmlType(info.type_id));
  if (!traits) return Status::error(info.name + ": no traits for type id " + std::to_string(info.type_id));
  const uint64_t row_elems = info.ne[0];
  if (row_elems % traits->block_elems != 0)
    return Status::error(info.name + ": ne0 " + std::to_string(row_elems) + " not a block multiple");
  const size_t row_bytes = size_t(row_elems / traits->block_elems) * traits->block_bytes;
  const uint64_t rows = info.n_elements / row_elems;
  if (rows * row_bytes != info.n_bytes)
    return Status::error(info.name + ": byte size " + std::to_string(info.n_bytes) + " does not match shape");
  std::vector<float> out(info.n_elements);
  for (uint64_t r = 0; r < rows; ++r)
    traits->dequantize_row(info.data + r * row_bytes, out.data() + r * row_elems, int64_t(row_elems));
  return out;
}

class DequantHashes : public ::testing::TestWithParam<const char*> {};

TEST_P(DequantHashes, EveryTensorMatchesLlamaCpp) {
  const std::string file = GetParam();
  KVANT_REQUIRE_DATA(ref_path, "synthetic/reference.json");
  KVANT_REQUIRE_DATA(gguf_path, "synthetic/" + file);
  const nlohmann::json reference = nlohmann::json::parse(test::read_file(ref_path));
  const nlohmann::json& hashes = reference.at("files").at(file).at("dequant_f32_sha256");

  auto opened = gguf::File::open(gguf_path);
  ASSERT_TRUE(opened.has_value()) << opened.error();
  const gguf::File& gguf_file = opened.value();
  EXPECT_EQ(gguf_file.tensors().size(), hashes.size()) << file;

  for (const gguf::TensorInfo& info : gguf_file.tensors()) {
    SCOPED_TRACE(file + ": " + info.name + " (type " + std::to_string(info.type_id) + ")");
    ASSERT_TRUE(hashes.contains(info.name)) << "tensor not in reference.json";
    auto values = dequantize_tensor(info);
    ASSERT_TRUE(values.has_value()) << values.error();
    const std::string got = sha256_hex(values->data(), values->size() * sizeof(float));
    EXPECT_EQ(got, hashes.at(info.name).get<std::string>());
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, DequantHashes, ::testing::ValuesIn(kSyntheticFiles), test_name);

class Requantize : public ::testing::TestWithParam<const char*> {};

TEST_P(Requantize, QuantiserReproducesLlamaQuantizeBytes) {
  const std::string file = GetParam();
  KVANT_REQUIRE_DATA(f32_path, "synthetic/synth-llama-F32.gguf");
  KVANT_REQUIRE_DATA(gguf_path, "synthetic/" + file);
  auto source = gguf::File::open(f32_path);
  ASSERT_TRUE(source.has_value()) << source.error();
  auto target = gguf::File::open(gguf_path);
  ASSERT_TRUE(target.has_value()) << target.error();

  int checked = 0;
  for (const gguf::TensorInfo& info : target->tensors()) {
    SCOPED_TRACE(file + ": " + info.name);
    const gguf::TensorInfo* src = source->find_tensor(info.name);
    ASSERT_NE(src, nullptr);
    ASSERT_EQ(src->type_id, uint32_t(GgmlType::F32));
    if (info.type_id == uint32_t(GgmlType::F32)) continue;  // norms stay F32
    const QuantTraits* traits = quant_traits(GgmlType(info.type_id));
    ASSERT_NE(traits, nullptr);
    const uint64_t row_elems = info.ne[0];
    const size_t row_bytes = size_t(row_elems / traits->block_elems) * traits->block_bytes;
    const uint64_t rows = info.n_elements / row_elems;
    ASSERT_EQ(rows * row_bytes, info.n_bytes);
    std::vector<uint8_t> got(info.n_bytes);
    const float* x = reinterpret_cast<const float*>(src->data);
    for (uint64_t r = 0; r < rows; ++r)
      traits->quantize_row(x + r * row_elems, got.data() + r * row_bytes, int64_t(row_elems));
    size_t first_diff = got.size();
    for (size_t i = 0; i < got.size(); ++i) {
      if (got[i] != info.data[i]) { first_diff = i; break; }
    }
    EXPECT_EQ(first_diff, got.size()) << "first differing byte " << first_diff << " (block "
                                      << first_diff / traits->block_bytes << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 16);
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Requantize, ::testing::ValuesIn(kRequantizableFiles), test_name);

}  // namespace
}  // namespace kvant
