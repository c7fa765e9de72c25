// tests/e2e/test_chat_cli.cpp — `kvant chat` over a pipe with stories260K (--chat-template chatml): the
// first greedy reply equals `kvant run` on the rendered prompt, later turns reuse the cached history,
// /save + /load and --save-kv/--load-kv work, and a model without a template needs --chat-template.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "kvant/chat.h"
#include "test_support.h"

namespace kvant::test {
namespace {

const char* kModel = "stories260K/stories260K.gguf";

std::string write_temp(const std::string& text) {
  const std::string path = temp_dir() + "/in.txt";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

struct Turn {
  size_t prompt = 0, cached = 0, evaluated = 0, generated = 0;
};

std::vector<Turn> turns(const std::string& err) {
  std::vector<Turn> out;
  for (size_t at = err.find("[turn: "); at != std::string::npos; at = err.find("[turn: ", at + 1)) {
    Turn t;
    if (std::sscanf(err.c_str() + at, "[turn: %zu prompt tokens, %zu cached, %zu evaluated, %zu generated]", &t.prompt,
                    &t.cached, &t.evaluated, &t.generated) == 4) {
      out.push_back(t);
    }
  }
  return out;
}

TEST(ChatCli, FirstReplyEqualsRunAndLaterTurnsReuseTheCache) {
  KVANT_REQUIRE_DATA(model_path, kModel);
  auto model = Model::load(model_path);
  ASSERT_TRUE(model.has_value());
  auto rendered = render_chat(**model, {{"system", "Be kind."}, {"user", "Hello there"}}, true, "chatml");
  ASSERT_TRUE(rendered.has_value());
  CliResult ref = run_cli("run -m " + model_path + " -f " + write_temp(*rendered) + " -n 12 --temp 0 -c 1024");
  ASSERT_EQ(ref.exit_code, 0) << ref.err;

  const std::string input = write_temp("Hello there\nTell me more\n/exit\n");
  CliResult r = run_cli("chat -m " + model_path + " --chat-template chatml --system 'Be kind.' --temp 0 -n 12 -c 1024 --verbose < " + input);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.compare(0, ref.out.size() + 1, ref.out + "\n"), 0) << "chat: " << r.out << "\nrun: " << ref.out;
  const std::vector<Turn> t = turns(r.err);
  ASSERT_EQ(t.size(), 2u) << r.err;
  EXPECT_EQ(t[0].cached, 0u);
  EXPECT_EQ(t[0].evaluated, t[0].prompt);
  EXPECT_EQ(t[0].generated, 12u);
  // Turn 2 keeps turn 1's prompt and reply in the cache and evaluates only the new part.
  EXPECT_GE(t[1].cached, t[0].prompt + 1);
  EXPECT_LT(t[1].evaluated, t[1].prompt - t[0].prompt);
  EXPECT_EQ(t[1].cached + t[1].evaluated, t[1].prompt);
}

TEST(ChatCli, SaveAndLoadContinueAConversation) {
  KVANT_REQUIRE_DATA(model_path, kModel);
  const std::string dir = temp_dir();
  const std::string file = dir + "/chat.kv";
  const std::string common = "chat -m " + model_path + " --chat-template chatml --temp 0 -n 6 -c 1024 --verbose";
  CliResult first = run_cli(common + " --save-kv " + file + " < " + write_temp("Hi\n"));
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_NE(first.err.find("saved"), std::string::npos);
  CliResult second = run_cli(common + " --load-kv " + file + " < " + write_temp("Again\n/save " + dir + "/b.kv\n/reset\n/load " + dir + "/b.kv\nMore\n"));
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const std::vector<Turn> t = turns(second.err);
  ASSERT_EQ(t.size(), 2u) << second.err;
  EXPECT_GT(t[0].cached, 0u);                  // the loaded context was reused
  EXPECT_GE(t[1].cached, t[0].prompt + 5);     // and /load restored turn 1 with its reply
  EXPECT_NE(second.err.find("[loaded"), std::string::npos) << second.err;
  CliResult wrong = run_cli("chat -m " + model_path + " --chat-template chatml -ctk f32 --load-kv " + file + " < /dev/null");
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_NE(wrong.err.find("K type"), std::string::npos) << wrong.err;
}

TEST(ChatCli, ModelWithoutTemplateNeedsTheFlag) {
  KVANT_REQUIRE_DATA(model_path, kModel);
  CliResult r = run_cli("chat -m " + model_path + " < /dev/null");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--chat-template"), std::string::npos) << r.err;
  CliResult bad = run_cli("chat -m " + model_path + " --chat-template vicuna < /dev/null");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("vicuna"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace kvant::test
