// tools/cmd_serve.cpp — `kvant serve`: OpenAI-compatible HTTP server over N slots (see server_engine.h
// and server_http.h). Without cpp-httplib/nlohmann-json at build time it only reports that.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "common.h"
#include "kvant/chat.h"
#include "server_engine.h"
#ifdef KVANT_HAVE_HTTP_SERVER
#include "server_http.h"
#endif

namespace kvant::cli {

int cmd_serve(const std::vector<std::string>& args) {
  std::string model_path, host = "127.0.0.1", template_name;
  int32_t port = 8080, n_parallel = 4;
  SessionParams session;
  ArgParser p("serve", "OpenAI-compatible HTTP server: /v1/chat/completions, /v1/completions, /v1/models, /health.");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model (required)");
  p.option({"--host"}, &host, "ADDR", "address to listen on (default 127.0.0.1)");
  p.option({"--port"}, &port, "N", "port (default 8080; 0: any free port, printed at start)", 0, 65535);
  p.option({"-np", "--parallel"}, &n_parallel, "N", "slots: requests generated concurrently (default 4)", 1, 256);
  p.option({"--chat-template"}, &template_name, "NAME", "llama3, chatml, gemma, phi3, mistral or zephyr (default: the model's)");
  add_session_options(p, session);
  if (Status st = p.parse(args); !st) return fail("serve", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
#ifndef KVANT_HAVE_HTTP_SERVER
  return fail("serve", "built without HTTP server support (install libcpp-httplib-dev and nlohmann-json3-dev, then rebuild)");
#else
  if (model_path.empty()) return fail("serve", "missing -m/--model FILE");
  auto model = Model::load(model_path);
  if (!model) return fail("serve", model.error());
  if (!template_name.empty()) {
    auto name = chat_template_name(**model, template_name);
    if (!name) return fail("serve", name.error());
  } else if (auto name = chat_template_name(**model, ""); !name) {
    std::fprintf(stderr, "kvant serve: warning: %s; /v1/chat/completions will answer 400 (use /v1/completions)\n",
                 name.error().c_str());
  }
  // SIGINT/SIGTERM are taken by one thread (sigwait in run_http_server): block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto engine = ServerEngine::create(*model, session, n_parallel);
  if (!engine) return fail("serve", engine.error());
  std::fprintf(stderr, "kvant serve: %s, %d slots, context %u per slot, KV %s\n", (*model)->info().path.c_str(),
               n_parallel, (*engine)->n_ctx(), session.cache_type_k == session.cache_type_v
                   ? ("K/V " + session.cache_type_k).c_str() : ("K " + session.cache_type_k + ", V " + session.cache_type_v).c_str());
  HttpServerOptions options;
  options.host = host;
  options.port = port;
  options.chat_template = template_name;
  options.model_id = std::filesystem::path(model_path).filename().string();
  return run_http_server(**engine, options);
#endif
}

}  // namespace kvant::cli
