// tests/e2e/test_kv_file.cpp — saved KV contexts with stories260K: save → load gives bit-identical
// next-token logits (plain and compressed caches with an f16 window), corruption/truncation/mismatch are
// clear errors, Session::truncate, and run --save-kv/--load-kv.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "kvant/kvant.h"
#include "test_support.h"

namespace kvant::test {
namespace {

const char* kModel = "stories260K/stories260K.gguf";

std::shared_ptr<Session> make_session(const std::shared_ptr<Model>& model, const SessionParams& p) {
  auto s = Session::create(model, p);
  EXPECT_TRUE(s.has_value()) << s.error();
  return s ? std::shared_ptr<Session>(std::move(s).value()) : nullptr;
}

std::vector<float> logits_of(const Session& s, int n_vocab) { return std::vector<float>(s.logits(), s.logits() + n_vocab); }

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

struct KvFileTest : ::testing::TestWithParam<SessionParams> {};

TEST_P(KvFileTest, SaveThenLoadGivesBitIdenticalNextTokenLogits) {
  KVANT_REQUIRE_DATA(path, kModel);
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value()) << model.error();
  const int n_vocab = (*model)->n_vocab();
  const std::vector<int32_t> prompt = (*model)->tokenize("Once upon a time, there was a little dog named Max. He", true, false);
  const int32_t next = prompt[3];
  const std::string file = temp_dir() + "/ctx.kv";

  auto a = make_session(*model, GetParam());
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->eval(prompt));
  ASSERT_TRUE(a->save_kv(file)) << "save failed";
  ASSERT_TRUE(a->eval({next}));
  const std::vector<float> expected = logits_of(*a, n_vocab);

  auto b = make_session(*model, GetParam());
  ASSERT_TRUE(b);
  Status st = b->load_kv(file);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(b->tokens(), prompt);
  EXPECT_EQ(b->n_past(), prompt.size());
  ASSERT_TRUE(b->eval({next}));
  const std::vector<float> got = logits_of(*b, n_vocab);
  EXPECT_EQ(std::memcmp(got.data(), expected.data(), got.size() * sizeof(float)), 0) << "logits differ after load";
  // Generation continues identically for a few more tokens.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a->eval({prompt[size_t(i)]}));
    ASSERT_TRUE(b->eval({prompt[size_t(i)]}));
    EXPECT_EQ(std::memcmp(a->logits(), b->logits(), size_t(n_vocab) * sizeof(float)), 0) << "step " << i;
  }
}

SessionParams params(const char* k, const char* v, int window, uint32_t batch) {
  SessionParams p;
  p.n_ctx = 128;
  p.n_threads = 1;
  p.cache_type_k = k;
  p.cache_type_v = v;
  p.kv_window = window;
  p.n_batch = batch;
  p.backend = "cpu";  // saved contexts are host memory
  return p;
}

INSTANTIATE_TEST_SUITE_P(CacheTypes, KvFileTest,
                         ::testing::Values(params("f16", "f16", -1, 512), params("f32", "f16", -1, 512),
                                           params("turbo_kv_3b", "turbo_kv_4b", 4, 3),
                                           params("turbo_kv_2b", "f16", 0, 512)));

