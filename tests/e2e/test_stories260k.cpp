// tests/e2e/test_stories260k.cpp — stories260K end to end against llama.cpp's references: prompt
// tokens, greedy continuation (F32 and Q8_0 files), and perplexity on the TinyStories text.
#include <nlohmann/json.hpp>

#include "kvant/kvant.h"
#include "test_support.h"

namespace kvant {
namespace {

nlohmann::json load_reference() {
  const std::string path = test::data_file("stories260K/reference.json");
  return path.empty() ? nlohmann::json() : nlohmann::json::parse(test::read_file(path));
}

TEST(Stories260K, PromptTokensMatchLlamaCpp) {
  KVANT_REQUIRE_DATA(model_path, "stories260K/stories260K.gguf");
  auto model = Model::load(model_path);
  ASSERT_TRUE(model) << model.error();
  const auto ref = load_reference();
  const auto want = ref["greedy"]["prompt_ids_with_bos"].get<std::vector<int32_t>>();
  EXPECT_EQ((*model)->tokenize("Once upon a time", true, false), want);
}

class Stories260KGreedy : public ::testing::TestWithParam<const char*> {};

TEST_P(Stories260KGreedy, ContinuationEqualsLlamaCpp) {
  KVANT_REQUIRE_DATA(model_path, std::string("stories260K/") + GetParam());
  const auto ref = load_reference();
  auto r = test::run_cli("run -m " + model_path + " -p 'Once upon a time' -n 64 --temp 0 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, ref["greedy"]["generated_text"].get<std::string>());
}

TEST_P(Stories260KGreedy, GeneratedIdsEqualLlamaCpp) {
  KVANT_REQUIRE_DATA(model_path, std::string("stories260K/") + GetParam());
  const auto ref = load_reference();
  auto model = Model::load(model_path);
  ASSERT_TRUE(model) << model.error();
  SessionParams sp;
  sp.n_threads = 2;
  auto session = Session::create(*model, sp);
  ASSERT_TRUE(session) << session.error();
  std::vector<int32_t> ids = (*model)->tokenize("Once upon a time", true, false);
  ASSERT_TRUE((*session)->eval(ids));
  SamplerParams greedy;
  greedy.temperature = 0;
  Sampler sampler(greedy);
  std::vector<int32_t> generated;
  for (int i = 0; i < 64; ++i) {
    const int32_t next = sampler.sample((*session)->logits(), (*model)->n_vocab());
    generated.push_back(next);
    ASSERT_TRUE((*session)->eval({next}));
  }
  EXPECT_EQ(generated, ref["greedy"]["generated_ids"].get<std::vector<int32_t>>());
}

// eval_logits_from keeps rows first..end only; they must equal the same rows of a full-logits eval,
// across a batch boundary (batch 16 < 40 tokens), and rows before `first` are not addressable.
TEST(Stories260K, LogitsFromARowEqualTheFullEvalRows) {
  KVANT_REQUIRE_DATA(model_path, "stories260K/stories260K.gguf");
  auto model = Model::load(model_path);
  ASSERT_TRUE(model) << model.error();
  SessionParams sp;
  sp.n_threads = 2;
  sp.n_batch = 16;
  auto full = Session::create(*model, sp);
  auto part = Session::create(*model, sp);
  ASSERT_TRUE(full && part);
  std::vector<int32_t> ids = (*model)->tokenize("Once upon a time there was a girl who liked to play in the park with her dog", true, false);
  ASSERT_GT(ids.size(), 20u);
  const uint32_t first = 10;  // the wanted rows start inside the first batch and continue into the next
  ASSERT_TRUE((*full)->eval(ids, true));
  ASSERT_TRUE((*part)->eval_logits_from(ids, first));
  const int n_vocab = (*model)->n_vocab();
  for (uint32_t j = first; j < ids.size(); ++j) {
    const float* a = (*full)->logits(int(j));
    const float* b = (*part)->logits(int(j));
    for (int i = 0; i < n_vocab; ++i) ASSERT_EQ(a[i], b[i]) << "token " << j << " logit " << i;
  }
  EXPECT_FALSE((*part)->eval_logits_from({1, 2}, 2).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Files, Stories260KGreedy, ::testing::Values("stories260K.gguf", "stories260K-q8_0.gguf"),
                         [](const auto& info) { return std::string(info.param).find("q8_0") != std::string::npos ? "Q8_0" : "F32"; });

TEST(Stories260K, PerplexityFirst100ChunksWithinPointOnePercent) {
  KVANT_REQUIRE_DATA(model_path, "stories260K/stories260K.gguf");
  KVANT_REQUIRE_DATA(text_path, "text/tinystories_train_head_2MiB.txt");
  const auto ref = load_reference();
  const double want = ref["perplexity_tinystories_train_head_2MiB"]["c128"]["first_100_chunks_kv_f16_fa_on"].get<double>();
  auto r = test::run_cli("ppl -m " + model_path + " -f " + text_path + " -c 128 --chunks 100 --json -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["n_chunks"].get<int>(), 100);
  EXPECT_EQ(j["n_tokens_scored"].get<int>(), 100 * 63);
  EXPECT_NEAR(j["ppl"].get<double>(), want, want * 0.001) << "llama.cpp: " << want;
}

TEST(Stories260K, PerplexityTextOutputHasFinalEstimateLine) {
  KVANT_REQUIRE_DATA(model_path, "stories260K/stories260K.gguf");
  KVANT_REQUIRE_DATA(text_path, "text/tinystories_train_head_2MiB.txt");
  const auto ref = load_reference();
  const double want = ref["perplexity_tinystories_train_head_2MiB"]["c256"]["first_chunk"].get<double>();
  auto r = test::run_cli("ppl -m " + model_path + " -f " + text_path + " -c 256 --chunks 1 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  double ppl = 0, err = 0;
  ASSERT_EQ(std::sscanf(r.out.c_str(), "Final estimate: PPL = %lf +/- %lf", &ppl, &err), 2) << r.out;
  EXPECT_NEAR(ppl, want, want * 0.001);
  EXPECT_NE(r.err.find("[1]"), std::string::npos) << "progress per chunk goes to stderr";
}

}  // namespace
}  // namespace kvant
