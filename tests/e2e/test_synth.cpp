// tests/e2e/test_synth.cpp — `kvant synth`: tiny models in several types load, run and give non-flat
// logits; output is seed-deterministic; bad flags fail clearly; plan, vocab fitting and the generator.
#include <cmath>
#include <cstring>
#include <set>
#include <unordered_set>

#include "gguf/gguf.h"
#include "model/synth.h"
#include "test_support.h"

namespace kvant {
namespace {

using test::run_cli;

constexpr const char* kStoriesVocab = "stories260K/stories260K.gguf";

test::CliResult synth(const std::string& vocab, const std::string& type, const std::string& out,
                      const std::string& extra = "") {
  return run_cli("synth --shape tiny --type " + type + " --vocab '" + vocab + "' -o '" + out + "' " + extra);
}

class SynthTiny : public ::testing::TestWithParam<const char*> {};

TEST_P(SynthTiny, InfoAndRunWork) {
  KVANT_REQUIRE_DATA(vocab, kStoriesVocab);
  const std::string out = test::temp_dir() + "/tiny.gguf";
  auto made = synth(vocab, GetParam(), out);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  ASSERT_TRUE(test::file_exists(out));

  auto info = run_cli("info -m '" + out + "'");
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_NE((info.out + info.err).find("n_layer 2"), std::string::npos) << info.out;

  const std::string logits = out + ".logits";
  auto gen = run_cli("run -m '" + out + "' -p 'Once upon a time' -n 8 --temp 0 --logits-out '" + logits + "'");
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  EXPECT_FALSE(gen.out.empty()) << gen.err;

  // Logits over the 512-token vocabulary must not be flat.
  const std::vector<uint8_t> bytes = test::read_bytes(logits);
  ASSERT_EQ(bytes.size(), 512 * sizeof(float));
  std::vector<float> l(512);
  std::memcpy(l.data(), bytes.data(), bytes.size());
  double mean = 0, var = 0;
  for (float x : l) mean += x / 512.0;
  for (float x : l) var += (x - mean) * (x - mean) / 512.0;
  EXPECT_GE(std::sqrt(var), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Types, SynthTiny, ::testing::Values("f32", "q8_0", "q4_k_m"));

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  KVANT_REQUIRE_DATA(vocab, kStoriesVocab);
  const std::string dir = test::temp_dir();
  ASSERT_EQ(synth(vocab, "q4_0", dir + "/a.gguf", "--seed 7").exit_code, 0);
  ASSERT_EQ(synth(vocab, "q4_0", dir + "/b.gguf", "--seed 7 -t 1").exit_code, 0);  // thread count must not matter
  ASSERT_EQ(synth(vocab, "q4_0", dir + "/c.gguf", "--seed 8").exit_code, 0);
  const auto a = test::read_bytes(dir + "/a.gguf");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == test::read_bytes(dir + "/b.gguf"));
  const auto c = test::read_bytes(dir + "/c.gguf");
  EXPECT_EQ(a.size(), c.size());
  EXPECT_FALSE(a == c);
}

TEST(Synth, WrittenFileHasLlamaMetadataAndTensors) {
  KVANT_REQUIRE_DATA(vocab, kStoriesVocab);
  const std::string out = test::temp_dir() + "/tiny.gguf";
  ASSERT_EQ(synth(vocab, "f16", out).exit_code, 0);
  auto f = gguf::File::open(out);
  ASSERT_TRUE(f) << f.error();
  EXPECT_EQ(*f->get_string("general.architecture"), "llama");
  EXPECT_EQ(*f->get_uint("llama.block_count"), 2u);
  EXPECT_EQ(*f->get_uint("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(*f->get_uint("llama.rope.dimension_count"), 32u);
  EXPECT_EQ(*f->get_uint("general.alignment"), 32u);
  EXPECT_EQ((*f->get_string_array("tokenizer.ggml.tokens"))->size(), 512u);
  const gguf::TensorInfo* embd = f->find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->ne[0], 128u);
  EXPECT_EQ(embd->ne[1], 512u);
  EXPECT_EQ(embd->type_id, uint32_t(GgmlType::F16));
  const gguf::TensorInfo* k = f->find_tensor("blk.1.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->ne[0], 128u);
  EXPECT_EQ(k->ne[1], 64u);
  const gguf::TensorInfo* norm = f->find_tensor("blk.0.ffn_norm.weight");
  ASSERT_NE(norm, nullptr);
  EXPECT_EQ(norm->type_id, uint32_t(GgmlType::F32));
  EXPECT_NE(f->find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f->tensors().size(), 2u * 9u + 3u);
}

TEST(Synth, BadFlagsFailWithValidNames) {
  auto bad_shape = run_cli("synth --shape no-such-shape --type f32 --vocab x.gguf -o /tmp/never.gguf");
  EXPECT_NE(bad_shape.exit_code, 0);
  EXPECT_NE(bad_shape.err.find("no-such-shape"), std::string::npos) << bad_shape.err;
  EXPECT_NE(bad_shape.err.find("llama-3.1-8b"), std::string::npos) << bad_shape.err;

  auto bad_type = run_cli("synth --shape tiny --type q9_9 --vocab x.gguf -o /tmp/never.gguf");
  EXPECT_NE(bad_type.exit_code, 0);
  EXPECT_NE(bad_type.err.find("q9_9"), std::string::npos) << bad_type.err;
  EXPECT_NE(bad_type.err.find("q4_k_m"), std::string::npos) << bad_type.err;

  auto no_vocab = run_cli("synth --shape tiny --type f32 --vocab /nonexistent/v.gguf -o /tmp/never.gguf");
  EXPECT_NE(no_vocab.exit_code, 0);
  EXPECT_NE(no_vocab.err.find("/nonexistent/v.gguf"), std::string::npos) << no_vocab.err;
}

TEST(SynthPlan, MixesAndTiedOutputFollowLlamaCpp) {
  const synth::Shape* big = synth::find_shape("llama-3.1-8b");
  ASSERT_NE(big, nullptr);
  std::vector<std::string> notes;
  const auto plan = synth::plan_tensors(*big, *synth::find_weight_type("q4_k_m"), &notes);
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ(plan.size(), 32u * 9u + 3u);
  int q6_attn_v = 0;
  for (const auto& t : plan) {
    if (t.name == "output.weight") {
      EXPECT_EQ(t.type, GgmlType::Q6_K);
    }
    if (t.name == "token_embd.weight") {
      EXPECT_EQ(t.type, GgmlType::Q4_K);
    }
    if (t.name == "blk.0.attn_v.weight" || t.name == "blk.6.attn_v.weight" || t.name == "blk.31.ffn_down.weight") {
      EXPECT_EQ(t.type, GgmlType::Q6_K) << t.name;
    }
    if (t.name == "blk.4.attn_v.weight" || t.name == "blk.5.ffn_down.weight" || t.name == "blk.0.attn_q.weight") {
      EXPECT_EQ(t.type, GgmlType::Q4_K) << t.name;
    }
    if (t.name.ends_with("attn_v.weight") && t.type == GgmlType::Q6_K) ++q6_attn_v;
    if (t.name == "blk.3.ffn_gate.weight") {
      EXPECT_EQ(t.ne[0], 4096u);
      EXPECT_EQ(t.ne[1], 14336u);
    }
  }
  EXPECT_EQ(q6_attn_v, 16);  // half of the layers

  // Tied: no output.weight; the embedding gets the output's extra bits; 576-wide rows fall back to q8_0.
  const auto smol = synth::plan_tensors(*synth::find_shape("smollm2-135m"), *synth::find_weight_type("q4_k_m"), &notes);
  EXPECT_FALSE(notes.empty());
  for (const auto& t : smol) {
    EXPECT_NE(t.name, "output.weight");
    if (t.name == "blk.0.attn_q.weight") {
      EXPECT_EQ(t.type, GgmlType::Q8_0);
    }
    if (t.name == "blk.4.ffn_down.weight") {
      EXPECT_EQ(t.type, GgmlType::Q4_K);  // 1536 % 256 == 0
    }
    if (t.name == "blk.0.ffn_down.weight") {
      EXPECT_EQ(t.type, GgmlType::Q6_K);
    }
  }
}

TEST(SynthVocab, PadsWithUnusedTokens) {
  KVANT_REQUIRE_DATA(vocab, kStoriesVocab);
  auto f = gguf::File::open(vocab);
  ASSERT_TRUE(f) << f.error();
  std::vector<std::string> notes;
  auto fitted = synth::fit_vocab(f->metadata(), 600, &notes);
  ASSERT_TRUE(fitted) << fitted.error();
  ASSERT_FALSE(notes.empty());
  const gguf::Value *tokens = nullptr, *types = nullptr, *scores = nullptr;
  for (const auto& kv : *fitted) {
    EXPECT_TRUE(kv.key.starts_with("tokenizer.")) << kv.key;
    if (kv.key == "tokenizer.ggml.tokens") tokens = &kv.value;
    if (kv.key == "tokenizer.ggml.token_type") types = &kv.value;
    if (kv.key == "tokenizer.ggml.scores") scores = &kv.value;
  }
  ASSERT_TRUE(tokens && types && scores);
  ASSERT_EQ(tokens->array_size(), 600u);
  ASSERT_EQ(types->array_size(), 600u);
  ASSERT_EQ(scores->array_size(), 600u);
  EXPECT_EQ(tokens->arr_str[512], "<unused_0>");
  EXPECT_EQ(types->arr_i[599], 5);
  EXPECT_EQ(scores->arr_f[599], 0.0);
  EXPECT_EQ(std::set<std::string>(tokens->arr_str.begin(), tokens->arr_str.end()).size(), 600u);
}

TEST(SynthVocab, TruncatesBpeMergesAndSpecialIds) {
  KVANT_REQUIRE_DATA(vocab, "tokenizer/ggml-vocab-gpt-2.gguf");
  auto f = gguf::File::open(vocab);
  ASSERT_TRUE(f) << f.error();
  const size_t merges_before = (*f->get_string_array("tokenizer.ggml.merges"))->size();
  auto fitted = synth::fit_vocab(f->metadata(), 1000, nullptr);
  ASSERT_TRUE(fitted) << fitted.error();
  const gguf::Value *tokens = nullptr, *merges = nullptr;
  for (const auto& kv : *fitted) {
    if (kv.key == "tokenizer.ggml.tokens") tokens = &kv.value;
    if (kv.key == "tokenizer.ggml.merges") merges = &kv.value;
    EXPECT_NE(kv.key, "tokenizer.ggml.eos_token_id");  // 50256 is beyond 1000
  }
  ASSERT_TRUE(tokens && merges);
  ASSERT_EQ(tokens->arr_str.size(), 1000u);
  EXPECT_LT(merges->arr_str.size(), merges_before);
  EXPECT_GT(merges->arr_str.size(), 0u);
  const std::unordered_set<std::string> kept(tokens->arr_str.begin(), tokens->arr_str.end());
  for (const std::string& m : merges->arr_str) {
    const size_t space = m.find(' ', 1);
    ASSERT_NE(space, std::string::npos) << m;
    const std::string left = m.substr(0, space), right = m.substr(space + 1);
    EXPECT_TRUE(kept.count(left) && kept.count(right) && kept.count(left + right)) << m;
  }
}

TEST(SynthGenerator, NormalStreamsAreDeterministicAndStandard) {
  std::vector<float> a(100001), b(100001), c(100001);
  synth::fill_normal(1, 5, a.data(), a.size());
  synth::fill_normal(1, 5, b.data(), b.size());
  synth::fill_normal(1, 6, c.data(), c.size());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  double mean = 0, sq = 0;
  for (float x : a) {
    ASSERT_TRUE(std::isfinite(x));
    mean += x;
    sq += double(x) * x;
  }
  mean /= double(a.size());
  const double sd = std::sqrt(sq / double(a.size()) - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sd, 1.0, 0.02);
}

}  // namespace
}  // namespace kvant
