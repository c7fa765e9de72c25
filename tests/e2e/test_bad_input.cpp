// tests/e2e/test_bad_input.cpp — bad input through the CLI: corrupt or truncated GGUF files, unknown
// architecture, unsupported tensor type, missing tensor, wrong shape, prompt longer than the context,
// unknown flags. Each must give a one-line error and a non-zero exit, never a crash.
#include <cstring>
#include <fstream>
#include <functional>

#include "gguf/gguf.h"
#include "quant/ggml_type.h"
#include "test_support.h"

namespace kvant {
namespace {

// Copies stories260K.gguf through the GGUF writer, letting the caller change metadata and tensors.
struct Mutation {
  std::function<void(gguf::Writer&)> extra_metadata;
  std::function<bool(const gguf::TensorInfo&, gguf::Writer&)> replace_tensor;  // true: handled
};

std::string rewrite_model(const std::string& src, const std::string& dst, const Mutation& m) {
  auto file = gguf::File::open(src);
  EXPECT_TRUE(file) << file.error();
  gguf::Writer w;
  for (const auto& kv : file->metadata()) w.set(kv.key, kv.value);
  if (m.extra_metadata) m.extra_metadata(w);
  for (const auto& t : file->tensors()) {
    if (m.replace_tensor && m.replace_tensor(t, w)) continue;
    std::vector<uint64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    EXPECT_TRUE(w.add_tensor(t.name, t.type_id, ne, t.data, t.n_bytes));
  }
  EXPECT_TRUE(w.write(dst));
  return dst;
}

std::string write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

// Runs `kvant run` on a model and checks for a clean one-line failure mentioning `expected`.
void expect_clean_failure(const std::string& args, const std::string& expected) {
  const auto r = test::run_cli(args);
  EXPECT_NE(r.exit_code, 0) << "stdout: " << r.out;
  EXPECT_LT(r.exit_code, 128) << "killed by a signal: " << r.err;
  EXPECT_NE(r.err.find(expected), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "expected one line, got: " << r.err;
  EXPECT_EQ(r.err.find("AddressSanitizer"), std::string::npos);
}

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::data_file("stories260K/stories260K.gguf");
    if (model_.empty()) GTEST_SKIP() << "shared data absent: stories260K.gguf";
    dir_ = test::temp_dir();
    bytes_ = test::read_bytes(model_);
  }
  std::string run(const std::string& path) { return "run -m " + path + " -p hello -n 1 -t 1"; }
  std::string model_, dir_;
  std::vector<uint8_t> bytes_;
};

TEST_F(BadInput, MissingFile) { expect_clean_failure(run(dir_ + "/nope.gguf"), "nope.gguf: cannot open"); }

TEST_F(BadInput, TruncatedFiles) {
  for (size_t size : {size_t(0), size_t(3), size_t(20), size_t(100), size_t(5000), size_t(14176), bytes_.size() - 1}) {
    SCOPED_TRACE(size);
    std::vector<uint8_t> cut(bytes_.begin(), bytes_.begin() + long(size));
    expect_clean_failure(run(write_bytes(dir_ + "/cut.gguf", cut)), "cut.gguf");
  }
}

TEST_F(BadInput, BadMagic) {
  auto b = bytes_;
  std::memcpy(b.data(), "GGML", 4);
  expect_clean_failure(run(write_bytes(dir_ + "/magic.gguf", b)), "magic");
}

TEST_F(BadInput, UnsupportedVersion) {
  auto b = bytes_;
  const uint32_t version = 1;
  std::memcpy(b.data() + 4, &version, 4);
  expect_clean_failure(run(write_bytes(dir_ + "/v1.gguf", b)), "version 1");
  const uint32_t future = 99;
  std::memcpy(b.data() + 4, &future, 4);
  expect_clean_failure(run(write_bytes(dir_ + "/v99.gguf", b)), "version 99");
}

TEST_F(BadInput, AbsurdStringLength) {
  auto b = bytes_;
  const uint64_t huge = ~uint64_t(0);  // first metadata key's length
  std::memcpy(b.data() + 24, &huge, 8);
  expect_clean_failure(run(write_bytes(dir_ + "/strlen.gguf", b)), "18446744073709551615");
}

TEST_F(BadInput, AbsurdTensorCount) {
  auto b = bytes_;
  const uint64_t huge = uint64_t(1) << 62;
  std::memcpy(b.data() + 8, &huge, 8);
  expect_clean_failure(run(write_bytes(dir_ + "/count.gguf", b)), "count.gguf");
}

TEST_F(BadInput, TensorDataPastEnd) {
  std::vector<uint8_t> cut(bytes_.begin(), bytes_.end() - 4096);
  expect_clean_failure(run(write_bytes(dir_ + "/short.gguf", cut)), "past");
}

TEST_F(BadInput, UnknownArchitecture) {
  Mutation m;
  m.extra_metadata = [](gguf::Writer& w) { w.set("general.architecture", gguf::Value::of_string("gptj-x")); };
  expect_clean_failure(run(rewrite_model(model_, dir_ + "/arch.gguf", m)), "unsupported architecture 'gptj-x'");
}

TEST_F(BadInput, UnsupportedTensorType) {
  Mutation m;
  m.replace_tensor = [](const gguf::TensorInfo& t, gguf::Writer& w) {
    if (t.name != "blk.1.attn_q.weight") return false;
    const uint32_t iq4_nl = uint32_t(GgmlType::IQ4_NL);
    const auto g = ggml_type_geometry(iq4_nl);
    std::vector<uint8_t> zeros(size_t(t.ne[0] / g->block_elems * g->block_bytes * t.ne[1]), 0);
    EXPECT_TRUE(w.add_tensor(t.name, iq4_nl, {t.ne[0], t.ne[1]}, zeros.data(), zeros.size()));
    return true;
  };
  expect_clean_failure(run(rewrite_model(model_, dir_ + "/type.gguf", m)), "tensor 'blk.1.attn_q.weight' has type iq4_nl");
}

TEST_F(BadInput, MissingRequiredTensor) {
  Mutation m;
  m.replace_tensor = [](const gguf::TensorInfo& t, gguf::Writer&) { return t.name == "blk.2.ffn_up.weight"; };
  expect_clean_failure(run(rewrite_model(model_, dir_ + "/missing.gguf", m)), "missing required tensor 'blk.2.ffn_up.weight'");
}

TEST_F(BadInput, WrongTensorShape) {
  Mutation m;
  m.replace_tensor = [](const gguf::TensorInfo& t, gguf::Writer& w) {
    if (t.name != "blk.0.attn_k.weight") return false;
    std::vector<float> data(64 * 64, 0.0f);  // expected [64, 32]
    EXPECT_TRUE(w.add_tensor(t.name, 0, {64, 64}, data.data(), data.size() * 4));
    return true;
  };
  expect_clean_failure(run(rewrite_model(model_, dir_ + "/shape.gguf", m)),
                       "tensor 'blk.0.attn_k.weight' has shape [64, 64], expected [64, 32]");
}

TEST_F(BadInput, UnknownTokenizerModel) {
  Mutation m;
  m.extra_metadata = [](gguf::Writer& w) { w.set("tokenizer.ggml.model", gguf::Value::of_string("klingon")); };
  expect_clean_failure(run(rewrite_model(model_, dir_ + "/tok.gguf", m)), "klingon");
}

TEST_F(BadInput, PromptLongerThanContext) {
  expect_clean_failure("run -m " + model_ + " -c 8 -n 1 -t 1 -p 'Once upon a time there was a little girl named Lily'",
                       "longer than the context of 8");
}

TEST_F(BadInput, UnknownFlagAndBadValues) {
  expect_clean_failure("run -m " + model_ + " --frobnicate", "unknown option '--frobnicate'");
  expect_clean_failure("run -m " + model_ + " -n many", "invalid value 'many' for -n");
  expect_clean_failure("run -m " + model_ + " -p hi -ctk q9_9", "q9_9");
  expect_clean_failure("ppl -m " + model_, "missing -f/--file");
  expect_clean_failure("frobnicate", "unknown command 'frobnicate'");
}

TEST_F(BadInput, QuantisedKvNeedsHeadDimMultipleOf32) {
  expect_clean_failure("run -m " + model_ + " -p hi -n 1 -ctk q8_0", "head_dim");
}

}  // namespace
}  // namespace kvant
