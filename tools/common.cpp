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

void add_sampling_options(ArgParser& p, SamplerParams& s) {
  p.option({"--temp"}, &s.temperature, "T", "temperature (default 0.8; 0 = greedy)");
  p.option({"--top-k"}, &s.top_k, "N", "top-k (default 40, 0 = off)", 0, 1 << 24);
  p.option({"--top-p"}, &s.top_p, "P", "top-p (default 0.95, 1 = off)");
  p.option({"--min-p"}, &s.min_p, "P", "min-p (default 0.05, 0 = off)");
  p.option({"--repeat-penalty"}, &s.repeat_penalty, "X", "repetition penalty (default 1.0 = off)");
  p.option({"--repeat-last-n"}, &s.repeat_last_n, "N", "tokens the penalty looks back (default 64)", 0, 1 << 24);
  p.option({"-s", "--seed"}, &s.seed, "N", "sampling seed (default: random)");
}

Status check_sampling(const SamplerParams& s) {
  if (s.top_p <= 0.0f || s.top_p > 1.0f) return Status::error("--top-p must be in (0, 1]");
  if (s.min_p < 0.0f || s.min_p > 1.0f) return Status::error("--min-p must be in [0, 1]");
  if (s.repeat_penalty <= 0.0f) return Status::error("--repeat-penalty must be > 0");
  return Status::ok();
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
