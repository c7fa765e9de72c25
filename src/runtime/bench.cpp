// runtime/bench.cpp — llama-bench style throughput tests (pp, tg, tg@depth) over a Session, the bytes
// each test reads, and the memory-read bandwidth ceiling that roofline fractions are taken against.
#include "kvant/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "backends/cuda/cuda_backend.h"
#include "core/thread_pool.h"
#include "kv/kv_cache.h"

namespace kvant {

namespace {

constexpr uint32_t kMaxTestTokens = 1u << 24;
volatile uint64_t g_bandwidth_sink = 0;

Status check_backend_name(const std::string& backend) {
  if (backend == "cpu" || backend == "cuda" || backend == "auto") return Status::ok();
  return Status::error("unknown backend '" + backend + "' (expected cpu, cuda or auto)");
}

Expected<SessionParams> session_params(const BenchConfig& config, uint32_t n_ctx) {
  KVANT_RETURN_IF_ERROR(check_backend_name(config.backend));
  SessionParams sp;
  sp.n_ctx = n_ctx;
  sp.n_threads = config.n_threads;
  sp.n_batch = config.n_batch;
  sp.cache_type_k = config.cache_type_k;
  sp.cache_type_v = config.cache_type_v;
  sp.backend = config.backend;
  return sp;
}

// Weight bytes one forward pass streams: every tensor except the token-embedding table, of which only
// the looked-up rows are read (unless the output projection is tied to it and reads all of it).
uint64_t weight_bytes_read_per_pass(const ModelInfo& info) {
  uint64_t bytes = 0;
  for (const ModelInfo::Tensor& t : info.tensors) {
    if (t.name == "token_embd.weight" && !info.tied_output) continue;
    bytes += t.bytes;
  }
  return bytes;
}

// KV bytes one query reads when it attends over n_keys cached tokens: the most recent `window` from
// the f16 window (compressed caches only), the rest from the compressed blocks.
struct KvReadModel {
  uint64_t bytes_per_token = 0, f16_bytes_per_token = 0;
  uint32_t window = 0;  // 0: no f16 window
  uint64_t bytes(uint64_t n_keys) const {
    const uint64_t recent = std::min<uint64_t>(window, n_keys);
    return (n_keys - recent) * bytes_per_token + recent * f16_bytes_per_token;
  }
  // Σ bytes(k) for k in [first, first + count).
  uint64_t sum(uint64_t first, uint64_t count) const {
    uint64_t total = 0;
    for (uint64_t k = first; k < first + count; ++k) total += bytes(k);
    return total;
  }
};

void mean_sd(const std::vector<double>& xs, double* mean, double* sd) {
  double s = 0;
  for (double x : xs) s += x;
  *mean = xs.empty() ? 0 : s / double(xs.size());
  double ss = 0;
  for (double x : xs) ss += (x - *mean) * (x - *mean);
  *sd = xs.size() > 1 ? std::sqrt(ss / double(xs.size() - 1)) : 0.0;
}

std::vector<int32_t> random_tokens(uint32_t n, int32_t n_vocab, uint64_t seed) {
  std::vector<int32_t> out(n);
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (int32_t& t : out) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    t = int32_t(state % uint64_t(n_vocab));
  }
  return out;
}

// One timed run of the test in a reset session; returns seconds of the measured part.
Expected<double> run_once(Session& session, const Model& model, const BenchTest& test, uint64_t seed) {
  using Clock = std::chrono::steady_clock;
  session.reset();
  if (test.n_prompt > 0) {
    const auto tokens = random_tokens(test.n_prompt, model.n_vocab(), seed);
    const auto t0 = Clock::now();
    KVANT_RETURN_IF_ERROR(session.eval(tokens));
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  if (test.depth > 0) KVANT_RETURN_IF_ERROR(session.fill_for_benchmark(test.depth, seed));
  const auto tokens = random_tokens(test.n_gen, model.n_vocab(), seed + 1);
  const auto t0 = Clock::now();
  for (int32_t t : tokens) KVANT_RETURN_IF_ERROR(session.eval({t}));
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

std::string BenchTest::name() const {
  if (n_prompt > 0) return "pp" + std::to_string(n_prompt);
  std::string s = "tg" + std::to_string(n_gen);
  if (depth > 0) s += "@d" + std::to_string(depth);
  return s;
}

Expected<std::vector<BenchTest>> bench_tests(const BenchParams& params) {
  auto check = [](const std::vector<uint32_t>& xs, const char* what) -> Status {
    for (uint32_t x : xs) {
      if (x > kMaxTestTokens) {
        return Status::error(std::string(what) + " value " + std::to_string(x) + " is too large (max " +
                             std::to_string(kMaxTestTokens) + ")");
      }
    }
    return Status::ok();
  };
  KVANT_RETURN_IF_ERROR(check(params.n_prompt, "-p/--n-prompt"));
  KVANT_RETURN_IF_ERROR(check(params.n_gen, "-n/--n-gen"));
  KVANT_RETURN_IF_ERROR(check(params.depth, "-d/--n-depth"));
  std::vector<BenchTest> tests;
  for (uint32_t p : params.n_prompt) {
    if (p > 0) tests.push_back({p, 0, 0});
  }
  for (uint32_t n : params.n_gen) {
    if (n == 0) continue;
    for (uint32_t d : params.depth) {
      if (uint64_t(d) + n > kMaxTestTokens) {
        return Status::error("depth " + std::to_string(d) + " + " + std::to_string(n) + " generated tokens exceed " +
                             std::to_string(kMaxTestTokens));
      }
      tests.push_back({0, n, d});
    }
  }
  if (tests.empty()) return Status::error("no tests: every -p and -n value is 0");
  return tests;
}

Expected<double> measure_read_bandwidth(uint64_t buffer_bytes) {
  static std::mutex mutex;
  static double cached = 0;
  std::lock_guard<std::mutex> lock(mutex);
  if (cached > 0) return cached;
  if (buffer_bytes == 0) buffer_bytes = 1ull << 30;
  const size_t n_words = size_t(buffer_bytes / sizeof(uint64_t));
  if (n_words < 1024) return Status::error("bandwidth buffer of " + std::to_string(buffer_bytes) + " bytes is too small");
  std::unique_ptr<uint64_t[]> buffer(new (std::nothrow) uint64_t[n_words]);
  if (!buffer) return Status::error("cannot allocate a " + std::to_string(buffer_bytes) + "-byte bandwidth buffer");
  const unsigned n_threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t per_thread = (n_words + n_threads - 1) / n_threads;
  std::vector<uint64_t> sums(n_threads);
  // Each thread reads (and first touches) its own contiguous slice, so pages land near their reader.
  auto run = [&](bool write) {
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < n_threads; ++t) {
      workers.emplace_back([&, t] {
        const size_t begin = std::min(n_words, t * per_thread), end = std::min(n_words, begin + per_thread);
        uint64_t* p = buffer.get();
        if (write) {
          for (size_t i = begin; i < end; ++i) p[i] = i * 0x9E3779B97F4A7C15ull;
          return;
        }
        uint64_t a = 0, b = 0, c = 0, d = 0;
        size_t i = begin;
        for (; i + 4 <= end; i += 4) {
          a += p[i];
          b += p[i + 1];
          c += p[i + 2];
          d += p[i + 3];
        }
        for (; i < end; ++i) a += p[i];
        sums[t] = a + b + c + d;
      });
    }
    for (std::thread& w : workers) w.join();
  };
  run(true);
  double best = 0;
  uint64_t checksum = 0;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    run(false);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (uint64_t x : sums) checksum += x;
    if (s > 0) best = std::max(best, double(n_words * sizeof(uint64_t)) / s / 1e9);
  }
  g_bandwidth_sink = checksum;  // keeps the reads observable
  if (!(best > 0)) return Status::error("memory bandwidth measurement took no time");
  cached = best;
  return cached;
}

Expected<double> measure_device_read_bandwidth(uint64_t buffer_bytes) {
  return cuda_measure_read_bandwidth(buffer_bytes);
}

Status bench_backend_available(std::shared_ptr<const Model> model, const std::string& backend) {
  BenchConfig config;
  config.backend = backend;
  config.n_threads = 1;
  KVANT_ASSIGN_OR_RETURN(SessionParams sp, session_params(config, 16));
  auto session = Session::create(std::move(model), sp);
  if (!session) return session.status();
  return Status::ok();
}

Expected<BenchResult> run_bench_test(std::shared_ptr<const Model> model, const BenchConfig& config,
                                     const BenchTest& test, int reps, uint64_t seed, const BandwidthCeilings& ceilings,
                                     const std::function<void(const std::string&)>& warn) {
  if (reps < 1) return Status::error("-r/--repetitions must be at least 1 (got " + std::to_string(reps) + ")");
  if (config.n_batch == 0) return Status::error("-b/--batch-size must be at least 1");
  const uint32_t n_ctx = test.n_prompt > 0 ? test.n_prompt : test.depth + test.n_gen;
  const ModelInfo& info = model->info();
  if (warn && info.n_ctx_train > 0 && n_ctx > info.n_ctx_train) {
    warn("test " + test.name() + " needs a context of " + std::to_string(n_ctx) + " tokens, beyond " + info.path +
         "'s training context " + std::to_string(info.n_ctx_train) + "; it is measured anyway");
  }
  KVANT_ASSIGN_OR_RETURN(SessionParams sp, session_params(config, n_ctx));
  KVANT_ASSIGN_OR_RETURN(KvFootprint kv, kv_footprint(*model, sp));
  auto created = Session::create(model, sp);
  if (!created) return created.status().with_context(config.backend + " " + test.name());
  Session& session = **created;

  BenchResult r;
  r.test = test.name();
  r.config = config;
  r.config.n_threads = config.n_threads == 0 ? ThreadPool::default_threads() : config.n_threads;
  r.backend_used = session.backend_name();
  r.n_prompt = test.n_prompt;
  r.n_gen = test.n_gen;
  r.depth = test.depth;
  r.reps = reps;

  std::vector<double> ms_per_token;
  for (int rep = 0; rep <= reps; ++rep) {  // rep 0 is the untimed warm-up
    auto seconds = run_once(session, *model, test, seed + uint64_t(rep) * 7919);
    if (!seconds) return seconds.status().with_context(config.backend + " " + test.name());
    if (rep == 0) continue;
    const double tokens = test.n_prompt > 0 ? test.n_prompt : test.n_gen;
    const double s = std::max(*seconds, 1e-9);
    r.samples_tps.push_back(tokens / s);
    ms_per_token.push_back(1e3 * s / tokens);
  }
  if (test.n_gen > 0) r.kernels_per_token = session.kernels_per_token();
  mean_sd(r.samples_tps, &r.tps_mean, &r.tps_sd);
  mean_sd(ms_per_token, &r.ms_per_token, &r.ms_sd);

  // Bytes read: weights once per forward pass, KV for every query over the keys it attends to.
  KvReadModel kv_read;
  kv_read.bytes_per_token = kv.bytes_per_token;
  kv_read.f16_bytes_per_token = kv.f16_bytes_per_token;
  kv_read.window = kv.window_bytes > 0 ? kDefaultKvWindow : 0;
  r.model_bytes = info.weight_bytes;
  r.weight_bytes_read = weight_bytes_read_per_pass(info);
  r.kv_bytes_per_token = kv.bytes_per_token;
  uint64_t tokens = 0, passes = 0, kv_bytes = 0;
  if (test.n_prompt > 0) {
    tokens = test.n_prompt;
    passes = (tokens + config.n_batch - 1) / config.n_batch;
    kv_bytes = kv_read.sum(1, tokens);  // query i attends to keys 0..i
  } else {
    tokens = test.n_gen;
    passes = tokens;
    kv_bytes = kv_read.sum(uint64_t(test.depth) + 1, tokens);
  }
  r.kv_bytes_read_per_token = kv_bytes / tokens;
  const double bytes_per_token = (double(r.weight_bytes_read) * double(passes) + double(kv_bytes)) / double(tokens);
  r.gbps = bytes_per_token * r.tps_mean / 1e9;
  // Host-memory ceiling for CPU rows, device-memory ceiling for CUDA rows (weights and KV live there).
  r.ceiling_gbps = ceilings.for_backend(r.backend_used);
  r.roofline_frac = r.ceiling_gbps > 0 ? r.gbps / r.ceiling_gbps : 0.0;
  return r;
}

Expected<std::vector<BenchResult>> run_bench(std::shared_ptr<const Model> model, const BenchParams& params,
                                             const BandwidthCeilings& ceilings,
                                             const std::function<void(const std::string&)>& warn,
                                             const std::function<void(int, int, const std::string&)>& progress) {
  KVANT_ASSIGN_OR_RETURN(std::vector<BenchTest> tests, bench_tests(params));
  if (params.reps < 1) return Status::error("-r/--repetitions must be at least 1 (got " + std::to_string(params.reps) + ")");
  std::vector<std::string> backends;
  for (const std::string& b : params.backends) {
    KVANT_RETURN_IF_ERROR(check_backend_name(b));
    Status available = bench_backend_available(model, b);
    if (!available) {
      if (warn) warn("backend " + b + " is unavailable, skipped: " + available.message());
      continue;
    }
    backends.push_back(b);
  }
  if (backends.empty()) return Status::error("no requested backend is available");

  std::set<std::string> warned;
  auto warn_once = [&](const std::string& message) {
    if (warn && warned.insert(message).second) warn(message);
  };
  const int total = int(backends.size() * params.cache_type_k.size() * params.cache_type_v.size() *
                        params.threads.size() * tests.size());
  int done = 0;
  std::vector<BenchResult> results;
  for (const std::string& backend : backends) {
    for (const std::string& ctk : params.cache_type_k) {
      for (const std::string& ctv : params.cache_type_v) {
        for (uint32_t threads : params.threads) {
          BenchConfig config{backend, ctk, ctv, threads, params.n_batch};
          for (const BenchTest& test : tests) {
            if (progress) progress(++done, total, backend + " K " + ctk + " V " + ctv + " " + test.name());
            KVANT_ASSIGN_OR_RETURN(BenchResult r,
                                   run_bench_test(model, config, test, params.reps, params.seed, ceilings, warn_once));
            results.push_back(std::move(r));
          }
        }
      }
    }
  }
  return results;
}

}  // namespace kvant
