// tests/unit/test_gguf.cpp — GGUF reader/writer: round trips of every value type, the shared-data GGUFs,
// ggml type geometry, and a corpus of malformed files that must each fail with a precise message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>

#include "gguf/gguf.h"
#include "quant/ggml_type.h"
#include "test_support.h"

namespace kvant::gguf {
namespace {

std::string write_temp(const std::string& name, const std::vector<uint8_t>& bytes) {
  static const std::string dir = test::temp_dir();
  const std::string path = dir + "/" + name;
  std::remove(path.c_str());  // a fresh inode: rewriting a truncated file makes ext4 flush it on close
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

// ----------------------------------------------------------------------------------------------
// ggml type table

TEST(GgmlType, NamesAndGeometry) {
  EXPECT_EQ(ggml_type_name(GgmlType::F32), "f32");
  EXPECT_EQ(ggml_type_name(GgmlType::Q4_K), "q4_K");
  EXPECT_EQ(ggml_type_name(GgmlType::BF16), "bf16");
  EXPECT_EQ(ggml_type_name(GgmlType::IQ2_XXS), "iq2_xxs");
  EXPECT_EQ(ggml_type_name(GgmlType::MXFP4), "mxfp4");
  struct Case { GgmlType type; uint32_t elems, bytes; };
  const Case cases[] = {
      {GgmlType::F32, 1, 4},       {GgmlType::F16, 1, 2},        {GgmlType::Q4_0, 32, 18},
      {GgmlType::Q8_0, 32, 34},    {GgmlType::Q2_K, 256, 84},    {GgmlType::Q3_K, 256, 110},
      {GgmlType::Q4_K, 256, 144},  {GgmlType::Q5_K, 256, 176},   {GgmlType::Q6_K, 256, 210},
      {GgmlType::Q8_K, 256, 292},  {GgmlType::IQ2_XXS, 256, 66}, {GgmlType::IQ4_XS, 256, 136},
      {GgmlType::TQ1_0, 256, 54},  {GgmlType::MXFP4, 32, 17},    {GgmlType::F64, 1, 8},
  };
  for (const Case& c : cases) {
    auto g = ggml_type_geometry(static_cast<uint32_t>(c.type));
    ASSERT_TRUE(g.has_value()) << ggml_type_name(c.type);
    EXPECT_EQ(g->block_elems, c.elems) << ggml_type_name(c.type);
    EXPECT_EQ(g->block_bytes, c.bytes) << ggml_type_name(c.type);
  }
  for (uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 40u, 1000u}) EXPECT_FALSE(ggml_type_geometry(id)) << id;
  // Every id with geometry has a real name, and every named id has geometry.
  for (uint32_t id = 0; id < 64; ++id) {
    const bool named = ggml_type_name(static_cast<GgmlType>(id)) != "unknown";
    EXPECT_EQ(named, ggml_type_geometry(id).has_value()) << id;
  }
  EXPECT_EQ(row_bytes(*ggml_type_geometry(12), 512), 288u);
}

// ----------------------------------------------------------------------------------------------
// Writer -> reader round trip

Value nested_array(std::vector<Value> inner, ValueType inner_type = ValueType::ARRAY) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = inner_type;
  v.arrays = std::move(inner);
  return v;
}

Value scalar(ValueType t, uint64_t u, int64_t i, double f) {
  Value v;
  v.type = t;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

Value uint_array(ValueType elem, std::vector<uint64_t> xs) {
  Value v;
  v.type = ValueType::ARRAY;
  v.elem_type = elem;
  v.arr_u = std::move(xs);
  return v;
}

// Metadata covering every value type, plus nested and empty arrays.
Writer rich_writer() {
  Writer w;
  w.set("general.architecture", Value::of_string("llama"));
  w.set("t.u8", scalar(ValueType::UINT8, 250, 0, 0));
  w.set("t.i8", scalar(ValueType::INT8, 0, -100, 0));
  w.set("t.u16", scalar(ValueType::UINT16, 65000, 0, 0));
  w.set("t.i16", scalar(ValueType::INT16, 0, -32000, 0));
  w.set("t.u32", Value::of_u32(4000000000u));
  w.set("t.i32", Value::of_i32(-2000000000));
  w.set("t.f32", Value::of_f32(1e-5f));
  w.set("t.bool", Value::of_bool(true));
  w.set("t.string", Value::of_string("h\xC3\xA9llo \n world"));
  w.set("t.empty_string", Value::of_string(""));
  w.set("t.u64", Value::of_u64(0xFFFFFFFFFFFFFFFFull));
  w.set("t.i64", scalar(ValueType::INT64, 0, std::numeric_limits<int64_t>::min(), 0));
  w.set("t.f64", scalar(ValueType::FLOAT64, 0, 0, 3.141592653589793));
  w.set("t.arr_u8", uint_array(ValueType::UINT8, {0, 1, 255}));
  w.set("t.arr_u16", uint_array(ValueType::UINT16, {65535, 2}));
  w.set("t.arr_u32", uint_array(ValueType::UINT32, {0xFFFFFFFFu}));
  w.set("t.arr_u64", uint_array(ValueType::UINT64, {1ull << 63}));
  w.set("t.arr_bool", uint_array(ValueType::BOOL, {1, 0, 1}));
  w.set("t.arr_i32", Value::of_i32_array({-1, 0, 7}));
  Value i8s;
  i8s.type = ValueType::ARRAY;
  i8s.elem_type = ValueType::INT8;
  i8s.arr_i = {-128, 127};
  w.set("t.arr_i8", i8s);
  Value i16s = i8s;
  i16s.elem_type = ValueType::INT16;
  i16s.arr_i = {-32768, 32767};
  w.set("t.arr_i16", i16s);
  Value i64s = i8s;
  i64s.elem_type = ValueType::INT64;
  i64s.arr_i = {std::numeric_limits<int64_t>::max(), -5};
  w.set("t.arr_i64", i64s);
  w.set("t.arr_f32", Value::of_f32_array({0.5f, -2.25f}));
  Value f64s;
  f64s.type = ValueType::ARRAY;
  f64s.elem_type = ValueType::FLOAT64;
  f64s.arr_f = {1e300, -0.0};
  w.set("t.arr_f64", f64s);
  w.set("t.arr_str", Value::of_string_array({"a", "", "\xE2\x96\x81the"}));
  w.set("t.arr_empty", Value::of_string_array({}));
  // [[1,2],[3]] and [[["x"]], []] (three levels).
  w.set("t.nested", nested_array({Value::of_i32_array({1, 2}), Value::of_i32_array({3})}));
  w.set("t.nested3", nested_array({nested_array({Value::of_string_array({"x"})}), nested_array({})}));
  return w;
}

TEST(GgufRoundTrip, EveryValueTypeAndTensors) {
  Writer w = rich_writer();
  w.set("t.replaced", Value::of_u32(1));
  w.set("t.last", Value::of_u32(9));
  w.set("t.replaced", Value::of_string("second"));  // replaces in place, keeps its position
  std::vector<float> a(8);
  for (size_t k = 0; k < a.size(); ++k) a[k] = float(k) * 0.5f;
  std::vector<uint8_t> q8(2 * 34 * 3), q4k(144 * 2);
  for (size_t k = 0; k < q8.size(); ++k) q8[k] = uint8_t(k * 7);
  for (size_t k = 0; k < q4k.size(); ++k) q4k[k] = uint8_t(k * 13 + 1);
  ASSERT_TRUE(w.add_tensor("a", 0, {8}, a.data(), a.size() * 4));
  ASSERT_TRUE(w.add_tensor("blk.0.q8", 8, {64, 3}, q8.data(), q8.size()));
  ASSERT_TRUE(w.add_tensor("blk.0.q4k", 12, {256, 1, 2}, q4k.data(), q4k.size()));
  const std::string path = test::temp_dir() + "/rich.gguf";
  ASSERT_TRUE(w.write(path));

  auto file = File::open(path);
  ASSERT_TRUE(file) << file.error();
  const File& f = *file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset() % 32, 0u);

  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.find("t.u8")->type, ValueType::UINT8);
  EXPECT_EQ(*f.get_uint("t.u8"), 250u);
  EXPECT_EQ(*f.get_int("t.i8"), -100);
  EXPECT_EQ(f.find("t.i8")->type, ValueType::INT8);
  EXPECT_EQ(*f.get_uint("t.u16"), 65000u);
  EXPECT_EQ(*f.get_int("t.i16"), -32000);
  EXPECT_EQ(*f.get_uint("t.u32"), 4000000000u);
  EXPECT_EQ(*f.get_int("t.i32"), -2000000000);
  EXPECT_EQ(*f.get_float("t.f32"), double(1e-5f));
  EXPECT_EQ(*f.get_bool("t.bool"), true);
  EXPECT_EQ(*f.get_string("t.string"), "h\xC3\xA9llo \n world");
  EXPECT_EQ(*f.get_string("t.empty_string"), "");
  EXPECT_EQ(*f.get_uint("t.u64"), 0xFFFFFFFFFFFFFFFFull);
  EXPECT_EQ(*f.get_int("t.i64"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*f.get_float("t.f64"), 3.141592653589793);
  EXPECT_EQ(f.find("t.arr_u8")->arr_u, (std::vector<uint64_t>{0, 1, 255}));
  EXPECT_EQ(f.find("t.arr_u16")->arr_u, (std::vector<uint64_t>{65535, 2}));
  EXPECT_EQ(f.find("t.arr_u32")->arr_u, (std::vector<uint64_t>{0xFFFFFFFFu}));
  EXPECT_EQ(f.find("t.arr_u64")->arr_u, (std::vector<uint64_t>{1ull << 63}));
  EXPECT_EQ(f.find("t.arr_bool")->arr_u, (std::vector<uint64_t>{1, 0, 1}));
  EXPECT_EQ(f.find("t.arr_bool")->elem_type, ValueType::BOOL);
  EXPECT_EQ(*f.get_int_array("t.arr_i32"), (std::vector<int64_t>{-1, 0, 7}));
  EXPECT_EQ(*f.get_int_array("t.arr_i8"), (std::vector<int64_t>{-128, 127}));
  EXPECT_EQ(*f.get_int_array("t.arr_i16"), (std::vector<int64_t>{-32768, 32767}));
  EXPECT_EQ(*f.get_int_array("t.arr_i64"), (std::vector<int64_t>{std::numeric_limits<int64_t>::max(), -5}));
  EXPECT_EQ(*f.get_float_array("t.arr_f32"), (std::vector<float>{0.5f, -2.25f}));
  EXPECT_EQ(f.find("t.arr_f64")->arr_f[0], 1e300);
  EXPECT_TRUE(std::signbit(f.find("t.arr_f64")->arr_f[1]));
  EXPECT_EQ(**f.get_string_array("t.arr_str"), (std::vector<std::string>{"a", "", "\xE2\x96\x81the"}));
  EXPECT_EQ(f.find("t.arr_empty")->array_size(), 0u);
  EXPECT_EQ(f.find("t.arr_empty")->elem_type, ValueType::STRING);

  const Value* nested = f.find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->elem_type, ValueType::ARRAY);
  ASSERT_EQ(nested->array_size(), 2u);
  EXPECT_EQ(nested->arrays[0].elem_type, ValueType::INT32);
  EXPECT_EQ(nested->arrays[0].arr_i, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(nested->arrays[1].arr_i, (std::vector<int64_t>{3}));
  const Value* n3 = f.find("t.nested3");
  ASSERT_NE(n3, nullptr);
  ASSERT_EQ(n3->arrays.size(), 2u);
  ASSERT_EQ(n3->arrays[0].arrays.size(), 1u);
  EXPECT_EQ(n3->arrays[0].arrays[0].arr_str, (std::vector<std::string>{"x"}));
  EXPECT_EQ(n3->arrays[1].array_size(), 0u);

  // Insertion order, with the replaced key keeping its first position.
  const auto& md = f.metadata();
  ASSERT_GE(md.size(), 3u);
  EXPECT_EQ(md.front().key, "general.architecture");
  EXPECT_EQ(md[md.size() - 2].key, "t.replaced");
  EXPECT_EQ(*f.get_string("t.replaced"), "second");
  EXPECT_EQ(md.back().key, "t.last");

  ASSERT_EQ(f.tensors().size(), 3u);
  const TensorInfo* ta = f.find_tensor("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->n_dims, 1u);
  EXPECT_EQ(ta->n_elements, 8u);
  EXPECT_EQ(ta->n_bytes, 32u);
  EXPECT_EQ(std::memcmp(ta->data, a.data(), 32), 0);
  const TensorInfo* tq8 = f.find_tensor("blk.0.q8");
  ASSERT_NE(tq8, nullptr);
  EXPECT_EQ(tq8->type_id, 8u);
  EXPECT_EQ(tq8->ne[0], 64u);
  EXPECT_EQ(tq8->ne[1], 3u);
  EXPECT_EQ(tq8->ne[2], 1u);
  EXPECT_EQ(tq8->n_bytes, q8.size());
  EXPECT_EQ(std::memcmp(tq8->data, q8.data(), q8.size()), 0);
  const TensorInfo* tq4 = f.find_tensor("blk.0.q4k");
  ASSERT_NE(tq4, nullptr);
  EXPECT_EQ(tq4->n_dims, 3u);
  EXPECT_EQ(tq4->n_elements, 512u);
  EXPECT_EQ(tq4->n_bytes, 288u);
  EXPECT_EQ(std::memcmp(tq4->data, q4k.data(), q4k.size()), 0);
  for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % 32, 0u) << t.name;
  EXPECT_EQ(f.find_tensor("missing"), nullptr);
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST(GgufRoundTrip, CustomAlignmentAndVersionlessDefaults) {
  Writer w;
  w.set("general.alignment", Value::of_u32(64));
  std::vector<uint8_t> b(6, 0xAB);
  ASSERT_TRUE(w.add_tensor("x", 24 /* i8 */, {6}, b.data(), b.size()));
  ASSERT_TRUE(w.add_tensor("y", 24, {6}, b.data(), b.size()));
  const std::string path = test::temp_dir() + "/align64.gguf";
  ASSERT_TRUE(w.write(path));
  auto f = File::open(path);
  ASSERT_TRUE(f) << f.error();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("y")->offset, 64u);
  EXPECT_EQ(f->find_tensor("y")->data[5], 0xAB);
  EXPECT_EQ(test::read_bytes(path).size() % 64, 0u);  // data section padded to the alignment
}

TEST(GgufWriter, RejectsBadTensors) {
  Writer w;
  std::vector<uint8_t> b(64);
  Status st = w.add_tensor("bad_type", 99, {4}, b.data(), 4);
  EXPECT_FALSE(st);
  EXPECT_NE(st.message().find("99"), std::string::npos) << st.message();
  st = w.add_tensor("short", 8, {32}, b.data(), 33);
  EXPECT_NE(st.message().find("34"), std::string::npos) << st.message();
  st = w.add_tensor("ragged", 8, {31}, b.data(), 34);
  EXPECT_NE(st.message().find("ragged"), std::string::npos) << st.message();
  st = w.add_tensor("dims", 0, {1, 1, 1, 1, 1}, b.data(), 4);
  EXPECT_NE(st.message().find("n_dims 5"), std::string::npos) << st.message();
  ASSERT_TRUE(w.add_tensor("ok", 0, {4}, b.data(), 16));
  st = w.add_tensor("ok", 0, {4}, b.data(), 16);
  EXPECT_NE(st.message().find("duplicate tensor name 'ok'"), std::string::npos) << st.message();
  w.set("general.alignment", Value::of_u32(3));
  st = w.write(test::temp_dir() + "/never.gguf");
  EXPECT_NE(st.message().find("general.alignment"), std::string::npos) << st.message();
}

// ----------------------------------------------------------------------------------------------
// Typed getters

TEST(GgufGetters, ConversionsAndErrors) {
  Writer w;
  w.set("pos_i32", Value::of_i32(7));
  w.set("neg_i32", Value::of_i32(-3));
  w.set("name", Value::of_string("x"));
  w.set("flag", Value::of_bool(false));
  w.set("u32", Value::of_u32(12));
  w.set("ints", Value::of_i32_array({4, 5}));
  w.set("big", uint_array(ValueType::UINT64, {1ull << 63}));
  w.set("strs", Value::of_string_array({"p"}));
  const std::string path = test::temp_dir() + "/getters.gguf";
  ASSERT_TRUE(w.write(path));
  auto file = File::open(path);
  ASSERT_TRUE(file) << file.error();
  const File& f = *file;

  EXPECT_EQ(*f.get_uint("pos_i32"), 7u);
  EXPECT_EQ(*f.get_int("u32"), 12);
  EXPECT_EQ(*f.get_float("u32"), 12.0);
  EXPECT_EQ(*f.get_float("neg_i32"), -3.0);
  EXPECT_EQ(*f.get_bool("flag"), false);
  EXPECT_EQ(*f.get_float_array("ints"), (std::vector<float>{4.f, 5.f}));

  auto neg = f.get_uint("neg_i32");
  ASSERT_FALSE(neg);
  EXPECT_NE(neg.error().find(path), std::string::npos);
  EXPECT_NE(neg.error().find("'neg_i32'"), std::string::npos);
  EXPECT_NE(neg.error().find("-3"), std::string::npos) << neg.error();

  auto wrong = f.get_uint("name");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().find("'name'"), std::string::npos);
  EXPECT_NE(wrong.error().find("string"), std::string::npos);
  EXPECT_NE(wrong.error().find("unsigned"), std::string::npos) << wrong.error();

