// tests/e2e/test_server.cpp — `kvant serve` with stories260K as a child process: SSE framing and greedy
// equality with `kvant run`, 100 malformed requests, 16 concurrent streams, client disconnects, stop
// strings, and the official openai npm client (when tests/e2e/node_modules/openai is installed).
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "e2e/server_harness.h"
#include "kvant/chat.h"
#include "test_support.h"

namespace kvant::test {
namespace {

using json = nlohmann::json;

const char* kModel = "stories260K/stories260K.gguf";
constexpr int kCtx = 512;

class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string model = data_file(kModel);
    if (model.empty()) return;
    server_ = new ServerProcess();
    ok_ = server_->start(KVANT_CLI_PATH, {"-m", model, "--port", "0", "-c", std::to_string(kCtx), "--parallel", "4",
                                          "--chat-template", "chatml", "-t", "1"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (data_file(kModel).empty()) GTEST_SKIP() << "shared data absent: " << shared_data() << "/" << kModel;
    if (server_->unsupported()) GTEST_SKIP() << "kvant was built without HTTP server support";
    ASSERT_TRUE(ok_) << "kvant serve did not start:\n" << server_->log();
    port_ = server_->port();
  }

  // Greedy `kvant run` output for a prompt (written to a file so that any bytes survive the shell).
  static std::string run_greedy(const std::string& prompt, int n) {
    const std::string path = temp_dir() + "/prompt.txt";
    std::ofstream(path, std::ios::binary) << prompt;
    CliResult r = run_cli("run -m " + data_file(kModel) + " -f " + path + " -n " + std::to_string(n) +
                          " --temp 0 -t 1 -c " + std::to_string(kCtx));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }

  static ServerProcess* server_;
  static bool ok_;
  int port_ = 0;
};

ServerProcess* ServerTest::server_ = nullptr;
bool ServerTest::ok_ = false;

// Checks SSE framing and returns the streamed text; `usage_out` gets the final chunk's usage.
std::string collect_stream(const HttpResponse& r, bool chat, json* usage_out, std::string* finish_out = nullptr) {
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.headers.find("text/event-stream"), std::string::npos) << r.headers;
  const std::vector<std::string> events = sse_events(r.body);
  EXPECT_GE(events.size(), 2u);
  if (events.empty()) return "";
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text, id;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    json e = json::parse(events[i], nullptr, false);
    EXPECT_FALSE(e.is_discarded()) << events[i];
    if (e.is_discarded()) continue;
    EXPECT_EQ(e["object"], chat ? "chat.completion.chunk" : "text_completion");
    if (id.empty()) id = e["id"];
    EXPECT_EQ(e["id"], id);
    if (e["choices"].empty()) continue;
    const json& c = e["choices"][0];
    if (chat) {
      if (i == 0) {
        EXPECT_EQ(c["delta"]["role"], "assistant");
      }
      if (c["delta"].contains("content")) text += c["delta"]["content"].get<std::string>();
    } else {
      text += c["text"].get<std::string>();
    }
    const bool last = i + 2 == events.size();
    EXPECT_EQ(c["finish_reason"].is_null(), !last) << events[i];
    if (last) {
      if (usage_out != nullptr) *usage_out = e["usage"];
      if (finish_out != nullptr) *finish_out = c["finish_reason"];
    }
  }
  return text;
}

