// kvant/bench.h — throughput benchmarks in llama-bench's terms (pp<P>, tg<N>, tg<N>@d<D>) with bytes
// moved per token, achieved GB/s and the fraction of a memory-read bandwidth ceiling measured here.
// Method and column definitions: docs/BENCHMARKING.md.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kvant/kvant.h"
#include "kvant/status.h"

namespace kvant {

// One test: n_prompt > 0 is prompt processing (pp<P>, fresh cache); otherwise n_gen single-token decode
// steps after `depth` tokens are already cached (tg<N>, tg<N>@d<D>).
struct BenchTest {
  uint32_t n_prompt = 0, n_gen = 0, depth = 0;
  std::string name() const;  // "pp512", "tg128", "tg128@d4096"
};

// The session a test runs in.
struct BenchConfig {
  std::string backend = "cpu";  // cpu | cuda | auto
  std::string cache_type_k = "f16", cache_type_v = "f16";
  uint32_t n_threads = 0;       // 0: physical cores
  uint32_t n_batch = 512;
};

struct BenchParams {
  std::vector<uint32_t> n_prompt{512}, n_gen{128}, depth{0};  // 0 in n_prompt / n_gen: no such test
  std::vector<std::string> cache_type_k{"f16"}, cache_type_v{"f16"}, backends{"cpu"};
  std::vector<uint32_t> threads{0};
  uint32_t n_batch = 512;
  int reps = 5;        // timed repetitions after one untimed warm-up
  uint64_t seed = 42;  // token ids and cache fill values
};

struct BenchResult {
  std::string test;         // BenchTest::name()
  BenchConfig config;       // n_threads resolved to the count used
  std::string backend_used;  // Session::backend_name(): "cpu" or "cuda" (what "auto" resolved to)
  uint32_t n_prompt = 0, n_gen = 0, depth = 0;
  int reps = 0;
  double tps_mean = 0, tps_sd = 0;      // tokens per second over the timed repetitions
  double ms_per_token = 0, ms_sd = 0;   // milliseconds per token (mean and sd over repetitions)
  uint64_t model_bytes = 0;             // all weight bytes of the file (llama-bench's "size")
  uint64_t weight_bytes_read = 0;       // weight bytes one forward pass reads (see docs/BENCHMARKING.md)
  uint64_t kv_bytes_per_token = 0;      // cache bytes one stored token occupies (K + V, all layers)
  uint64_t kv_bytes_read_per_token = 0; // mean KV bytes read per processed token of this test
  double gbps = 0;                      // (weights + KV) bytes read per second, 1e9 bytes
  double ceiling_gbps = 0;              // the measured read ceiling of the memory this row's backend reads
  double roofline_frac = 0;             // gbps / ceiling_gbps; 0 when that ceiling was not measured
  int kernels_per_token = 0;            // tg tests on CUDA: kernel nodes of the captured decode graph
  std::vector<double> samples_tps;      // one per timed repetition
};

// The parsed test list in llama-bench order: every pp<P> (depth 0), then every tg<N> at every depth.
Expected<std::vector<BenchTest>> bench_tests(const BenchParams& params);

// Memory-read bandwidth ceiling in GB/s (1e9 bytes/s): best of several multi-threaded streaming reads
// over a buffer much larger than the last-level cache (`buffer_bytes`, default 1 GiB). The first
// successful measurement is cached for the life of the process.
Expected<double> measure_read_bandwidth(uint64_t buffer_bytes = 0);

// The same for CUDA device 0's memory: best of several read-only kernels over buffer_bytes of device
// memory (bytes read / time). Errors when kvant has no CUDA device (or was built without CUDA).
Expected<double> measure_device_read_bandwidth(uint64_t buffer_bytes);

// The read ceilings roofline fractions are taken against: host memory for CPU rows, device memory
// (measure_device_read_bandwidth in backends/cuda/cuda_backend.h) for CUDA rows; 0 = not measured.
struct BandwidthCeilings {
  double host_gbps = 0, device_gbps = 0;
  double for_backend(const std::string& backend_used) const { return backend_used == "cpu" ? host_gbps : device_gbps; }
};

// Whether a backend name can open a session for this model ("cpu" always can). The message explains why not.
Status bench_backend_available(std::shared_ptr<const Model> model, const std::string& backend);

// Runs one test: one untimed warm-up then `reps` timed runs, each in a freshly reset session. The
// session context is raised to fit the test; `warn` receives one-line warnings (context beyond the
// model's training context). A measured ceiling for the backend used fills roofline_frac.
Expected<BenchResult> run_bench_test(std::shared_ptr<const Model> model, const BenchConfig& config,
                                     const BenchTest& test, int reps, uint64_t seed, const BandwidthCeilings& ceilings,
                                     const std::function<void(const std::string&)>& warn = nullptr);

// Every backend x ctk x ctv x threads x test combination, in that nesting order (backends outermost).
// An unknown backend name is an error; an unavailable one is skipped with a warning (an error when
// none is left). progress(done, total, name) is called before each test.
Expected<std::vector<BenchResult>> run_bench(std::shared_ptr<const Model> model, const BenchParams& params,
                                             const BandwidthCeilings& ceilings,
                                             const std::function<void(const std::string&)>& warn = nullptr,
                                             const std::function<void(int, int, const std::string&)>& progress = nullptr);

}  // namespace kvant