  auto not_bool = f.get_bool("u32");
  ASSERT_FALSE(not_bool);
  EXPECT_NE(not_bool.error().find("uint32"), std::string::npos) << not_bool.error();
  EXPECT_FALSE(f.get_string("u32"));
  EXPECT_FALSE(f.get_float("name"));
  EXPECT_FALSE(f.get_string_array("ints"));
  EXPECT_FALSE(f.get_float_array("strs"));
  EXPECT_FALSE(f.get_int_array("big"));
  EXPECT_NE(f.get_int_array("strs").error().find("array of string"), std::string::npos);

  auto missing = f.get_uint("nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("'nope'"), std::string::npos);
  EXPECT_NE(missing.error().find(path), std::string::npos);

  EXPECT_FALSE(f.get_uint_opt("nope")->has_value());
  EXPECT_FALSE(f.get_float_opt("nope")->has_value());
  EXPECT_FALSE(f.get_bool_opt("nope")->has_value());
  EXPECT_FALSE(f.get_string_opt("nope")->has_value());
  EXPECT_EQ(**f.get_uint_opt("u32"), 12u);
  EXPECT_EQ(**f.get_string_opt("name"), "x");
  EXPECT_FALSE(f.get_uint_opt("name"));
  EXPECT_FALSE(f.get_bool_opt("name"));
  EXPECT_FALSE(f.get_string_opt("flag"));
  EXPECT_FALSE(f.get_float_opt("strs"));
}

// ----------------------------------------------------------------------------------------------
// Files from shared/data (written by llama.cpp / gguf-py)

// Checks the directory against the file: tensors are packed in offset order, each at the aligned end of
// the previous one, which validates the block geometry of every type in the file.
void expect_packed_layout(const File& f, uint64_t file_size) {
  std::vector<const TensorInfo*> order;
  for (const TensorInfo& t : f.tensors()) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->offset < b->offset; });
  for (size_t k = 0; k < order.size(); ++k) {
    const TensorInfo& t = *order[k];
    EXPECT_EQ(t.data, order[0]->data + t.offset) << f.path() << " " << t.name;
    const uint64_t end = t.offset + t.n_bytes;
    const uint64_t aligned_end = (end + f.alignment() - 1) / f.alignment() * f.alignment();
    if (k + 1 < order.size()) {
      EXPECT_EQ(order[k + 1]->offset, aligned_end) << f.path() << " after " << t.name;
    } else {
      EXPECT_LE(f.data_offset() + end, file_size) << f.path();
      EXPECT_GE(f.data_offset() + aligned_end, file_size) << f.path() << " trailing bytes after " << t.name;
    }
  }
}

