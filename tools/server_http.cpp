// tools/server_http.cpp — OpenAI-compatible routes of `kvant serve`: request validation (every malformed
// request is a 4xx with {"error": {"message", "type", "code"}}), chat/prompt tokenisation, and streaming
// (SSE `data: {json}\n\n` chunks ending with `data: [DONE]`) or whole-JSON responses.
#ifdef KVANT_HAVE_HTTP_SERVER

#include "server_http.h"

#include <httplib.h>
#include <pthread.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "kvant/chat.h"

namespace kvant::cli {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

json error_json(const std::string& message, const std::string& type, const std::string& code) {
  return {{"error", {{"message", message}, {"type", type}, {"code", code.empty() ? json(nullptr) : json(code)}}}};
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& type = "invalid_request_error", const std::string& code = "") {
  res.status = status;
  res.set_content(dump(error_json(message, type, code)), "application/json");
}

// A request error: HTTP status and OpenAI-style code.
struct RequestError {
  int status = 400;
  std::string message, code;
};

struct ParsedRequest {
  GenerationRequest gen;
  bool chat = false, stream = false, include_usage = false;
};

struct Context {
  ServerEngine* engine = nullptr;
  HttpServerOptions options;
  std::atomic<uint64_t> next_id{1};
};

std::optional<RequestError> bad(const std::string& message, const std::string& code = "") {
  return RequestError{400, message, code};
}

// Number in [lo, hi] at key, if present and not null.
std::optional<RequestError> read_number(const json& body, const char* key, double lo, double hi, float& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  const json& v = body[key];
  if (!v.is_number()) return bad(std::string("'") + key + "' must be a number");
  const double d = v.get<double>();
  if (!(d >= lo && d <= hi)) return bad(std::string("'") + key + "' must be in [" + dump(lo) + ", " + dump(hi) + "], got " + dump(v));
  out = float(d);
  return std::nullopt;
}

std::optional<RequestError> read_integer(const json& body, const char* key, int64_t lo, int64_t hi, int64_t& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  const json& v = body[key];
  if (!v.is_number_integer()) return bad(std::string("'") + key + "' must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)) return bad(std::string("'") + key + "' is too large");
  const int64_t i = v.get<int64_t>();
  if (i < lo || i > hi) return bad(std::string("'") + key + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(i));
  out = i;
  return std::nullopt;
}

std::optional<RequestError> read_stops(const json& body, std::vector<std::string>& stops) {
  if (!body.contains("stop") || body["stop"].is_null()) return std::nullopt;
  const json& v = body["stop"];
  if (v.is_string()) {
    stops.push_back(v.get<std::string>());
    return std::nullopt;
  }
  if (!v.is_array() || v.size() > 16) return bad("'stop' must be a string or an array of at most 16 strings");
  for (const json& s : v) {
    if (!s.is_string()) return bad("'stop' must be a string or an array of strings");
    stops.push_back(s.get<std::string>());
  }
  return std::nullopt;
}

// "content": a string, null, or an array of {"type": "text", "text": ...} parts.
std::optional<RequestError> read_content(const json& v, size_t index, std::string& out) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) {
    out = v.get<std::string>();
    return std::nullopt;
  }
  if (v.is_array()) {
    for (const json& part : v) {
      if (!part.is_object() || !part.contains("text") || !part["text"].is_string()) {
        return bad("messages[" + std::to_string(index) + "].content: only text parts are supported");
      }
      out += part["text"].get<std::string>();
    }
    return std::nullopt;
  }
  return bad("messages[" + std::to_string(index) + "].content must be a string or an array of text parts");
}

