// tools/cmd_kvq.cpp — `kvant kvq`: quality of every KV-cache type on K/V dumps (NMSE, inner-product and
// attention-output error) as a table with the TurboQuant paper's MSE beside the turbo rows, or JSON.
#include <cstdio>
#include <filesystem>
#include <set>

#include "common.h"
#include "kvant/kv_quality.h"

namespace kvant::cli {
namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const size_t end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// TurboQuant (arXiv 2504.19874) normalised MSE of its MSE-optimal quantizer; 0 when the paper gives none.
double paper_mse(const std::string& type) {
  if (type == "turbo_kv_2b") return 0.117;
  if (type == "turbo_kv_3b") return 0.03;
  if (type == "turbo_kv_4b") return 0.009;
  return 0.0;
}

bool is_real_kv_dir(const std::string& dir) {
  std::filesystem::path p = std::filesystem::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename() == "real_kv";
}

void print_json(const std::vector<KvQualityRow>& rows) {
  std::printf("[");
  for (size_t i = 0; i < rows.size(); ++i) {
    const KvQualityRow& r = rows[i];
    std::printf("%s\n  {\"type\": \"%s\", \"bits_per_element\": %.6g, \"nmse\": %.6e, \"ip_rel_err\": %.6e, "
                "\"attn_rel_err\": %.6e}",
                i ? "," : "", r.type.c_str(), r.bits_per_element, r.nmse, r.ip_rel_err, r.attn_rel_err);
  }
  std::printf("\n]\n");
}

void print_table(const std::string& dir, const std::vector<KvDumpPair>& dumps, int query_every,
                 const std::vector<KvQualityRow>& rows) {
  std::string layers;
  std::set<std::string> shapes;
  for (const KvDumpPair& p : dumps) {
    if (!layers.empty()) layers += ',';
    layers += std::to_string(p.keys.layer);
    shapes.insert(std::to_string(p.keys.num_heads) + " heads x " + std::to_string(p.keys.seq_len) +
                  " tokens x head_dim " + std::to_string(p.keys.head_dim));
  }
  std::string shape_text;
  for (const std::string& s : shapes) {
    if (!shape_text.empty()) shape_text += "; ";
    shape_text += s;
  }
  const KvQualityCounts c = kv_quality_counts(dumps, query_every);
  std::printf("KV dumps: %s — layers %s (keys + values files each), %s\n", dir.c_str(), layers.c_str(),
              shape_text.c_str());
  std::printf("nmse: sum|x-x^|^2 / sum|x|^2 over all %llu K and V vectors (nmse_k / nmse_v: per file kind)\n",
              static_cast<unsigned long long>(c.vectors));
  std::printf("ip_rel_err: sum|q.k - q.k^| / sum|q.k|, queries = every %dth token of each head's keys (held out, "
              "not encoded), %llu queries x encoded keys = %llu pairs; q.k^ via prepare_query+score\n",
              query_every, static_cast<unsigned long long>(c.queries),
              static_cast<unsigned long long>(c.query_key_pairs));
  std::printf("attn_rel_err: mean over queries of |o-o^|/|o|, o = softmax(q.K/sqrt(d)) V over the encoded "
              "tokens, V encoded with the same type\n\n");
  std::printf("%-12s %5s %10s %10s %10s %10s %11s %12s %10s %11s\n", "type", "rot", "bits/elem", "nmse",
              "nmse_k", "nmse_v", "ip_rel_err", "attn_rel_err", "paper_mse", "nmse/paper");
  for (const KvQualityRow& r : rows) {
    std::printf("%-12s %5s %10.4f %10.3e %10.3e %10.3e %11.3e %12.3e", r.type.c_str(), r.rotated ? "yes" : "no",
                r.bits_per_element, r.nmse, r.nmse_keys, r.nmse_values, r.ip_rel_err, r.attn_rel_err);
    const double ref = paper_mse(r.type);
    if (ref > 0) std::printf(" %10.3f %11.3f", ref, r.nmse / ref);
    std::printf("\n");
  }
  std::printf("\npaper_mse: TurboQuant (arXiv 2504.19874) normalised MSE at 2/3/4 bits.\n");
}

}  // namespace

int cmd_kvq(const std::vector<std::string>& args) {
  std::string dir = "../shared/data/kv_dumps/qwen35_kv";
  std::string types;
  bool json = false, scalar = false;
  KvQualityOptions options;
  ArgParser p("kvq", "Quality of every KV-cache type on K/V dumps: NMSE, inner-product and attention-output error.");
  p.option({"--dir"}, &dir, "DIR", "directory of layer<N>_{keys,values}.bin dumps (default " + dir + ")");
  p.option({"--types"}, &types, "T1,T2,...",
           "types to measure, _rot for rotated q8_0/q4_0 (default: f32,f16,q8_0,q8_0_rot,q4_0,q4_0_rot,"
           "turbo_kv_2b..5b)");
  p.option({"--query-every"}, &options.query_every, "N", "hold out every Nth token as a query (default 4)", 2, 1 << 20);
  p.flag({"--scalar"}, &scalar, "use the scalar kernels instead of the fastest ones");
  p.flag({"--json"}, &json, "print one JSON array of {type, bits_per_element, nmse, ip_rel_err, attn_rel_err}");
  if (Status st = p.parse(args); !st) return fail("kvq", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  options.force_scalar = scalar;
  if (!types.empty()) {
    options.types = split_commas(types);
    if (options.types.empty()) return fail("kvq", "--types '" + types + "' names no type");
  }
  if (is_real_kv_dir(dir)) {
    std::fprintf(json ? stderr : stdout,
                 "note: %s holds SYNTHETIC data despite its name (numpy-generated; see the data README)\n",
                 dir.c_str());
  }
  auto dumps = read_kv_dump_dir(dir);
  if (!dumps) return fail("kvq", dumps.error());
  auto rows = measure_kv_quality(*dumps, options);
  if (!rows) return fail("kvq", rows.error());
  if (json) {
    print_json(*rows);
  } else {
    print_table(dir, *dumps, options.query_every, *rows);
  }
  return 0;
}

}  // namespace kvant::cli
