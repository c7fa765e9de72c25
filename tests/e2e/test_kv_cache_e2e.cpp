// tests/e2e/test_kv_cache_e2e.cpp — the compressed KV cache end to end: every K/V type combination
// runs through the model; perplexity is computed through the same compressed cache that decode reads
// (it changes with the K type); KL-divergence against a saved f16 base; exact memory accounting.
#include <nlohmann/json.hpp>

#include <cmath>

#include "kvant/kvant.h"
#include "test_support.h"

namespace kvant {
namespace {

const char* const kTypes[] = {"f32", "f16", "q8_0", "q4_0", "turbo_kv_2b", "turbo_kv_3b", "turbo_kv_4b", "turbo_kv_5b"};

std::vector<float> prompt_logits(const std::shared_ptr<Model>& model, const std::string& k, const std::string& v,
                                 int32_t window = 0) {
  SessionParams sp;
  sp.n_threads = 2;
  sp.cache_type_k = k;
  sp.cache_type_v = v;
  sp.kv_window = window;
  auto session = Session::create(model, sp);
  EXPECT_TRUE(session) << session.error();
  if (!session) return {};
  auto ids = model->tokenize("Once upon a time, there was a little girl. She liked to play in the park with her", true, false);
  EXPECT_TRUE((*session)->eval(ids));
  // Two decode steps so both prefill and decode paths read the compressed cache.
  EXPECT_TRUE((*session)->eval({25}));
  EXPECT_TRUE((*session)->eval({191}));
  const float* l = (*session)->logits();
  return std::vector<float>(l, l + model->n_vocab());
}

double rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

TEST(KvCacheE2E, EveryKvCombinationRunsAndStaysCloseToF32) {
  KVANT_REQUIRE_DATA(path, "refmodel/refmodel-q8_0.gguf");
  auto model = Model::load(path);
  ASSERT_TRUE(model) << model.error();
  const auto base = prompt_logits(*model, "f32", "f32");
  for (const char* k : kTypes) {
    for (const char* v : kTypes) {
      SCOPED_TRACE(std::string(k) + " / " + v);
      const auto got = prompt_logits(*model, k, v);
      ASSERT_EQ(got.size(), base.size());
      for (float x : got) ASSERT_TRUE(std::isfinite(x));
      const double d = rel_diff(got, base);
      // Loose sanity bound (a broken codec or attention path gives > 1): 2-bit is the noisiest.
      EXPECT_LT(d, 0.6) << "relative logits difference " << d;
      if (std::string(k) == "f32" && std::string(v) == "f32") {
        EXPECT_EQ(d, 0.0);
      }
      if (std::string(k) == "f16" && std::string(v) == "f16") {
        EXPECT_LT(d, 0.05);
      }
    }
  }
}

TEST(KvCacheE2E, MoreBitsGiveLogitsCloserToF32) {
  KVANT_REQUIRE_DATA(path, "refmodel/refmodel-q8_0.gguf");
  auto model = Model::load(path);
  ASSERT_TRUE(model) << model.error();
  const auto base = prompt_logits(*model, "f32", "f32");
  const double d2 = rel_diff(prompt_logits(*model, "turbo_kv_2b", "turbo_kv_2b"), base);
  const double d3 = rel_diff(prompt_logits(*model, "turbo_kv_3b", "turbo_kv_3b"), base);
  const double d5 = rel_diff(prompt_logits(*model, "turbo_kv_5b", "turbo_kv_5b"), base);
  const double q8 = rel_diff(prompt_logits(*model, "q8_0", "q8_0"), base);
  std::printf("[ kv ] rel logits diff vs f32: turbo2 %.4f turbo3 %.4f turbo5 %.4f q8_0 %.4f\n", d2, d3, d5, q8);
  EXPECT_GT(d2, d3);
  EXPECT_GT(d3, d5);
  EXPECT_GT(d3, q8);
}

TEST(KvCacheE2E, RecentWindowReadsF16ForTheLastTokens) {
  KVANT_REQUIRE_DATA(path, "refmodel/refmodel-q8_0.gguf");
  auto model = Model::load(path);
  ASSERT_TRUE(model) << model.error();
  const auto f16 = prompt_logits(*model, "f16", "f16");
  // A window longer than the whole sequence means every key is read from the f16 ring.
  const auto all_window = prompt_logits(*model, "turbo_kv_2b", "turbo_kv_2b", 1000);
  EXPECT_LT(rel_diff(all_window, f16), 1e-5);
  const auto no_window = prompt_logits(*model, "turbo_kv_2b", "turbo_kv_2b", 0);
  const auto small_window = prompt_logits(*model, "turbo_kv_2b", "turbo_kv_2b", 16);
  EXPECT_LT(rel_diff(small_window, f16), rel_diff(no_window, f16));
}

struct PplRun {
  double ppl = 0, kld = -1, same_top = 0;
};

PplRun run_ppl(const std::string& model, const std::string& text, const std::string& extra) {
  auto r = test::run_cli("ppl -m " + model + " -f " + text + " -c 256 --chunks 2 -t 2 --json " + extra);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  PplRun out;
  if (r.exit_code != 0) return out;
  auto j = nlohmann::json::parse(r.out);
  out.ppl = j["ppl"].get<double>();
  if (j.contains("kld_mean")) {
    out.kld = j["kld_mean"].get<double>();
    out.same_top = j["same_top_pct"].get<double>();
  }
  return out;
}

TEST(KvCacheE2E, PerplexityAttendsThroughTheCompressedCache) {
  KVANT_REQUIRE_DATA(model, "refmodel/refmodel-q8_0.gguf");
  KVANT_REQUIRE_DATA(text, "text/ppl_test_1k.txt");
  const std::string base = test::temp_dir() + "/base.kl";
  const PplRun f16 = run_ppl(model, text, "--kl-base-save " + base);
  const PplRun f16_again = run_ppl(model, text, "--kl-base " + base);
  const PplRun turbo2 = run_ppl(model, text, "-ctk turbo_kv_2b --kv-window 0 --kl-base " + base);
  const PplRun q8 = run_ppl(model, text, "-ctk q8_0 -ctv q8_0 --kv-window 0 --kl-base " + base);
  std::printf("[ ppl ] f16 %.4f  q8_0 %.4f (kld %.6f)  turbo_kv_2b K %.4f (kld %.6f)\n", f16.ppl, q8.ppl, q8.kld,
              turbo2.ppl, turbo2.kld);
  EXPECT_EQ(f16.ppl, f16_again.ppl);
  EXPECT_LT(f16_again.kld, 1e-5);  // only the base file's 16-bit log-prob rounding
  EXPECT_EQ(f16_again.same_top, 100.0);
  EXPECT_NE(turbo2.ppl, f16.ppl) << "prefill must read the compressed K cache";
  EXPECT_GT(turbo2.kld, q8.kld);
  EXPECT_GT(q8.kld, 0.0);
  EXPECT_GT(q8.same_top, 95.0);
}

TEST(KvCacheE2E, InfoReportsExactBytesPerToken) {
  KVANT_REQUIRE_DATA(model, "refmodel/refmodel-f16.gguf");
  // 8 layers x 2 KV heads x head_dim 64: f16 = 8*2*2*128 = 4096 bytes per token;
  // turbo_kv_4b = fp16 scale + 64*4/8 index bytes = 34 per vector; q8_0 = 2 blocks of 34 = 68.
  auto r = test::run_cli("info " + model + " --ctx 1024 -ctk turbo_kv_4b -ctv q8_0 --kv-window 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("kv per token: 1632 bytes (f16: 4096 bytes"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("kv at ctx 1024: 1671168 bytes"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace kvant