TEST(GgufSharedData, EveryFileOpens) {
  namespace fs = std::filesystem;
  if (!fs::exists(test::shared_data())) GTEST_SKIP() << "shared data absent";
  int opened = 0;
  for (const auto& entry : fs::recursive_directory_iterator(test::shared_data())) {
    if (!entry.is_regular_file() || entry.path().extension() != ".gguf") continue;
    auto f = File::open(entry.path().string());
    ASSERT_TRUE(f) << f.error();
    EXPECT_EQ(f->version(), 3u) << entry.path();
    EXPECT_EQ(f->alignment(), 32u) << entry.path();
    EXPECT_TRUE(f->get_string("general.architecture")) << entry.path();
    EXPECT_TRUE(f->get_string_array("tokenizer.ggml.tokens")) << entry.path();
    expect_packed_layout(*f, fs::file_size(entry.path()));
    ++opened;
  }
  EXPECT_GE(opened, 20);
}

TEST(GgufSharedData, Stories260K) {
  KVANT_REQUIRE_DATA(path, "stories260K/stories260K.gguf");
  auto file = File::open(path);
  ASSERT_TRUE(file) << file.error();
  const File& f = *file;
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 48u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.data_offset(), 14176u);
  EXPECT_EQ(*f.get_string("general.architecture"), "llama");
  EXPECT_EQ(*f.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(*f.get_uint("llama.context_length"), 128u);
  EXPECT_EQ(*f.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(*f.get_uint("llama.attention.head_count_kv"), 4u);
  EXPECT_NEAR(*f.get_float("llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
  EXPECT_FALSE(f.get_float_opt("llama.rope.freq_base")->has_value());
  EXPECT_EQ(*f.get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ((*f.get_string_array("tokenizer.ggml.tokens"))->size(), 512u);
  EXPECT_EQ((*f.get_string_array("tokenizer.ggml.tokens"))->at(1), "<s>");
  EXPECT_EQ(f.get_float_array("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type")->at(3), 6);
  EXPECT_EQ(*f.get_uint("tokenizer.ggml.bos_token_id"), 1u);
  const TensorInfo* emb = f.find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type_id, 0u);
  EXPECT_EQ(emb->n_dims, 2u);
  EXPECT_EQ(emb->ne[0], 64u);
  EXPECT_EQ(emb->ne[1], 512u);
  EXPECT_EQ(emb->n_bytes, 64u * 512 * 4);
  const TensorInfo* down = f.find_tensor("blk.4.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->ne[0], 172u);
  EXPECT_EQ(down->ne[1], 64u);
}

TEST(GgufSharedData, QuantizedVariants) {
  KVANT_REQUIRE_DATA(q8, "stories260K/stories260K-q8_0.gguf");
  auto f = File::open(q8);
  ASSERT_TRUE(f) << f.error();
  EXPECT_EQ(*f->get_uint("general.file_type"), 7u);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->type_id, 8u);
  EXPECT_EQ(f->find_tensor("blk.0.attn_q.weight")->n_bytes, 64u / 32 * 34 * 64);
  EXPECT_EQ(f->find_tensor("blk.0.ffn_down.weight")->type_id, 0u);

  KVANT_REQUIRE_DATA(synth, "synthetic/synth-llama-Q4_K_M.gguf");
  auto s = File::open(synth);
  ASSERT_TRUE(s) << s.error();
  EXPECT_EQ(s->tensors().size(), 21u);
  int q4k = 0, f32 = 0;
  for (const TensorInfo& t : s->tensors()) {
    q4k += t.type_id == 12;
    f32 += t.type_id == 0;
  }
  EXPECT_EQ(q4k, 16);
  EXPECT_EQ(f32, 5);
  EXPECT_EQ(s->find_tensor("blk.0.ffn_down.weight")->ne[0], 768u);
  EXPECT_EQ(s->find_tensor("blk.0.ffn_down.weight")->n_bytes, 768u / 256 * 144 * 256);
}

// ----------------------------------------------------------------------------------------------
// Malformed files

// Little-endian byte builder for hand-made files.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u32(uint32_t v) { for (int k = 0; k < 4; ++k) b.push_back(uint8_t(v >> (8 * k))); return *this; }
  Bytes& u64(uint64_t v) { for (int k = 0; k < 8; ++k) b.push_back(uint8_t(v >> (8 * k))); return *this; }
  Bytes& raw(const std::string& s) { b.insert(b.end(), s.begin(), s.end()); return *this; }
  Bytes& str(const std::string& s) { return u64(s.size()).raw(s); }
};

// Knobs of a small file: kvs architecture, [alignment], test.array (i32 x3), [duplicate];
// tensors "a" f32 [8] at 0 and "b" f32 [4, 2] at 32.
struct Knobs {
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  std::optional<uint64_t> tensor_count, kv_count, first_key_length, array_count;
  uint32_t array_value_type = 9;
  std::optional<uint32_t> alignment;
  bool duplicate_key = false;
  int nesting = 0;  // wraps test.array in this many extra array levels
  std::string name_b = "b";
  uint32_t n_dims_b = 2;
  uint64_t ne0_b = 4, ne1_b = 2;
  uint32_t type_b = 0;
  uint64_t offset_b = 32;
  size_t trim = 0;
};

std::vector<uint8_t> small_file(const Knobs& k) {
  Bytes h;
  const uint64_t n_kv = 2 + (k.alignment ? 1 : 0) + (k.duplicate_key ? 1 : 0);
  h.u32(k.magic).u32(k.version).u64(k.tensor_count.value_or(2)).u64(k.kv_count.value_or(n_kv));
  h.u64(k.first_key_length.value_or(20)).raw("general.architecture").u32(8).str("llama");
  if (k.alignment) h.str("general.alignment").u32(4).u32(*k.alignment);
  h.str("test.array").u32(k.array_value_type);
  for (int d = 0; d < k.nesting; ++d) h.u32(9).u64(1);
  h.u32(5).u64(k.array_count.value_or(3)).u32(1).u32(2).u32(3);
  if (k.duplicate_key) h.str("test.array").u32(4).u32(1);
  h.str("a").u32(1).u64(8).u32(0).u64(0);
  h.str(k.name_b).u32(k.n_dims_b);
  for (uint32_t d = 0; d < k.n_dims_b; ++d) h.u64(d == 0 ? k.ne0_b : d == 1 ? k.ne1_b : 1);
  h.u32(k.type_b).u64(k.offset_b);
  const size_t align = (k.alignment && *k.alignment >= 32 && (*k.alignment & (*k.alignment - 1)) == 0)
                           ? *k.alignment : 32;
  while (h.b.size() % align != 0) h.b.push_back(0);
  for (int x = 0; x < 16; ++x) h.u32(0x3f800000);  // 64 bytes of 1.0f for both tensors
  h.b.resize(h.b.size() - k.trim);
  return h.b;
}

// Opens `bytes` and expects an error that starts with the path and contains every `needle`.
void expect_error(const std::string& name, const Knobs& knobs, std::vector<std::string> needles) {
  const std::string path = write_temp(name + ".gguf", small_file(knobs));
  auto f = File::open(path);
  ASSERT_FALSE(f) << name << ": opened";
  EXPECT_EQ(f.error().rfind(path + ": ", 0), 0u) << f.error();
  EXPECT_EQ(f.error().find('\n'), std::string::npos) << f.error();
  for (const std::string& n : needles) EXPECT_NE(f.error().find(n), std::string::npos) << name << ": " << f.error();
}

TEST(GgufMalformed, BaselineIsValid) {
  Knobs k;
  auto f = File::open(write_temp("baseline.gguf", small_file(k)));
  ASSERT_TRUE(f) << f.error();
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(*f->get_int_array("test.array"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(f->find_tensor("b")->n_bytes, 32u);
  k.alignment = 32;
  k.nesting = 3;
  auto g = File::open(write_temp("baseline_aligned.gguf", small_file(k)));
  ASSERT_TRUE(g) << g.error();
  EXPECT_EQ(g->find("test.array")->arrays.at(0).arrays.at(0).arrays.at(0).arr_i.size(), 3u);
  k.version = 2;  // v2 has the same layout as v3
  auto v2 = File::open(write_temp("baseline_v2.gguf", small_file(k)));
  ASSERT_TRUE(v2) << v2.error();
  EXPECT_EQ(v2->version(), 2u);
}

TEST(GgufMalformed, HeaderAndMetadata) {
  Knobs k;
  k.magic = 0x4C4D4747;  // "GGML"
  expect_error("magic", k, {"bad magic", "0x4c4d4747"});
  k = {};
  k.version = 1;
  expect_error("v1", k, {"version 1"});
  k.version = 4;
  expect_error("v4", k, {"version 4"});
  k = {};
  k.first_key_length = std::numeric_limits<uint64_t>::max();
  expect_error("strlen", k, {"string length 18446744073709551615"});
  k = {};
  k.array_count = 1ull << 60;
  expect_error("arrcount", k, {"'test.array'", "array count 1152921504606846976"});
  k = {};
  k.tensor_count = 1ull << 60;
  expect_error("tcount", k, {"tensor count 1152921504606846976"});
  k.tensor_count = 3;  // plausible at the header: the third name is read from the data bytes
  expect_error("tcount3", k, {"name of tensor #2", "exceeds"});
  k = {};
  k.kv_count = std::numeric_limits<uint64_t>::max();
  expect_error("kvcount", k, {"metadata count 18446744073709551615"});
  k = {};
  k.alignment = 0;
  expect_error("align0", k, {"general.alignment 0"});
  k.alignment = 3;
  expect_error("align3", k, {"general.alignment 3", "power of two"});
  k = {};
  k.duplicate_key = true;
  expect_error("dupkey", k, {"duplicate key 'test.array'"});
  k = {};
  k.array_value_type = 13;
  expect_error("valtype", k, {"'test.array'", "unknown value type 13"});
  k = {};
  k.nesting = 40;
  expect_error("deep", k, {"'test.array'", "nested deeper"});
}

TEST(GgufMalformed, TensorDirectoryAndData) {
  Knobs k;
  k.n_dims_b = 0;
  expect_error("ndims0", k, {"tensor 'b'", "n_dims 0"});
  k.n_dims_b = 5;
  expect_error("ndims5", k, {"tensor 'b'", "n_dims 5"});
  k = {};
  k.type_b = 99;
  expect_error("type99", k, {"tensor 'b'", "unknown type id 99"});
  k = {};
  k.type_b = 8;
  expect_error("ragged", k, {"tensor 'b'", "ne[0] 4", "block size 32", "q8_0"});
  k = {};
  k.ne0_b = 1ull << 62;
  expect_error("ne_overflow", k, {"tensor 'b'", "element count overflows"});
  k.ne0_b = 1ull << 61;
  expect_error("bytes_overflow", k, {"tensor 'b'", "byte size overflows"});
  k = {};
  k.offset_b = 36;
  expect_error("misaligned", k, {"tensor 'b'", "offset 36", "alignment 32"});
  k = {};
  k.name_b = "a";
  expect_error("dupname", k, {"duplicate tensor name 'a'"});
  k = {};
  k.trim = 4;
  const size_t trimmed = small_file(k).size();
  expect_error("past_end", k, {"tensor 'b' data [offset", "32 bytes]", "extends past end of file (size " +
                                                                         std::to_string(trimmed) + ")"});
  k = {};
  k.offset_b = 1ull << 40;
  expect_error("far_offset", k, {"tensor 'b'", "past end of file"});
  k.offset_b = std::numeric_limits<uint64_t>::max() - 31;
  expect_error("wrap_offset", k, {"tensor 'b'", "past end of file"});
  k = {};
  k.name_b = "evil\nname";
  k.offset_b = 36;
  expect_error("newline_name", k, {"tensor 'evil?name'"});
}

TEST(GgufMalformed, EveryTruncationFails) {
  Writer w = rich_writer();
  std::vector<float> a(64, 2.0f);
  ASSERT_TRUE(w.add_tensor("a", 0, {64}, a.data(), a.size() * 4));
  ASSERT_TRUE(w.add_tensor("b", 1, {6}, a.data(), 12));
  const std::string full_path = test::temp_dir() + "/trunc_src.gguf";
  ASSERT_TRUE(w.write(full_path));
  const std::vector<uint8_t> full = test::read_bytes(full_path);
  auto ref = File::open(full_path);
  ASSERT_TRUE(ref) << ref.error();
  uint64_t needed = 0;
  for (const TensorInfo& t : ref->tensors()) needed = std::max(needed, ref->data_offset() + t.offset + t.n_bytes);
  ASSERT_LT(needed, full.size());  // the writer pads the end too
  for (size_t len = 0; len <= full.size(); ++len) {
    const std::string path = write_temp("trunc.gguf", std::vector<uint8_t>(full.begin(), full.begin() + len));
    auto f = File::open(path);
    if (len < needed) {
      ASSERT_FALSE(f) << "prefix " << len << " of " << full.size() << " opened";
      ASSERT_EQ(f.error().rfind(path + ": ", 0), 0u) << f.error();
    } else {
      ASSERT_TRUE(f) << len << ": " << f.error();
      EXPECT_EQ(f->find_tensor("b")->data[11], full[needed - 1]);
    }
  }
}

// Flips bits at every byte of a small file and of the rich round-trip file: each open either fails with a
// message or yields tensors that lie inside the file.
TEST(GgufMalformed, ByteFlipsNeverCrash) {
  const std::string rich_path = test::temp_dir() + "/flip_src.gguf";
  ASSERT_TRUE(rich_writer().write(rich_path));
  const std::vector<std::vector<uint8_t>> bases = {small_file(Knobs{}), test::read_bytes(rich_path)};
  int failed = 0, opened = 0;
  for (const std::vector<uint8_t>& base : bases) {
    for (size_t pos = 0; pos < base.size(); ++pos) {
      for (uint8_t mask : {uint8_t(0xFF), uint8_t(0x80), uint8_t(0x01)}) {
        std::vector<uint8_t> bytes = base;
        bytes[pos] ^= mask;
        auto f = File::open(write_temp("flip.gguf", bytes));
        if (!f) {
          ++failed;
          EXPECT_FALSE(f.error().empty());
          EXPECT_EQ(f.error().find('\n'), std::string::npos) << f.error();
          continue;
        }
        ++opened;
        for (const TensorInfo& t : f->tensors()) {
          ASSERT_LE(f->data_offset() + t.offset + t.n_bytes, bytes.size());
        }
      }
    }
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(opened, 0);  // flips inside string bytes and tensor data are harmless
}

}  // namespace
}  // namespace kvant::gguf