// Builds the prompt text: the rendered chat or the raw completion prompt.
std::optional<RequestError> read_prompt(const json& body, const Context& ctx, ParsedRequest& req, std::string& text) {
  const Model& model = ctx.engine->model();
  if (req.chat) {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      return bad("'messages' must be a non-empty array");
    }
    std::vector<ChatMessage> messages;
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const json& m = body["messages"][i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
        return bad("messages[" + std::to_string(i) + "] must be an object with a string 'role'");
      }
      ChatMessage message{m["role"].get<std::string>(), ""};
      if (m.contains("content")) {
        if (auto e = read_content(m["content"], i, message.content)) return e;
      }
      messages.push_back(std::move(message));
    }
    auto rendered = render_chat(model, messages, true, ctx.options.chat_template);
    if (!rendered) return bad(rendered.error());
    auto stops = chat_stop_strings(model, ctx.options.chat_template);
    if (stops) req.gen.stops.insert(req.gen.stops.end(), stops->begin(), stops->end());
    text = *rendered;
    return std::nullopt;
  }
  if (!body.contains("prompt")) return bad("'prompt' is required");
  const json& p = body["prompt"];
  if (p.is_string()) {
    text = p.get<std::string>();
  } else if (p.is_array() && p.size() == 1 && p[0].is_string()) {
    text = p[0].get<std::string>();
  } else {
    return bad("'prompt' must be a string (or an array of one string)");
  }
  return std::nullopt;
}

std::variant<ParsedRequest, RequestError> parse_request(const std::string& body_text, Context& ctx, bool chat) {
  json body = json::parse(body_text, nullptr, false);  // invalid UTF-8 in strings is a parse error too
  if (body.is_discarded()) return RequestError{400, "the request body is not valid JSON (UTF-8)", "invalid_json"};
  if (!body.is_object()) return RequestError{400, "the request body must be a JSON object", "invalid_json"};
  ParsedRequest req;
  req.chat = chat;
  if (body.contains("model") && !body["model"].is_string() && !body["model"].is_null()) return *bad("'model' must be a string");
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) return *bad("'stream' must be a boolean");
    req.stream = body["stream"].get<bool>();
  }
  if (body.contains("stream_options") && body["stream_options"].is_object()) {
    const json& so = body["stream_options"];
    if (so.contains("include_usage") && so["include_usage"].is_boolean()) req.include_usage = so["include_usage"].get<bool>();
  }
  SamplerParams& sp = req.gen.sampling;
  int64_t top_k = sp.top_k, seed = -1, n = 1, max_tokens = -1;
  if (auto e = read_number(body, "temperature", 0.0, 100.0, sp.temperature)) return *e;
  if (auto e = read_number(body, "top_p", 0.0, 1.0, sp.top_p)) return *e;
  if (auto e = read_number(body, "min_p", 0.0, 1.0, sp.min_p)) return *e;
  if (auto e = read_number(body, "repeat_penalty", 0.01, 100.0, sp.repeat_penalty)) return *e;
  if (auto e = read_integer(body, "top_k", 0, 1 << 24, top_k)) return *e;
  if (auto e = read_integer(body, "seed", INT64_MIN, INT64_MAX, seed)) return *e;
  if (auto e = read_integer(body, "n", 1, 1, n)) return *e;
  if (auto e = read_integer(body, "max_tokens", 1, INT32_MAX, max_tokens)) return *e;
  if (auto e = read_integer(body, "max_completion_tokens", 1, INT32_MAX, max_tokens)) return *e;
  if (auto e = read_stops(body, req.gen.stops)) return *e;
  if (sp.top_p <= 0.0f) return *bad("'top_p' must be greater than 0");
  sp.top_k = int32_t(top_k);
  if (body.contains("seed") && !body["seed"].is_null()) sp.seed = uint64_t(seed);
  std::string text;
  if (auto e = read_prompt(body, ctx, req, text)) return *e;
  const Model& model = ctx.engine->model();
  req.gen.prompt = model.tokenize(text, true, true);
  const int64_t n_ctx = ctx.engine->n_ctx();
  const int64_t n_prompt = int64_t(req.gen.prompt.size());
  if (n_prompt == 0) return *bad("the prompt is empty and the model adds no BOS token");
  if (n_prompt >= n_ctx) {
    return RequestError{400, "the prompt is " + std::to_string(n_prompt) + " tokens; the context holds " +
                             std::to_string(n_ctx) + " (prompt plus at least one generated token)", "context_length_exceeded"};
  }
  if (max_tokens < 0) max_tokens = n_ctx - n_prompt;
  if (n_prompt + max_tokens > n_ctx) {
    return RequestError{400, "max_tokens " + std::to_string(max_tokens) + " plus the prompt's " + std::to_string(n_prompt) +
                             " tokens exceed the context of " + std::to_string(n_ctx), "context_length_exceeded"};
  }
  req.gen.max_tokens = int32_t(max_tokens);
  return req;
}

