// bench/bench_kv_attention.cpp — micro-benchmark of decode attention on the compressed KV cache, per
// token: many KV heads (as in a model's layers x KV heads, so the cache is far larger than the LLC and
// comes from DRAM, as in real decoding), each serving a GQA group of 4 query heads, head_dim 128: score
// over N cached keys, softmax, accumulate N cached values, finish. Also the cost of encoding one head
// vector. Google Benchmark.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/softmax.h"
#include "kv/kv_codec.h"

namespace {

using kvant::KvCodec;
using kvant::KvIsa;
using kvant::KvType;

constexpr int kHeadDim = 128;
constexpr int kGroup = 4;
// Number of KV-head caches per token: enough that the f16 cache of them all is >= 512 MiB (16x the
// 32 MiB L3 here), the same count for every type at a given N so all types do the same work.
int kv_heads_for(int n_tokens) {
  const double f16_bytes_per_head = 2.0 * 2.0 * kHeadDim * n_tokens;
  return std::max(4, int(std::ceil(512.0 * 1024 * 1024 / f16_bytes_per_head)));
}

struct Config {
  KvType type;
  bool rotate;
  KvIsa isa;
};

std::string config_name(const Config& c) {
  return std::string(c.rotate && !kvant::kv_type_is_turbo(c.type) ? "rot-" : "") + kvant::kv_type_name(c.type) +
         "/" + kvant::kv_isa_name(c.isa);
}

std::vector<float> gaussian(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void BM_DecodeAttention(benchmark::State& state, Config config) {
  const int n = int(state.range(0));
  const int heads = kv_heads_for(n);
  const KvCodec codec = kvant::make_kv_codec(config.type, kHeadDim, config.rotate, "KV", config.isa).value();
  const size_t stride = codec.bytes_per_vector();
  const size_t head_bytes = stride * size_t(n);
  std::vector<uint8_t> keys(head_bytes * heads), values(head_bytes * heads);
  {
    // Encode one head's worth of random vectors and replicate it (encoding 512 MiB would take minutes).
    const std::vector<float> k = gaussian(size_t(kHeadDim) * size_t(n), 1);
    const std::vector<float> v = gaussian(size_t(kHeadDim) * size_t(n), 2);
    for (int t = 0; t < n; ++t) {
      codec.encode(k.data() + size_t(t) * kHeadDim, keys.data() + size_t(t) * stride);
      codec.encode(v.data() + size_t(t) * kHeadDim, values.data() + size_t(t) * stride);
    }
    for (int h = 1; h < heads; ++h) {
      std::copy_n(keys.data(), head_bytes, keys.data() + size_t(h) * head_bytes);
      std::copy_n(values.data(), head_bytes, values.data() + size_t(h) * head_bytes);
    }
  }
  const std::vector<float> q = gaussian(size_t(kGroup) * kHeadDim, 3);
  std::vector<float> qp(q.size()), scores(size_t(kGroup) * size_t(n)), out(size_t(kGroup) * kHeadDim);
  const float scale = 1.0f / std::sqrt(float(kHeadDim));
  for (auto _ : state) {
    for (int head = 0; head < heads; ++head) {
      for (int h = 0; h < kGroup; ++h) {
        float scaled[kHeadDim];
        for (int i = 0; i < kHeadDim; ++i) scaled[i] = q[size_t(h) * kHeadDim + size_t(i)] * scale;
        codec.prepare_query(scaled, qp.data() + size_t(h) * kHeadDim);
      }
      codec.score_group(kGroup, qp.data(), keys.data() + size_t(head) * head_bytes, stride, n, scores.data());
      for (int h = 0; h < kGroup; ++h) kvant::softmax(scores.data() + size_t(h) * size_t(n), n);
      std::fill(out.begin(), out.end(), 0.0f);
      codec.accumulate_group(kGroup, scores.data(), values.data() + size_t(head) * head_bytes, stride, n, out.data());
      for (int h = 0; h < kGroup; ++h) codec.finish_output(out.data() + size_t(h) * kHeadDim);
      benchmark::DoNotOptimize(out.data());
    }
    benchmark::ClobberMemory();
  }
  const double kv_bytes = 2.0 * double(head_bytes) * heads;
  state.counters["kv_heads"] = heads;
  state.counters["KV_MiB"] = kv_bytes / (1024.0 * 1024.0);
  state.counters["GB/s"] = benchmark::Counter(kv_bytes * 1e-9 * double(state.iterations()),
                                              benchmark::Counter::kIsRate);
  // Time per cached token per KV head (the unit that scales with context and model size).
  state.counters["ns/tok/head"] = benchmark::Counter(double(n) * heads * double(state.iterations()) * 1e-9,
                                                     benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_Encode(benchmark::State& state, Config config) {
  const KvCodec codec = kvant::make_kv_codec(config.type, kHeadDim, config.rotate, "KV", config.isa).value();
  const int count = 256;
  const std::vector<float> x = gaussian(size_t(kHeadDim) * count, 4);
  std::vector<uint8_t> blocks(codec.bytes_per_vector() * count);
  for (auto _ : state) {
    for (int t = 0; t < count; ++t) {
      codec.encode(x.data() + size_t(t) * kHeadDim, blocks.data() + size_t(t) * codec.bytes_per_vector());
    }
    benchmark::DoNotOptimize(blocks.data());
  }
  state.counters["ns/vector"] = benchmark::Counter(double(count) * double(state.iterations()) * 1e-9,
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace

int main(int argc, char** argv) {
  const KvIsa best = kvant::kv_best_isa();
  const Config configs[] = {{KvType::F16, false, best},      {KvType::Q8_0, false, best},
                            {KvType::Q4_0, true, best},      {KvType::TURBO_3B, false, best},
                            {KvType::TURBO_4B, false, best}};
  for (const Config& c : configs) {
    benchmark::RegisterBenchmark(("attention/" + config_name(c)).c_str(), BM_DecodeAttention, c)
        ->Arg(4096)->Arg(16384)->Arg(32768)->Unit(benchmark::kMillisecond);
  }
  if (best != KvIsa::Scalar) {  // the scalar references, for scale
    for (const Config& c : configs) {
      Config s = c;
      s.isa = KvIsa::Scalar;
      benchmark::RegisterBenchmark(("attention/" + config_name(s)).c_str(), BM_DecodeAttention, s)
          ->Arg(4096)->Unit(benchmark::kMillisecond);
    }
  }
  for (const Config& c : configs) {
    benchmark::RegisterBenchmark(("encode/" + config_name(c)).c_str(), BM_Encode, c)->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
