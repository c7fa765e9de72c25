// tools/cmd_bench.cpp — `kvant bench`: llama-bench style throughput (pp<P>, tg<N>, tg<N>@d<D>) with
// GB/s and the fraction of a measured memory-read ceiling; a table, JSON or CSV on stdout, progress on stderr.
#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

#include "common.h"
#include "kvant/bench.h"

namespace kvant::cli {
namespace {

Expected<std::vector<std::string>> split_list(const std::string& flag, const std::string& value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = value.find(',', start);
    const std::string item = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (item.empty()) return Status::error(flag + ": empty item in list '" + value + "'");
    out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

Expected<std::vector<uint32_t>> parse_uint_list(const std::string& flag, const std::string& value) {
  KVANT_ASSIGN_OR_RETURN(std::vector<std::string> items, split_list(flag, value));
  std::vector<uint32_t> out;
  for (const std::string& item : items) {
    uint64_t v = 0;
    bool ok = !item.empty() && item.size() <= 9;
    for (char c : item) {
      ok = ok && c >= '0' && c <= '9';
      if (ok) v = v * 10 + uint64_t(c - '0');
    }
    if (!ok) return Status::error(flag + ": '" + item + "' in '" + value + "' is not a non-negative integer below 10^9");
    out.push_back(uint32_t(v));
  }
  return out;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

std::string model_label(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  if (name.size() > 5 && name.ends_with(".gguf")) name.resize(name.size() - 5);
  return name;
}

// The JSON / CSV columns, in order; `quoted` values are strings. Numbers keep 7 significant digits (a
// fixed count of decimals rounded a tiny model's 0.0126 GB/s to 3 digits).
struct Field {
  std::string key, value;
  bool quoted = false;
};
std::vector<Field> fields(const BenchResult& r, const std::string& model) {
  const bool has_roofline = r.roofline_frac > 0;
  return {
      {"test", r.test, true},
      {"backend", r.config.backend, true},
      {"backend_used", r.backend_used, true},
      {"ctk", r.config.cache_type_k, true},
      {"ctv", r.config.cache_type_v, true},
      {"threads", std::to_string(r.config.n_threads)},
      {"tps_mean", fmt("%.7g", r.tps_mean)},
      {"tps_sd", fmt("%.7g", r.tps_sd)},
      {"ms_per_token", fmt("%.7g", r.ms_per_token)},
      {"ms_sd", fmt("%.7g", r.ms_sd)},
      {"gbps", fmt("%.7g", r.gbps)},
      {"roofline_frac", has_roofline ? fmt("%.7g", r.roofline_frac) : "null"},
      {"model_bytes", std::to_string(r.model_bytes)},
      {"weight_bytes_read", std::to_string(r.weight_bytes_read)},
      {"kv_bytes_per_token", std::to_string(r.kv_bytes_per_token)},
      {"kv_bytes_read_per_token", std::to_string(r.kv_bytes_read_per_token)},
      {"depth", std::to_string(r.depth)},
      {"n_prompt", std::to_string(r.n_prompt)},
      {"n_gen", std::to_string(r.n_gen)},
      {"reps", std::to_string(r.reps)},
      {"kernels_per_token", std::to_string(r.kernels_per_token)},
      {"bandwidth_gbps", fmt("%.7g", r.ceiling_gbps)},
      {"model", model, true},
  };
}

void print_json(const std::vector<BenchResult>& results, const std::string& model) {
  std::printf("[");
  for (size_t i = 0; i < results.size(); ++i) {
    std::printf("%s\n  {", i ? "," : "");
    const auto fs = fields(results[i], model);
    for (size_t j = 0; j < fs.size(); ++j) {
      std::printf("%s\"%s\": %s", j ? ", " : "", fs[j].key.c_str(),
                  fs[j].quoted ? json_string(fs[j].value).c_str() : fs[j].value.c_str());
    }
    std::printf("}");
  }
  std::printf("\n]\n");
}

void print_csv(const std::vector<BenchResult>& results, const std::string& model) {
  const auto header = fields(BenchResult{}, model);
  for (size_t j = 0; j < header.size(); ++j) std::printf("%s%s", j ? "," : "", header[j].key.c_str());
  std::printf("\n");
  for (const BenchResult& r : results) {
    const auto fs = fields(r, model);
    for (size_t j = 0; j < fs.size(); ++j) {
      const std::string v = fs[j].value == "null" ? "" : fs[j].quoted ? json_string(fs[j].value) : fs[j].value;
      std::printf("%s%s", j ? "," : "", v.c_str());
    }
    std::printf("\n");
  }
}

// A markdown table like llama-bench's; with several backends, one row per (ctk, ctv, threads, test) and
// each backend's t/s, ms/tok and GB/s side by side, plus t/s ratios to the first backend.
void print_table(const std::vector<BenchResult>& results, const std::vector<std::string>& backends,
                 const std::string& model, const BandwidthCeilings& ceilings) {
  std::vector<std::string> header = {"model", "size", "threads", "ctk", "ctv", "test"};
  if (backends.size() == 1) {
    header.insert(header.begin() + 2, "backend");
    for (const char* h : {"t/s", "ms/tok", "GB/s", "roofline %"}) header.push_back(h);
  } else {
    for (const std::string& b : backends) {
      for (const char* h : {"t/s", "ms/tok", "GB/s", "roof %"}) header.push_back(std::string(h) + " " + b);
    }
    for (size_t i = 1; i < backends.size(); ++i) header.push_back(backends[i] + "/" + backends[0]);
  }
  using Key = std::tuple<std::string, std::string, uint32_t, std::string>;
  std::vector<Key> order;
  std::map<Key, std::map<std::string, const BenchResult*>> rows;
  for (const BenchResult& r : results) {
    Key key{r.config.cache_type_k, r.config.cache_type_v, r.config.n_threads, r.test};
    if (!rows.count(key)) order.push_back(key);
    rows[key][r.config.backend] = &r;
  }
  std::vector<std::vector<std::string>> cells;
  for (const Key& key : order) {
    const auto& by_backend = rows[key];
    const BenchResult& first = *by_backend.begin()->second;
    std::vector<std::string> row = {model, human_bytes(first.model_bytes), std::to_string(first.config.n_threads),
                                    std::get<0>(key), std::get<1>(key), std::get<3>(key)};
    auto tps = [](const BenchResult& r) { return fmt("%.2f", r.tps_mean) + " ± " + fmt("%.2f", r.tps_sd); };
    if (backends.size() == 1) {
      row.insert(row.begin() + 2, first.config.backend);
      row.push_back(tps(first));
      row.push_back(fmt("%.3f", first.ms_per_token));
      row.push_back(fmt("%.2f", first.gbps));
      row.push_back(first.roofline_frac > 0 ? fmt("%.1f", 100.0 * first.roofline_frac) : "-");
    } else {
      for (const std::string& b : backends) {
        auto it = by_backend.find(b);
        row.push_back(it == by_backend.end() ? "-" : tps(*it->second));
        row.push_back(it == by_backend.end() ? "-" : fmt("%.3f", it->second->ms_per_token));
        row.push_back(it == by_backend.end() ? "-" : fmt("%.2f", it->second->gbps));
        row.push_back(it == by_backend.end() || it->second->roofline_frac <= 0
                          ? "-" : fmt("%.1f", 100.0 * it->second->roofline_frac));
      }
      auto base = by_backend.find(backends[0]);
      for (size_t i = 1; i < backends.size(); ++i) {
        auto it = by_backend.find(backends[i]);
        const bool both = base != by_backend.end() && it != by_backend.end() && base->second->tps_mean > 0;
        row.push_back(both ? fmt("%.2fx", it->second->tps_mean / base->second->tps_mean) : "-");
      }
    }
    cells.push_back(std::move(row));
  }
  // Column widths count UTF-8 code points ("±" is two bytes, one column).
  auto width = [](const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  };
  std::vector<size_t> widths(header.size());
  for (size_t j = 0; j < header.size(); ++j) {
    widths[j] = width(header[j]);
    for (const auto& row : cells) widths[j] = std::max(widths[j], width(row[j]));
  }
  const size_t first_number_column = backends.size() == 1 ? 7 : 6;
  auto print_row = [&](const std::vector<std::string>& row, bool right_numbers) {
    std::printf("|");
    for (size_t j = 0; j < row.size(); ++j) {
      const std::string pad(widths[j] - width(row[j]), ' ');
      const bool right = right_numbers && j >= first_number_column;
      std::printf(" %s%s%s |", right ? pad.c_str() : "", row[j].c_str(), right ? "" : pad.c_str());
    }
    std::printf("\n");
  };
  print_row(header, false);
  std::printf("|");
  for (size_t w : widths) std::printf("%s|", std::string(w + 2, '-').c_str());
  std::printf("\n");
  for (const auto& row : cells) print_row(row, true);
  std::string kernels;
  for (const BenchResult& r : results) {
    if (r.kernels_per_token > 0) {
      kernels += (kernels.empty() ? "" : ", ") + r.test + " " + r.config.cache_type_k + "/" + r.config.cache_type_v + ": " +
                 std::to_string(r.kernels_per_token);
    }
  }
  if (!kernels.empty()) std::printf("\nCUDA kernels per decoded token (captured graph): %s", kernels.c_str());
  std::printf("\nmemory-read ceilings (measured streaming reads): host %.2f GB/s", ceilings.host_gbps);
  if (ceilings.device_gbps > 0) std::printf(", CUDA device %.2f GB/s", ceilings.device_gbps);
  std::printf("; GB/s and roofline %% are defined in docs/BENCHMARKING.md\n");
}

}  // namespace

int cmd_bench(const std::vector<std::string>& args) {
  std::string model_path, output = "table";
  std::string p_list = "512", n_list = "128", d_list = "0", ctk_list = "f16", ctv_list = "f16", t_list = "0",
              backend_list = "cpu";
  BenchParams params;
  uint32_t bw_mib = 1024;
  ArgParser p("bench", "Throughput in llama-bench's terms (pp<P>, tg<N>, tg<N>@d<D>) with GB/s and roofline. "
                       "Lists are comma-separated; every combination runs.");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model (required)");
  p.option({"-p", "--n-prompt"}, &p_list, "N[,N..]", "prompt tokens of pp tests (default 512; 0: none)");
  p.option({"-n", "--n-gen"}, &n_list, "N[,N..]", "decode steps of tg tests (default 128; 0: none)");
  p.option({"-d", "--n-depth"}, &d_list, "D[,D..]", "tokens already cached before tg tests (default 0)");
  p.option({"-ctk", "--cache-type-k", "-k"}, &ctk_list, "TYPE[,..]", "K cache types (default f16)");
  p.option({"-ctv", "--cache-type-v", "-v"}, &ctv_list, "TYPE[,..]", "V cache types (default f16)");
  p.option({"-t", "--threads"}, &t_list, "N[,N..]", "threads (default 0: physical cores)");
  p.option({"-b", "--batch-size"}, &params.n_batch, "N", "prompt tokens per forward pass (default 512)", 1, 1 << 20);
  p.option({"--backend"}, &backend_list, "B[,B..]", "cpu, cuda or auto; several run side by side (default cpu)");
  p.option({"-r", "--repetitions"}, &params.reps, "N", "timed repetitions after one warm-up (default 5)", 1, 1000);
  p.option({"-o", "--output"}, &output, "table|json|csv", "output format (default table)");
  p.option({"-s", "--seed"}, &params.seed, "S", "seed of token ids and cache fill values (default 42)");
  p.option({"--bw-mib"}, &bw_mib, "MIB", "buffer of the memory-bandwidth measurement (default 1024)", 64, 1 << 20);
  if (Status st = p.parse(args); !st) return fail("bench", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (model_path.empty()) return fail("bench", "missing -m/--model FILE");
  if (output != "table" && output != "json" && output != "csv") {
    return fail("bench", "-o/--output: unknown format '" + output + "' (expected table, json or csv)");
  }
  auto prompts = parse_uint_list("-p", p_list);
  if (!prompts) return fail("bench", prompts.error());
  auto gens = parse_uint_list("-n", n_list);
  if (!gens) return fail("bench", gens.error());
  auto depths = parse_uint_list("-d", d_list);
  if (!depths) return fail("bench", depths.error());
  auto threads = parse_uint_list("-t", t_list);
  if (!threads) return fail("bench", threads.error());
  auto ctks = split_list("-ctk", ctk_list);
  if (!ctks) return fail("bench", ctks.error());
  auto ctvs = split_list("-ctv", ctv_list);
  if (!ctvs) return fail("bench", ctvs.error());
  auto backends = split_list("--backend", backend_list);
  if (!backends) return fail("bench", backends.error());
  for (const std::string& b : *backends) {
    if (b != "cpu" && b != "cuda" && b != "auto") {
      return fail("bench", "--backend: unknown backend '" + b + "' (expected cpu, cuda or auto)");
    }
  }
  for (uint32_t t : *threads) {
    if (t > 1024) return fail("bench", "-t: " + std::to_string(t) + " threads is more than 1024");
  }
  params.n_prompt = *prompts;
  params.n_gen = *gens;
  params.depth = *depths;
  params.threads = *threads;
  params.cache_type_k = *ctks;
  params.cache_type_v = *ctvs;
  params.backends = *backends;
  auto tests = bench_tests(params);
  if (!tests) return fail("bench", tests.error());

  auto model = Model::load(model_path);
  if (!model) return fail("bench", model.error());
  std::fprintf(stderr, "kvant bench: measuring the memory-read bandwidth ceiling (%u MiB buffer)...\n", bw_mib);
  auto bandwidth = measure_read_bandwidth(uint64_t(bw_mib) << 20);
  if (!bandwidth) return fail("bench", bandwidth.error());
  std::fprintf(stderr, "kvant bench: memory-read ceiling %.2f GB/s\n", *bandwidth);
  BandwidthCeilings ceilings;
  ceilings.host_gbps = *bandwidth;
  const bool wants_gpu = std::any_of(params.backends.begin(), params.backends.end(),
                                     [](const std::string& b) { return b != "cpu"; });
  if (wants_gpu) {
    // 4x the host buffer: larger than any GPU's L2 by far. No device: the CUDA rows are skipped anyway.
    auto device = measure_device_read_bandwidth(uint64_t(bw_mib) << 22);
    if (device) {
      ceilings.device_gbps = *device;
      std::fprintf(stderr, "kvant bench: CUDA device memory-read ceiling %.2f GB/s\n", *device);
    }
  }

  auto results = run_bench(
      *model, params, ceilings, [](const std::string& m) { std::fprintf(stderr, "kvant bench: warning: %s\n", m.c_str()); },
      [](int done, int total, const std::string& what) {
        std::fprintf(stderr, "kvant bench: [%d/%d] %s\n", done, total, what.c_str());
      });
  if (!results) return fail("bench", results.error());
  std::vector<std::string> ran;
  for (const BenchResult& r : *results) {
    if (std::find(ran.begin(), ran.end(), r.config.backend) == ran.end()) ran.push_back(r.config.backend);
  }
  const std::string label = model_label(model_path);
  if (output == "json") {
    print_json(*results, label);
  } else if (output == "csv") {
    print_csv(*results, label);
  } else {
    print_table(*results, ran, label, ceilings);
  }
  return 0;
}

}  // namespace kvant::cli
