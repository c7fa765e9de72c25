// tests/e2e/test_bench.cpp — `kvant bench` on stories260K: JSON and CSV output, the bytes/GB/s
// accounting, one-line errors for bad flags and lists; Session::fill_for_benchmark and the test list API.
#include <nlohmann/json.hpp>

#include <cmath>
#include <set>
#include <sstream>

#include "kvant/bench.h"
#include "kvant/kvant.h"
#include "test_support.h"

namespace kvant {
namespace {

const char* const kStories = "stories260K/stories260K.gguf";

TEST(BenchCli, JsonHasOneObjectPerTestWithConsistentNumbers) {
  KVANT_REQUIRE_DATA(path, kStories);
  const auto r = test::run_cli("bench -m " + path + " -p 16 -n 8 -d 0,64 -r 2 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("[3/3]"), std::string::npos) << "progress belongs on stderr: " << r.err;
  const auto doc = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << "stdout is not JSON: " << r.out;
  ASSERT_TRUE(doc.is_array());
  ASSERT_EQ(doc.size(), 3u);
  const char* names[] = {"pp16", "tg8", "tg8@d64"};

  auto model = Model::load(path);
  ASSERT_TRUE(model) << model.error();
  SessionParams sp;
  auto kv = kv_footprint(**model, sp);
  ASSERT_TRUE(kv) << kv.error();

  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& o = doc[i];
    SCOPED_TRACE(o.dump());
    for (const char* key : {"test", "backend", "ctk", "ctv", "threads", "tps_mean", "tps_sd", "ms_per_token", "gbps",
                            "roofline_frac", "model_bytes", "kv_bytes_per_token", "depth", "n_prompt", "n_gen", "reps"}) {
      ASSERT_TRUE(o.contains(key)) << key;
    }
    EXPECT_EQ(o["test"], names[i]);
    EXPECT_EQ(o["backend"], "cpu");
    EXPECT_EQ(o["ctk"], "f16");
    EXPECT_EQ(o["reps"], 2);
    EXPECT_GE(o["threads"].get<int>(), 1);
    const double tps = o["tps_mean"], ms = o["ms_per_token"], gbps = o["gbps"], roof = o["roofline_frac"];
    EXPECT_GT(tps, 0);
    EXPECT_GE(o["tps_sd"].get<double>(), 0);
    // ms/token is the mean of 1000/tps over repetitions: never below 1000/mean(tps) (Jensen).
    EXPECT_GE(ms * 1.0001, 1000.0 / tps);
    // No upper bound: stories260K (1 MiB) lives in the CPU caches, so it can exceed the DRAM ceiling.
    EXPECT_GT(roof, 0.0);
    EXPECT_NEAR(gbps / o["bandwidth_gbps"].get<double>(), roof, 1e-3 * roof + 1e-6);
    EXPECT_EQ(o["model_bytes"].get<uint64_t>(), (*model)->info().weight_bytes);
    EXPECT_EQ(o["kv_bytes_per_token"].get<uint64_t>(), kv->bytes_per_token);
    // Decode reads all streamed weights and the KV of every cached token once per generated token.
    if (o["n_gen"].get<int>() > 0) {
      const double per_token = o["weight_bytes_read"].get<double>() + o["kv_bytes_read_per_token"].get<double>();
      EXPECT_NEAR(gbps, per_token * tps / 1e9, 1e-3 * gbps + 1e-4);
    }
  }
  EXPECT_EQ(doc[0]["n_prompt"], 16);
  EXPECT_EQ(doc[1]["depth"], 0);
  EXPECT_EQ(doc[2]["depth"], 64);
  EXPECT_EQ(doc[2]["n_gen"], 8);
  // tg8 attends over 1..8 keys (mean 4.5), tg8@d64 over 65..72 (mean 68.5).
  const uint64_t bpt = kv->bytes_per_token;
  EXPECT_EQ(doc[1]["kv_bytes_read_per_token"].get<uint64_t>(), bpt * 9 / 2);
  EXPECT_EQ(doc[2]["kv_bytes_read_per_token"].get<uint64_t>(), bpt * 137 / 2);
}

TEST(BenchCli, CsvHasHeaderAndOneRowPerTest) {
  KVANT_REQUIRE_DATA(path, kStories);
  const auto r = test::run_cli("bench -m " + path + " -p 16 -n 8 -d 0,64 -r 1 -o csv --bw-mib 256");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream in(r.out);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(lines[0].rfind("test,backend,", 0), 0u) << lines[0];
  const auto commas = [](const std::string& s) { return std::count(s.begin(), s.end(), ','); };
  for (size_t i = 1; i < lines.size(); ++i) EXPECT_EQ(commas(lines[i]), commas(lines[0])) << lines[i];
  EXPECT_EQ(lines[1].rfind("\"pp16\",\"cpu\"", 0), 0u) << lines[1];
  EXPECT_EQ(lines[3].rfind("\"tg8@d64\",", 0), 0u) << lines[3];
}

TEST(BenchCli, TableHasOneRowPerTest) {
  KVANT_REQUIRE_DATA(path, kStories);
  const auto r = test::run_cli("bench -m " + path + " -p 8 -n 4 -r 1 --bw-mib 256");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| model"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| pp8 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| tg4 "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("roofline %"), std::string::npos) << r.out;
}

TEST(BenchCli, BadFlagsAndListsAreOneLineErrors) {
  KVANT_REQUIRE_DATA(path, kStories);
  const std::pair<const char*, const char*> cases[] = {
      {"--no-such-flag", "--no-such-flag"}, {"-p 16,,32", "-p"},      {"-d 0,x", "'x'"},
      {"--backend gpu", "'gpu'"},          {"-o xml", "'xml'"},       {"-p 0 -n 0", "no tests"},
      {"-ctk nope -p 8 -n 0", "'nope'"},   {"-r 0", "-r"},
  };
  for (const auto& [flags, needle] : cases) {
    SCOPED_TRACE(flags);
    const auto r = test::run_cli("bench -m " + path + " " + flags + " --bw-mib 64");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_TRUE(r.out.empty()) << r.out;
    const std::string last = r.err.substr(r.err.rfind("kvant bench: "));
    EXPECT_NE(last.find("error"), std::string::npos) << r.err;
    EXPECT_NE(last.find(needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(last.begin(), last.end(), '\n'), 1) << r.err;
  }
  const auto no_model = test::run_cli("bench -p 8");
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.err.find("-m"), std::string::npos) << no_model.err;
}

TEST(BenchApi, TestListFollowsLlamaBench) {
  BenchParams p;
  p.n_prompt = {512, 0};
  p.n_gen = {128, 16};
  p.depth = {0, 4096};
  auto tests = bench_tests(p);
  ASSERT_TRUE(tests) << tests.error();
  std::vector<std::string> names;
  for (const BenchTest& t : *tests) names.push_back(t.name());
  EXPECT_EQ(names, (std::vector<std::string>{"pp512", "tg128", "tg128@d4096", "tg16", "tg16@d4096"}));
  p.depth = {(1u << 24)};
  EXPECT_FALSE(bench_tests(p));
}

std::vector<float> logits_after_fill(const std::shared_ptr<Model>& model, uint32_t depth, uint64_t seed) {
  SessionParams sp;
  sp.n_threads = 1;
  sp.n_ctx = 128;
  sp.backend = "cpu";
  auto session = Session::create(model, sp);
  EXPECT_TRUE(session) << session.error();
  if (!session) return {};
  EXPECT_TRUE((*session)->fill_for_benchmark(depth, seed));
  EXPECT_EQ((*session)->n_past(), depth);
  EXPECT_TRUE((*session)->eval({100}));
  EXPECT_EQ((*session)->n_past(), depth + 1);
  EXPECT_FALSE((*session)->fill_for_benchmark(128, seed)) << "overflowing the context must fail";
  const float* l = (*session)->logits();
  return std::vector<float>(l, l + model->n_vocab());
}

TEST(BenchApi, FillForBenchmarkWritesKvThatAttentionReads) {
  KVANT_REQUIRE_DATA(path, kStories);
  auto model = Model::load(path);
  ASSERT_TRUE(model) << model.error();
  const auto empty = logits_after_fill(*model, 0, 1);
  const auto a = logits_after_fill(*model, 40, 1);
  const auto b = logits_after_fill(*model, 40, 1);
  const auto c = logits_after_fill(*model, 40, 2);
  ASSERT_EQ(a.size(), empty.size());
  EXPECT_EQ(a, b) << "the fill is seeded";
  EXPECT_NE(a, empty) << "attention must see the filled tokens";
  EXPECT_NE(a, c) << "another seed fills other values";
  for (float x : a) ASSERT_TRUE(std::isfinite(x));
}

}  // namespace
}  // namespace kvant
