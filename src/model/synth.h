// model/synth.h — random-weight Llama GGUF files of known shapes (`kvant synth`): the shape and weight
// type tables, the per-tensor plan (names, dims, types with fallbacks), vocabulary fitting, the writer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "kvant/status.h"
#include "quant/ggml_type.h"

namespace kvant::synth {

// A Llama architecture: vocabulary, widths, depth, heads, context, RoPE base, tied output.
struct Shape {
  const char* name;
  uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
  float rope_base;
  bool tied;  // output.weight omitted; token_embd doubles as the output projection
};
const std::vector<Shape>& shapes();
const Shape* find_shape(std::string_view name);
std::string shape_names();  // "tiny, smollm2-135m, ..."

// A weight type choice. Plain types put every 2-D weight in `base`; the _M mixes put output.weight (or
// the tied token_embd) and attn_v/ffn_down of llama.cpp's "more bits" layers in `more_bits`.
struct WeightType {
  const char* name;
  GgmlType base;
  GgmlType more_bits;
  uint32_t file_type;  // llama_ftype value written to general.file_type
};
const std::vector<WeightType>& weight_types();
const WeightType* find_weight_type(std::string_view name);
std::string weight_type_names();

// llama.cpp's layer choice for extra bits: first and last eighth, and every third layer between.
bool uses_more_bits(uint32_t layer, uint32_t n_layer);

// One tensor to generate. ne[0] is the input (contiguous) dimension.
struct TensorPlan {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;
  bool is_norm = false;    // 1 + 0.1·N(0,1), always f32
  float stddev = 0.0f;     // matrices: N(0, stddev²)
};
// Every tensor in file order. Types whose block does not divide the row length fall back (K-quants to
// q8_0, then f16); `notes` receives one line per fallback kind ("blk.N.attn_q.weight: ...").
std::vector<TensorPlan> plan_tensors(const Shape& shape, const WeightType& type, std::vector<std::string>* notes);

// Copies the tokenizer.* keys of `metadata`, fitted to n_vocab tokens: padded with "<unused_N>" tokens
// (type 5 UNUSED, score 0) or truncated (BPE merges touching dropped tokens and special ids beyond the
// end are dropped). `notes` describes what changed. Errors name the key.
Expected<std::vector<gguf::KeyValue>> fit_vocab(const std::vector<gguf::KeyValue>& metadata, uint32_t n_vocab,
                                                std::vector<std::string>* notes);

// Fills dst[0..n) with N(0,1) values from a stream determined by (seed, stream) alone.
void fill_normal(uint64_t seed, uint64_t stream, float* dst, size_t n);

struct Options {
  std::string shape;       // a name from shapes()
  std::string type;        // a name from weight_types()
  std::string vocab_path;  // GGUF whose tokenizer.* keys are copied
  std::string out_path;
  uint64_t seed = 42;
  unsigned n_threads = 0;  // 0: all hardware threads
  std::function<void(const std::string&)> log;  // progress lines (may be empty)
};
// Generates, quantises and writes the model. Deterministic in (shape, type, vocab, seed).
Status synthesize(const Options& options);

}  // namespace kvant::synth