TEST(KvFile, CorruptionTruncationAndMismatchAreClearErrors) {
  KVANT_REQUIRE_DATA(path, kModel);
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value());
  const std::string dir = temp_dir();
  const std::string file = dir + "/ctx.kv";
  auto a = make_session(*model, params("f16", "f16", -1, 512));
  ASSERT_TRUE(a->eval((*model)->tokenize("Once upon a time", true, false)));
  ASSERT_TRUE(a->save_kv(file));
  const std::string good = read_file(file);
  ASSERT_GT(good.size(), 100u);

  auto expect_error = [&](const std::string& bytes, const std::string& needle, const SessionParams& p) {
    const std::string bad = dir + "/bad.kv";
    write_bytes(bad, bytes);
    auto b = make_session(*model, p);
    Status st = b->load_kv(bad);
    EXPECT_FALSE(st) << needle;
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(bad), std::string::npos) << "the error names the file: " << st.message();
    EXPECT_EQ(b->n_past(), 0u);
    EXPECT_TRUE(b->tokens().empty());
  };
  // One flipped byte anywhere after the version: in the header, the tokens, the blocks, the checksum.
  for (size_t pos : {size_t(14), size_t(40), good.size() / 2, good.size() - 20, good.size() - 1}) {
    std::string bytes = good;
    bytes[pos] = char(bytes[pos] ^ 0x10);
    expect_error(bytes, "checksum", params("f16", "f16", -1, 512));
  }
  expect_error(good.substr(0, good.size() - 7), "checksum", params("f16", "f16", -1, 512));
  expect_error(good.substr(0, 10), "", params("f16", "f16", -1, 512));
  expect_error("GGUF this is not a kv file at all", "not a kvant KV context file", params("f16", "f16", -1, 512));
  std::string future = good;
  future[8] = 9;  // version
  expect_error(future, "version 9", params("f16", "f16", -1, 512));
  expect_error(good, "K type f16", params("f32", "f16", -1, 512));
  expect_error(good, "V type f16", params("f16", "turbo_kv_4b", 0, 512));
  SessionParams small = params("f16", "f16", -1, 512);
  small.n_ctx = 3;
  expect_error(good, "context", small);
  if (std::string q8 = data_file("stories260K/stories260K-q8_0.gguf"); !q8.empty()) {
    auto other = Model::load(q8);
    ASSERT_TRUE(other.has_value());
    auto b = make_session(*other, params("f16", "f16", -1, 512));
    Status st = b->load_kv(file);
    EXPECT_FALSE(st);
    EXPECT_NE(st.message().find("model fingerprint"), std::string::npos) << st.message();
  }
}

TEST(KvFile, TruncateThenReEvaluateMatches) {
  KVANT_REQUIRE_DATA(path, kModel);
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value());
  const int n_vocab = (*model)->n_vocab();
  const std::vector<int32_t> prompt = (*model)->tokenize("The cat sat on the mat and looked at the bird", true, false);
  auto s = make_session(*model, params("f16", "f16", -1, 512));
  ASSERT_TRUE(s->eval(prompt));
  const std::vector<float> expected = logits_of(*s, n_vocab);
  ASSERT_TRUE(s->eval({prompt[1], prompt[2], prompt[3]}));  // a detour, then forget it
  ASSERT_TRUE(s->truncate(uint32_t(prompt.size() - 1)));
  EXPECT_EQ(s->n_past(), prompt.size() - 1);
  EXPECT_EQ(s->tokens(), std::vector<int32_t>(prompt.begin(), prompt.end() - 1));
  ASSERT_TRUE(s->eval({prompt.back()}));
  EXPECT_EQ(std::memcmp(s->logits(), expected.data(), expected.size() * sizeof(float)), 0);

  // With an f16 window, dropping more than n_batch tokens would lose window slots: refused.
  auto w = make_session(*model, params("turbo_kv_4b", "f16", 2, 2));
  ASSERT_TRUE(w->eval(prompt));
  EXPECT_TRUE(w->truncate(uint32_t(prompt.size() - 2)));
  Status st = w->truncate(1);
  EXPECT_FALSE(st);
  EXPECT_EQ(w->n_past(), prompt.size() - 2);
}

TEST(KvFile, RunSaveThenLoadContinuesIdentically) {
  KVANT_REQUIRE_DATA(path, kModel);
  const std::string file = temp_dir() + "/run.kv";
  CliResult first = run_cli("run -m " + path + " -p 'Once upon a time' -n 8 --temp 0 --save-kv " + file);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::string longer = "Once upon a time" + first.out + " and";
  CliResult plain = run_cli("run -m " + path + " -p '" + longer + "' -n 12 --temp 0");
  CliResult resumed = run_cli("run -m " + path + " -p '" + longer + "' -n 12 --temp 0 --load-kv " + file);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("loaded"), std::string::npos) << resumed.err;
  EXPECT_EQ(resumed.out, plain.out);
  CliResult other = run_cli("run -m " + path + " -p 'The dog' -n 2 --temp 0 --load-kv " + file);
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("does not start with the saved context"), std::string::npos) << other.err;
}

}  // namespace
}  // namespace kvant::test
