// tools/common.cpp — shared subcommand helpers.
#include "common.h"

#include <cstdio>
#include <fstream>
#include <sstream>

namespace kvant::cli {

void add_session_options(ArgParser& p, SessionParams& s) {
  p.option({"-c", "--ctx-size"}, &s.n_ctx, "N", "context size in tokens (default: the model's)", 0, 1 << 24);
  p.option({"-t", "--threads"}, &s.n_threads, "N", "threads (default: physical cores)", 0, 1024);
  p.option({"-b", "--batch-size"}, &s.n_batch, "N", "prompt tokens per forward pass (default 512)", 1, 1 << 20);
  p.option({"-ctk", "--cache-type-k", "-k"}, &s.cache_type_k, "TYPE",
           "K cache type: f32 f16 q8_0 q4_0 turbo_kv_2b..5b (default f16)");
  p.option({"-ctv", "--cache-type-v", "-v"}, &s.cache_type_v, "TYPE", "V cache type (default f16)");
  p.option({"--kv-rotate"}, &s.kv_rotate, "auto|on|off", "Hadamard rotation for q8_0/q4_0 caches (default auto: on)");
  p.option({"--kv-window"}, &s.kv_window, "N", "recent tokens kept in f16 (default: built-in)", -1, 1 << 24);
  p.option({"--backend"}, &s.backend, "auto|cpu|cuda", "compute backend (default auto: CUDA when present and the model fits)");
}

int fail(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "kvant %s: error: %s\n", command.c_str(), message.c_str());
  return 1;
}

Expected<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::error(path + ": read error");
  return ss.str();
}

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", v, units[u]);
  return buf;
}

}  // namespace kvant::cli