TEST_F(ServerTest, HealthAndModels) {
  HttpResponse h = http(port_, "GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(json::parse(h.body)["status"], "ok");
  HttpResponse m = http(port_, "GET", "/v1/models");
  ASSERT_EQ(m.status, 200);
  json models = json::parse(m.body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "stories260K.gguf");
}

// The chat check uses --chat-template chatml (stories260K has no template of its own): the server's
// greedy stream must equal `kvant run` on the same rendered prompt.
TEST_F(ServerTest, StreamedChatEqualsRunOnRenderedPrompt) {
  const std::vector<ChatMessage> messages = {{"system", "You tell stories."}, {"user", "Tell me about a cat."}};
  auto model = Model::load(data_file(kModel));
  ASSERT_TRUE(model.has_value());
  auto rendered = render_chat(**model, messages, true, "chatml");
  ASSERT_TRUE(rendered.has_value()) << rendered.error();
  json body = {{"model", "x"}, {"stream", true}, {"temperature", 0}, {"max_tokens", 40},
               {"messages", {{{"role", "system"}, {"content", "You tell stories."}}, {{"role", "user"}, {"content", "Tell me about a cat."}}}}};
  json usage;
  const std::string streamed = collect_stream(http(port_, "POST", "/v1/chat/completions", body.dump()), true, &usage);
  const std::string expected = run_greedy(*rendered, 40);
  EXPECT_FALSE(expected.empty());
  EXPECT_EQ(streamed, expected);
  EXPECT_EQ(usage["prompt_tokens"], (*model)->tokenize(*rendered, true, true).size());
  EXPECT_EQ(usage["completion_tokens"], 40);
  EXPECT_EQ(usage["total_tokens"], usage["prompt_tokens"].get<int>() + 40);

  // The same request without streaming: one JSON with the same text.
  body["stream"] = false;
  HttpResponse r = http(port_, "POST", "/v1/chat/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], expected);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_GT(j["usage"]["prompt_tokens_details"]["cached_tokens"].get<int>(), 0);  // prefix reuse
}

TEST_F(ServerTest, CompletionEqualsRunAndHonoursStop) {
  const std::string prompt = "Once upon a time";
  const std::string expected = run_greedy(prompt, 24);
  json body = {{"prompt", prompt}, {"temperature", 0}, {"max_tokens", 24}};
  HttpResponse r = http(port_, "POST", "/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  json j = json::parse(r.body);
  EXPECT_EQ(j["choices"][0]["text"], expected);
  EXPECT_EQ(j["usage"]["completion_tokens"], 24);

  // Stop at the first occurrence of a word of the greedy text: the text ends right before it.
  const size_t cut = expected.find(' ', 6);
  ASSERT_NE(cut, std::string::npos);
  const std::string stop = expected.substr(cut, 4);
  body["stop"] = json::array({"zzzz", stop});
  body["stream"] = true;
  std::string finish;
  const std::string text = collect_stream(http(port_, "POST", "/v1/completions", body.dump()), false, nullptr, &finish);
  EXPECT_EQ(text, expected.substr(0, expected.find(stop)));
  EXPECT_EQ(finish, "stop");
}

TEST_F(ServerTest, SeededSamplingIsReproducible) {
  json body = {{"prompt", "The dog"}, {"temperature", 1.0}, {"top_k", 0}, {"top_p", 1.0}, {"min_p", 0}, {"seed", 1234}, {"max_tokens", 24}};
  HttpResponse a = http(port_, "POST", "/v1/completions", body.dump());
  HttpResponse b = http(port_, "POST", "/v1/completions", body.dump());
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(json::parse(a.body)["choices"][0]["text"], json::parse(b.body)["choices"][0]["text"]);
}

TEST_F(ServerTest, MalformedRequestsGet4xxJsonErrors) {
  struct Case {
    std::string request;
    std::string what;
  };
  std::vector<Case> cases;
  auto post = [&](const std::string& path, const std::string& body, const std::string& what) {
    cases.push_back({http_request_text("POST", path, body), what});
  };
  const std::vector<std::string> paths = {"/v1/completions", "/v1/chat/completions"};
  const std::vector<std::string> bad_bodies = {
      "", "{", "}", "[]", "null", "42", "\"text\"", "{\"prompt\": }", "{\"messages\": [}", "{'prompt': 'x'}",
      "{\"prompt\": \"\xff\xfe\"}", "{\"messages\": [{\"role\": \"user\", \"content\": \"\xc3\x28\"}]}",
      "{\"prompt\": \"x\", \"max_tokens\": -1}", "{\"prompt\": \"x\", \"max_tokens\": 0}",
      "{\"prompt\": \"x\", \"max_tokens\": 1e30}", "{\"prompt\": \"x\", \"max_tokens\": 99999999999999999999}",
      "{\"prompt\": \"x\", \"max_tokens\": 100000}", "{\"prompt\": \"x\", \"max_tokens\": \"10\"}",
      "{\"prompt\": \"x\", \"max_tokens\": 1.5}", "{\"prompt\": \"x\", \"temperature\": \"hot\"}",
      "{\"prompt\": \"x\", \"temperature\": -1}", "{\"prompt\": \"x\", \"top_p\": 0}", "{\"prompt\": \"x\", \"top_p\": 2}",
      "{\"prompt\": \"x\", \"top_k\": -5}", "{\"prompt\": \"x\", \"top_k\": [1]}", "{\"prompt\": \"x\", \"min_p\": 3}",
      "{\"prompt\": \"x\", \"seed\": \"abc\"}", "{\"prompt\": \"x\", \"seed\": 0.5}", "{\"prompt\": \"x\", \"stop\": 5}",
      "{\"prompt\": \"x\", \"stop\": [1, 2]}", "{\"prompt\": \"x\", \"stop\": {\"a\": 1}}", "{\"prompt\": \"x\", \"stream\": \"yes\"}",
      "{\"prompt\": \"x\", \"stream\": 1}", "{\"prompt\": \"x\", \"n\": 3}", "{\"prompt\": \"x\", \"model\": 7}",
      "{\"prompt\": \"x\", \"max_completion_tokens\": -2}"};
  for (const std::string& path : paths) {
    for (const std::string& b : bad_bodies) post(path, b, path + " " + b);
  }
  const std::vector<std::string> bad_completions = {
      "{}", "{\"prompt\": 5}", "{\"prompt\": null}", "{\"prompt\": [1, 2, 3]}", "{\"prompt\": [\"a\", \"b\"]}",
      "{\"prompt\": {\"text\": \"x\"}}", "{\"prompt\": \"" + std::string(3000, 'a') + "\"}",
      "{\"prompt\": \"x\", \"max_tokens\": " + std::to_string(kCtx) + "}"};
  for (const std::string& b : bad_completions) post("/v1/completions", b, "completions " + b.substr(0, 60));
  const std::vector<std::string> bad_chats = {
      "{}", "{\"messages\": []}", "{\"messages\": \"hi\"}", "{\"messages\": [1]}", "{\"messages\": [{}]}",
      "{\"messages\": [{\"role\": 5, \"content\": \"x\"}]}", "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}",
      "{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]}",
      "{\"messages\": [{\"role\": \"user\", \"content\": {\"a\": 1}}]}", "{\"messages\": null}",
      "{\"messages\": [{\"role\": \"user\", \"content\": \"" + std::string(3000, 'b') + "\"}]}"};
  for (const std::string& b : bad_chats) post("/v1/chat/completions", b, "chat " + b.substr(0, 60));
  // Oversize bodies, wrong methods and paths.
  post("/v1/completions", "{\"prompt\": \"" + std::string(size_t(2) << 20, 'x') + "\"}", "2 MiB body");
  // A Content-Length over the limit with no body: 413 once the server's read timeout (5 s) passes.
  cases.push_back({"POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5000000\r\n\r\n{}", "huge content-length"});
  for (const char* m : {"GET", "PUT", "DELETE", "PATCH"}) {
    cases.push_back({http_request_text(m, "/v1/completions", m == std::string("GET") ? "" : "{}"), std::string(m) + " completions"});
    cases.push_back({http_request_text(m, "/v1/chat/completions", m == std::string("GET") ? "" : "{}"), std::string(m) + " chat"});
  }
  post("/v1/models", "{}", "POST models");
  post("/health", "{}", "POST health");
  for (const char* p : {"/", "/v1", "/v2/completions", "/v1/completion", "/v1/chat", "/../etc/passwd", "/v1/models/x"}) {
    cases.push_back({http_request_text("GET", p, ""), std::string("GET ") + p});
    post(p, "{}", std::string("POST ") + p);
  }
  ASSERT_GE(cases.size(), 100u);
  for (const Case& c : cases) {
    const auto t0 = std::chrono::steady_clock::now();
    HttpResponse r = http_raw(port_, c.request);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20)) << c.what;
    EXPECT_GE(r.status, 400) << c.what << "\n" << r.body.substr(0, 300);
    EXPECT_LT(r.status, 500) << c.what << "\n" << r.body.substr(0, 300);
    json j = json::parse(r.body, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << c.what << ": body is not JSON: " << r.body.substr(0, 200);
    ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << c.what << ": " << r.body.substr(0, 200);
    EXPECT_TRUE(j["error"]["message"].is_string()) << c.what;
    EXPECT_TRUE(j["error"]["type"].is_string()) << c.what;
    EXPECT_TRUE(j["error"].contains("code")) << c.what;
  }
  // Still serving.
  HttpResponse ok = http(port_, "POST", "/v1/completions", R"({"prompt": "Once", "max_tokens": 4, "temperature": 0})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(http(port_, "GET", "/health").status, 200);
}

TEST_F(ServerTest, SixteenConcurrentStreamsEachGetTheirGreedyOutput) {
  const std::vector<std::string> starts = {"Once upon a time", "The cat", "Tom had a", "Lily went to", "One day",
                                           "The sun", "A big dog", "Mom said", "The little bird", "Ben and Sue",
                                           "In the park", "The old man", "She saw a", "The car", "It was a", "He ran"};
  constexpr int kTokens = 24;
  std::vector<std::string> expected;
  for (const std::string& p : starts) expected.push_back(run_greedy(p, kTokens));
  std::vector<std::string> got(starts.size());
  std::vector<int> completion_tokens(starts.size(), -1);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < starts.size(); ++i) {
    clients.emplace_back([&, i] {
      json body = {{"prompt", starts[i]}, {"temperature", 0}, {"max_tokens", kTokens}, {"stream", true}};
      json usage;
      got[i] = collect_stream(http(port_, "POST", "/v1/completions", body.dump()), false, &usage);
      if (usage.is_object()) completion_tokens[i] = usage["completion_tokens"];
    });
  }
  for (std::thread& t : clients) t.join();
  for (size_t i = 0; i < starts.size(); ++i) {
    EXPECT_EQ(got[i], expected[i]) << "client " << i << " prompt '" << starts[i] << "'";
    EXPECT_EQ(completion_tokens[i], kTokens) << i;
  }
}

TEST_F(ServerTest, ClientDisconnectCancelsGeneration) {
  const uint64_t cancelled_before = json::parse(http(port_, "GET", "/health").body)["cancelled"];
  const int fd = http_connect(port_);
  ASSERT_GE(fd, 0);
  json body = {{"prompt", "Once upon a time"}, {"temperature", 0}, {"max_tokens", 480}, {"stream", true}, {"ignore", "unknown fields are fine"}};
  ASSERT_TRUE(send_all(fd, http_request_text("POST", "/v1/completions", body.dump())));
  char buf[512];
  ASSERT_GT(::recv(fd, buf, sizeof buf, 0), 0);  // the stream has started
  ::close(fd);
  bool cancelled = false;
  for (int i = 0; i < 200 && !cancelled; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    json h = json::parse(http(port_, "GET", "/health").body);
    cancelled = h["cancelled"].get<uint64_t>() > cancelled_before && h["slots_busy"] == 0;
  }
  EXPECT_TRUE(cancelled) << "the generation kept its slot after the client left";
}

TEST_F(ServerTest, OfficialOpenAiNodeClient) {
  const std::filesystem::path dir = std::filesystem::path(__FILE__).parent_path();
  if (!std::filesystem::exists(dir / "node_modules" / "openai")) {
    GTEST_SKIP() << "the openai npm package is absent; install it with: npm install --prefix tests/e2e openai@4";
  }
  if (std::system("node --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  const std::string cmd = "node " + (dir / "openai_client.mjs").string() + " http://127.0.0.1:" + std::to_string(port_) + "/v1 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("openai client: ok"), std::string::npos) << out;
}

TEST(ServerNoTemplate, ChatWithoutTemplateIs400NamingTheFlag) {
  KVANT_REQUIRE_DATA(model, kModel);
  ServerProcess server;
  const bool up = server.start(KVANT_CLI_PATH, {"-m", model, "--port", "0", "--parallel", "1", "-t", "1"});
  if (server.unsupported()) GTEST_SKIP() << "kvant was built without HTTP server support";
  ASSERT_TRUE(up) << server.log();
  EXPECT_NE(server.log().find("--chat-template"), std::string::npos) << server.log();  // startup warning
  HttpResponse r = http(server.port(), "POST", "/v1/chat/completions", R"({"messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("--chat-template"), std::string::npos) << r.body;
  HttpResponse c = http(server.port(), "POST", "/v1/completions", R"({"prompt": "hi", "max_tokens": 2})");
  EXPECT_EQ(c.status, 200) << c.body;
}

}  // namespace
}  // namespace kvant::test
