// tools/server_http.h — the HTTP side of `kvant serve` (cpp-httplib + nlohmann-json): OpenAI-compatible
// routes over a ServerEngine. Only compiled when both libraries were found (KVANT_HAVE_HTTP_SERVER).
#pragma once

#include <cstddef>
#include <string>

#include "server_engine.h"

namespace kvant::cli {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: any free port (the chosen one is printed)
  std::string chat_template;  // override; empty: the model's
  std::string model_id;       // the name /v1/models reports
  size_t max_body_bytes = size_t(1) << 20;
};

// Serves until SIGINT/SIGTERM (which the caller must have blocked in every thread). Prints
// "kvant serve: listening on http://HOST:PORT" on stdout once accepting. Returns the exit code.
int run_http_server(ServerEngine& engine, const HttpServerOptions& options);

}  // namespace kvant::cli