json usage_json(const GenerationJob& job) {
  return {{"prompt_tokens", job.prompt_tokens},
          {"completion_tokens", job.completion_tokens},
          {"total_tokens", job.prompt_tokens + job.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", job.cached_tokens}}}};
}

json choice_delta(bool chat, const std::string& text, const json& finish_reason) {
  if (chat) return {{"index", 0}, {"delta", text.empty() ? json::object() : json{{"content", text}}}, {"finish_reason", finish_reason}};
  return {{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
}

void handle_generation(Context& ctx, const httplib::Request& http_req, httplib::Response& res, bool chat) {
  auto parsed = parse_request(http_req.body, ctx, chat);
  if (auto* e = std::get_if<RequestError>(&parsed)) return send_error(res, e->status, e->message, "invalid_request_error", e->code);
  ParsedRequest req = std::move(std::get<ParsedRequest>(parsed));
  auto job = ctx.engine->submit(std::move(req.gen));
  const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(ctx.next_id.fetch_add(1));
  const int64_t created = int64_t(std::time(nullptr));
  const std::string object = chat ? "chat.completion" : "text_completion";
  const std::string model_id = ctx.options.model_id;
  if (!req.stream) {
    std::string text, piece;
    bool done = false;
    while (!done) {
      done = job->wait(piece, 1000);
      text += piece;
    }
    if (job->finish_reason == "error") return send_error(res, 500, job->error, "server_error");
    json choice = chat ? json{{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"finish_reason", job->finish_reason}}
                       : json{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", job->finish_reason}};
    json out = {{"id", id}, {"object", object}, {"created", created}, {"model", model_id},
                {"choices", json::array({choice})}, {"usage", usage_json(*job)}};
    res.set_content(dump(out), "application/json");
    return;
  }
  const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  auto header = json{{"id", id}, {"object", chunk_object}, {"created", created}, {"model", model_id}};
  auto started = std::make_shared<bool>(false);
  const bool include_usage = req.include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [job, header, started, chat, include_usage](size_t, httplib::DataSink& sink) {
        auto send = [&](const json& payload) {
          const std::string event = "data: " + dump(payload) + "\n\n";
          return sink.write(event.data(), event.size());
        };
        auto chunk = [&](const json& choice) {
          json c = header;
          c["choices"] = json::array({choice});
          return c;
        };
        if (!*started) {
          *started = true;
          if (chat) {
            json first = chunk({{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}}, {"finish_reason", nullptr}});
            if (!send(first)) return job->cancel(), false;
          }
        }
        std::string text;
        const bool done = job->wait(text, 100);
        if (!text.empty() && !send(chunk(choice_delta(chat, text, nullptr)))) return job->cancel(), false;
        if (text.empty() && !sink.is_writable()) return job->cancel(), false;
        if (!done) return true;
        if (job->finish_reason == "error") {
          if (!send(error_json(job->error, "server_error", ""))) return false;
        } else {
          json last = chunk(choice_delta(chat, "", job->finish_reason));
          last["usage"] = usage_json(*job);
          if (!send(last)) return false;
          if (include_usage) {
            json usage = header;
            usage["choices"] = json::array();
            usage["usage"] = usage_json(*job);
            if (!send(usage)) return false;
          }
        }
        const std::string done_event = "data: [DONE]\n\n";
        if (!sink.write(done_event.data(), done_event.size())) return false;
        sink.done();
        return true;
      },
      [job](bool success) {
        if (!success) job->cancel();  // the client went away: free the slot
      });
}

bool known_path(const std::string& path) {
  return path == "/v1/chat/completions" || path == "/v1/completions" || path == "/v1/models" || path == "/health";
}

}  // namespace

int run_http_server(ServerEngine& engine, const HttpServerOptions& options) {
  Context ctx;
  ctx.engine = &engine;
  ctx.options = options;
  httplib::Server svr;
  // Streaming clients each hold a connection thread; keep plenty above the slot count.
  const size_t n_threads = std::max<size_t>(32, size_t(engine.n_slots()) * 4 + 8);
  svr.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  svr.set_payload_max_length(options.max_body_bytes);
  svr.set_read_timeout(5);  // also bounds how long an oversize body is drained before its 413
  svr.set_write_timeout(30);

  svr.Post("/v1/chat/completions", [&](const httplib::Request& q, httplib::Response& r) { handle_generation(ctx, q, r, true); });
  svr.Post("/v1/completions", [&](const httplib::Request& q, httplib::Response& r) { handle_generation(ctx, q, r, false); });
  svr.Get("/v1/models", [&](const httplib::Request&, httplib::Response& r) {
    json model = {{"id", options.model_id}, {"object", "model"}, {"created", int64_t(std::time(nullptr))}, {"owned_by", "kvant"},
                  {"meta", {{"n_ctx", engine.n_ctx()}, {"n_vocab", engine.model().n_vocab()}, {"slots", engine.n_slots()}}}};
    r.set_content(dump({{"object", "list"}, {"data", json::array({model})}}), "application/json");
  });
  svr.Get("/health", [&](const httplib::Request&, httplib::Response& r) {
    const ServerEngine::Stats st = engine.stats();
    r.set_content(dump({{"status", "ok"}, {"slots_busy", st.busy_slots}, {"slots_idle", engine.n_slots() - st.busy_slots},
                        {"queued", st.queued}, {"finished", st.finished}, {"cancelled", st.cancelled}}),
                  "application/json");
  });
  auto wrong_method = [](const httplib::Request& q, httplib::Response& r) {
    if (!known_path(q.path)) return send_error(r, 404, "no route " + q.method + " " + q.path, "invalid_request_error", "not_found");
    send_error(r, 405, "method " + q.method + " is not allowed on " + q.path, "invalid_request_error", "method_not_allowed");
  };
  svr.Get("/v1/chat/completions", wrong_method);
  svr.Get("/v1/completions", wrong_method);
  svr.Post("/v1/models", wrong_method);
  svr.Post("/health", wrong_method);
  svr.Put(".*", wrong_method);
  svr.Delete(".*", wrong_method);
  svr.Patch(".*", wrong_method);
  svr.Options(".*", wrong_method);
  svr.set_error_handler([](const httplib::Request& q, httplib::Response& r) {
    if (!r.body.empty()) return;  // a route already wrote its JSON error
    std::string message = "HTTP " + std::to_string(r.status);
    std::string code;
    if (r.status == 404) message = "no route " + q.method + " " + q.path, code = "not_found";
    if (r.status == 413) message = "the request body is larger than the limit", code = "payload_too_large";
    if (r.status == 400) message = "malformed HTTP request", code = "bad_request";
    send_error(r, r.status, message, r.status >= 500 ? "server_error" : "invalid_request_error", code);
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& r, std::exception_ptr e) {
    std::string what = "internal error";
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      what = ex.what();
    } catch (...) {
    }
    send_error(r, 500, what, "server_error");
  });

  int port = options.port;
  if (port == 0) {
    port = svr.bind_to_any_port(options.host);
    if (port <= 0) return std::fprintf(stderr, "kvant serve: error: cannot bind %s\n", options.host.c_str()), 1;
  } else if (!svr.bind_to_port(options.host, port)) {
    std::fprintf(stderr, "kvant serve: error: cannot listen on %s:%d (in use?)\n", options.host.c_str(), port);
    return 1;
  }
  // SIGINT/SIGTERM were blocked by the caller: wait for them here and stop the server cleanly.
  std::thread signal_waiter([&svr] {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "kvant serve: signal %d, stopping\n", sig);
    svr.stop();
  });
  std::printf("kvant serve: listening on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);
  const bool ok = svr.listen_after_bind();
  if (signal_waiter.joinable()) {
    pthread_kill(signal_waiter.native_handle(), SIGTERM);  // wake it if the server stopped on its own
    signal_waiter.join();
  }
  return ok ? 0 : 1;
}

}  // namespace kvant::cli

#endif  // KVANT_HAVE_HTTP_SERVER
