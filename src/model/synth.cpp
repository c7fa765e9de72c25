// model/synth.cpp — shape/type tables, the tensor plan, the seeded normal generator and synthesize():
// rows of each tensor are generated and quantised in parallel (std::thread), one tensor at a time.
#include "model/synth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "quant/quant.h"

namespace kvant::synth {

namespace {

constexpr float kRmsEps = 1e-5f;
constexpr uint32_t kAlignment = 32;

uint64_t splitmix_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string join_names(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string type_name(GgmlType t) { return std::string(ggml_type_name(t)); }

// Row-length fallback: the type itself when its block divides n_in, else q8_0, else f16.
GgmlType fit_type(GgmlType wanted, uint64_t n_in) {
  for (GgmlType t : {wanted, GgmlType::Q8_0, GgmlType::F16}) {
    const auto g = ggml_type_geometry(uint32_t(t));
    if (g && n_in % g->block_elems == 0) return t;
  }
  return GgmlType::F32;
}

std::string size_text(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) std::snprintf(buf, sizeof buf, "%.2f GiB", double(bytes) / double(1ull << 30));
  else std::snprintf(buf, sizeof buf, "%.2f MiB", double(bytes) / double(1ull << 20));
  return buf;
}

// Generates one tensor's rows and quantises them into a buffer of the plan's type.
Expected<std::vector<uint8_t>> generate_tensor(const TensorPlan& t, uint64_t seed, uint64_t tensor_index,
                                               unsigned n_threads) {
  const QuantTraits* traits = quant_traits(t.type);
  if (traits == nullptr || traits->quantize_row == nullptr) {
    return Status::error("tensor '" + t.name + "': type " + type_name(t.type) + " has no quantiser");
  }
  const uint64_t n_in = t.ne[0];
  uint64_t n_rows = 1;
  for (size_t d = 1; d < t.ne.size(); ++d) n_rows *= t.ne[d];
  const size_t row_bytes = size_t(n_in / traits->block_elems) * traits->block_bytes;
  std::vector<uint8_t> out(row_bytes * n_rows);

  std::atomic<uint64_t> next_row{0};
  constexpr uint64_t kChunk = 8;
  auto worker = [&]() {
    std::vector<float> row(n_in);
    for (;;) {
      const uint64_t begin = next_row.fetch_add(kChunk);
      if (begin >= n_rows) break;
      const uint64_t end = std::min(n_rows, begin + kChunk);
      for (uint64_t r = begin; r < end; ++r) {
        fill_normal(seed, (tensor_index << 32) | r, row.data(), n_in);
        if (t.is_norm) {
          for (float& x : row) x = 1.0f + 0.1f * x;
        } else {
          for (float& x : row) x *= t.stddev;
        }
        traits->quantize_row(row.data(), out.data() + r * row_bytes, int64_t(n_in));
      }
    }
  };
  const uint64_t work = n_in * n_rows;
  const unsigned threads = work < (1u << 16) ? 1u : std::max(1u, unsigned(std::min<uint64_t>(n_threads, n_rows)));
  std::vector<std::thread> pool;
  for (unsigned k = 1; k < threads; ++k) pool.emplace_back(worker);
  worker();
  for (std::thread& th : pool) th.join();
  return out;
}

void add_u32(gguf::Writer& w, const std::string& key, uint32_t v) { w.set(key, gguf::Value::of_u32(v)); }

}  // namespace

const std::vector<Shape>& shapes() {
  static const std::vector<Shape> table = {
      {"tiny", 512, 128, 2, 4, 2, 384, 512, 10000.0f, false},
      {"smollm2-135m", 49152, 576, 30, 9, 3, 1536, 8192, 100000.0f, true},
      {"llama-3.2-1b", 128256, 2048, 16, 32, 8, 8192, 131072, 500000.0f, true},
      {"llama-3.2-3b", 128256, 3072, 28, 24, 8, 8192, 131072, 500000.0f, true},
      {"llama-3.1-8b", 128256, 4096, 32, 32, 8, 14336, 131072, 500000.0f, false},
  };
  return table;
}

const Shape* find_shape(std::string_view name) {
  for (const Shape& s : shapes()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

std::string shape_names() {
  std::vector<std::string> names;
  for (const Shape& s : shapes()) names.emplace_back(s.name);
  return join_names(names);
}

const std::vector<WeightType>& weight_types() {
  using G = GgmlType;
  static const std::vector<WeightType> table = {
      {"f32", G::F32, G::F32, 0},       {"f16", G::F16, G::F16, 1},       {"bf16", G::BF16, G::BF16, 32},
      {"q8_0", G::Q8_0, G::Q8_0, 7},    {"q4_0", G::Q4_0, G::Q4_0, 2},    {"q4_1", G::Q4_1, G::Q4_1, 3},
      {"q5_0", G::Q5_0, G::Q5_0, 8},    {"q5_1", G::Q5_1, G::Q5_1, 9},    {"q2_k", G::Q2_K, G::Q2_K, 10},
      {"q3_k", G::Q3_K, G::Q3_K, 11},   {"q4_k", G::Q4_K, G::Q4_K, 14},   {"q5_k", G::Q5_K, G::Q5_K, 16},
      {"q6_k", G::Q6_K, G::Q6_K, 18},   {"q4_k_m", G::Q4_K, G::Q6_K, 15}, {"q5_k_m", G::Q5_K, G::Q6_K, 17},
  };
  return table;
}

const WeightType* find_weight_type(std::string_view name) {
  for (const WeightType& t : weight_types()) {
    if (name == t.name) return &t;
  }
  return nullptr;
}

std::string weight_type_names() {
  std::vector<std::string> names;
  for (const WeightType& t : weight_types()) names.emplace_back(t.name);
  return join_names(names);
}

bool uses_more_bits(uint32_t layer, uint32_t n_layer) {
  const uint32_t eighth = n_layer / 8;
  return layer < eighth || layer >= 7 * n_layer / 8 || (layer - eighth) % 3 == 2;
}

std::vector<TensorPlan> plan_tensors(const Shape& shape, const WeightType& type, std::vector<std::string>* notes) {
  const uint64_t n_embd = shape.n_embd, n_ff = shape.n_ff, n_vocab = shape.n_vocab;
  const uint64_t head_dim = n_embd / shape.n_head;
  const uint64_t n_embd_kv = head_dim * shape.n_head_kv;
  const float proj_std = 1.5f;  // times 1/sqrt(n_in)
  // Logits = output · normed state: 3/sqrt(n_embd) per weight gives logits with a std of about 3.
  const float output_std = 3.0f / std::sqrt(float(n_embd));
  std::vector<TensorPlan> plan;
  // Fallback reason -> tensor kinds it applies to, reported as one line per reason.
  std::vector<std::pair<std::string, std::vector<std::string>>> fallbacks;

  auto matrix = [&](std::string name, std::string kind, uint64_t n_in, uint64_t n_out, GgmlType wanted,
                    float stddev) {
    const GgmlType t = fit_type(wanted, n_in);
    if (t != wanted) {
      const std::string reason = "row length " + std::to_string(n_in) + " is not a multiple of " +
                                 type_name(wanted) + "'s block of " +
                                 std::to_string(ggml_type_geometry(uint32_t(wanted))->block_elems) + "; using " +
                                 type_name(t) + " for ";
      auto it = std::find_if(fallbacks.begin(), fallbacks.end(), [&](const auto& f) { return f.first == reason; });
      if (it == fallbacks.end()) it = fallbacks.insert(fallbacks.end(), {reason, {}});
      if (std::find(it->second.begin(), it->second.end(), kind) == it->second.end()) it->second.push_back(kind);
    }
    plan.push_back(TensorPlan{std::move(name), t, {n_in, n_out}, false, stddev});
  };
  auto norm = [&](std::string name) { plan.push_back(TensorPlan{std::move(name), GgmlType::F32, {n_embd}, true, 0.0f}); };

  // Untied: embeddings with std 1 (only their direction matters after the first RMS norm).
  if (shape.tied) matrix("token_embd.weight", "token_embd.weight", n_embd, n_vocab, type.more_bits, output_std);
  else matrix("token_embd.weight", "token_embd.weight", n_embd, n_vocab, type.base, 1.0f);
  for (uint32_t il = 0; il < shape.n_layer; ++il) {
    const std::string p = "blk." + std::to_string(il) + ".";
    const GgmlType extra = uses_more_bits(il, shape.n_layer) ? type.more_bits : type.base;
    auto proj = [&](const char* what, uint64_t n_in, uint64_t n_out, GgmlType t) {
      matrix(p + what, std::string("blk.N.") + what, n_in, n_out, t, proj_std / std::sqrt(float(n_in)));
    };
    norm(p + "attn_norm.weight");
    proj("attn_q.weight", n_embd, n_embd, type.base);
    proj("attn_k.weight", n_embd, n_embd_kv, type.base);
    proj("attn_v.weight", n_embd, n_embd_kv, extra);
    proj("attn_output.weight", n_embd, n_embd, type.base);
    norm(p + "ffn_norm.weight");
    proj("ffn_gate.weight", n_embd, n_ff, type.base);
    proj("ffn_up.weight", n_embd, n_ff, type.base);
    proj("ffn_down.weight", n_ff, n_embd, extra);
  }
  norm("output_norm.weight");
  if (!shape.tied) matrix("output.weight", "output.weight", n_embd, n_vocab, type.more_bits, output_std);
  if (notes != nullptr) {
    for (const auto& [reason, kinds] : fallbacks) notes->push_back(reason + join_names(kinds));
  }
  return plan;
}

void fill_normal(uint64_t seed, uint64_t stream, float* dst, size_t n) {
  uint64_t state = splitmix_mix(seed ^ splitmix_mix(stream + 0x632be59bd9b4e019ULL));
  constexpr float kTwoPi = 6.28318530717958647692f;
  constexpr float kInv24 = 1.0f / 16777216.0f;
  size_t i = 0;
  while (i < n) {
    state += 0x9e3779b97f4a7c15ULL;
    const uint64_t bits = splitmix_mix(state);
    // Two 24-bit uniforms: u1 in (0, 1] (log is finite), u2 in [0, 1).
    const float u1 = float((bits >> 40) + 1) * kInv24;
    const float u2 = float(bits & 0xffffff) * kInv24;
    const float r = std::sqrt(-2.0f * std::log(u1));
    const float a = kTwoPi * u2;
    dst[i++] = r * std::cos(a);
    if (i < n) dst[i++] = r * std::sin(a);
  }
}

Status synthesize(const Options& o) {
  auto log = [&](const std::string& line) {
    if (o.log) o.log(line);
  };
  const Shape* shape = find_shape(o.shape);
  if (shape == nullptr) return Status::error("unknown shape '" + o.shape + "' (valid: " + shape_names() + ")");
  const WeightType* type = find_weight_type(o.type);
  if (type == nullptr) return Status::error("unknown type '" + o.type + "' (valid: " + weight_type_names() + ")");

  auto vocab_file = gguf::File::open(o.vocab_path);
  if (!vocab_file) return vocab_file.status();
  std::vector<std::string> notes;
  auto vocab = fit_vocab(vocab_file->metadata(), shape->n_vocab, &notes);
  if (!vocab) return vocab.status().with_context(o.vocab_path);

  const std::vector<TensorPlan> plan = plan_tensors(*shape, *type, &notes);
  for (const std::string& n : notes) log(n);
  uint64_t n_params = 0, n_bytes = 0;
  for (const TensorPlan& t : plan) {
    const auto g = ggml_type_geometry(uint32_t(t.type));
    const uint64_t rows = t.ne.size() > 1 ? t.ne[1] : 1;
    n_params += t.ne[0] * rows;
    n_bytes += row_bytes(*g, t.ne[0]) * rows;
  }
  const unsigned n_threads = o.n_threads ? o.n_threads : std::max(1u, std::thread::hardware_concurrency());
  char head[256];
  std::snprintf(head, sizeof head, "%s: %.1fM parameters, type %s, %s of weights, %u threads, seed %llu",
                shape->name, double(n_params) / 1e6, type->name, size_text(n_bytes).c_str(), n_threads,
                static_cast<unsigned long long>(o.seed));
  log(head);

  gguf::Writer w;
  const uint32_t head_dim = shape->n_embd / shape->n_head;
  w.set("general.architecture", gguf::Value::of_string("llama"));
  w.set("general.name", gguf::Value::of_string(std::string("kvant-synth-") + shape->name + "-" + type->name));
  add_u32(w, "general.file_type", type->file_type);
  add_u32(w, "general.alignment", kAlignment);
  add_u32(w, "general.quantization_version", 2);
  w.set("kvant.synth.seed", gguf::Value::of_u64(o.seed));
  add_u32(w, "llama.vocab_size", shape->n_vocab);
  add_u32(w, "llama.context_length", shape->n_ctx);
  add_u32(w, "llama.embedding_length", shape->n_embd);
  add_u32(w, "llama.block_count", shape->n_layer);
  add_u32(w, "llama.feed_forward_length", shape->n_ff);
  add_u32(w, "llama.attention.head_count", shape->n_head);
  add_u32(w, "llama.attention.head_count_kv", shape->n_head_kv);
  add_u32(w, "llama.rope.dimension_count", head_dim);
  w.set("llama.rope.freq_base", gguf::Value::of_f32(shape->rope_base));
  w.set("llama.attention.layer_norm_rms_epsilon", gguf::Value::of_f32(kRmsEps));
  for (gguf::KeyValue& kv : *vocab) w.set(std::move(kv.key), std::move(kv.value));
  vocab->clear();

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  uint64_t done_bytes = 0;
  for (size_t k = 0; k < plan.size(); ++k) {
    const TensorPlan& t = plan[k];
    auto bytes = generate_tensor(t, o.seed, k, n_threads);
    if (!bytes) return bytes.status();
    KVANT_RETURN_IF_ERROR(w.add_tensor(t.name, uint32_t(t.type), t.ne, bytes->data(), bytes->size()));
    done_bytes += bytes->size();
    bytes->clear();
    bytes->shrink_to_fit();  // the writer keeps its own copy
    const bool layer_end = t.name.ends_with("ffn_down.weight");
    if (layer_end || t.name.starts_with("token_embd") || t.name == "output.weight") {
      char line[256];
      std::snprintf(line, sizeof line, "generated %-22s %s / %s, %.1f s", t.name.c_str(), size_text(done_bytes).c_str(),
                    size_text(n_bytes).c_str(), std::chrono::duration<double>(Clock::now() - t0).count());
      log(line);
    }
  }
  log("writing " + o.out_path);
  Status st = w.write(o.out_path);
  if (!st) return st;
  char tail[128];
  std::snprintf(tail, sizeof tail, "done in %.1f s", std::chrono::duration<double>(Clock::now() - t0).count());
  log(tail);
  return Status::ok();
}

}  // namespace kvant::synth
