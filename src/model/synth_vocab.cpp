// model/synth_vocab.cpp — fit_vocab: copies a vocabulary's tokenizer.* metadata and pads it with unused
// tokens or truncates it (with its BPE merges and special ids) to a model's vocabulary size.
#include <string_view>
#include <unordered_set>

#include "gguf/gguf_format.h"
#include "model/synth.h"

namespace kvant::synth {

namespace {

constexpr int64_t kTokenTypeUnused = 5;
constexpr std::string_view kTokens = "tokenizer.ggml.tokens";
constexpr std::string_view kScores = "tokenizer.ggml.scores";
constexpr std::string_view kTokenTypes = "tokenizer.ggml.token_type";
constexpr std::string_view kMerges = "tokenizer.ggml.merges";

// Resizes whichever element vector holds the array's elements.
void resize_array(gguf::Value& v, size_t n) {
  const gguf::ValueType t = v.elem_type;
  if (t == gguf::ValueType::STRING) v.arr_str.resize(n);
  else if (t == gguf::ValueType::ARRAY) v.arrays.resize(n);
  else if (gguf::detail::is_float(t)) v.arr_f.resize(n);
  else if (gguf::detail::is_signed(t)) v.arr_i.resize(n);
  else v.arr_u.resize(n);
}

bool is_numeric_array(const gguf::Value& v) {
  return v.type == gguf::ValueType::ARRAY && v.elem_type != gguf::ValueType::STRING &&
         v.elem_type != gguf::ValueType::ARRAY;
}

// Appends `count` copies of a number to a numeric array, in the member its element type uses.
void append_number(gguf::Value& v, size_t count, int64_t value) {
  const gguf::ValueType t = v.elem_type;
  if (gguf::detail::is_float(t)) v.arr_f.insert(v.arr_f.end(), count, double(value));
  else if (gguf::detail::is_signed(t)) v.arr_i.insert(v.arr_i.end(), count, value);
  else v.arr_u.insert(v.arr_u.end(), count, uint64_t(value));
}

bool is_token_id_key(std::string_view key) { return key.starts_with("tokenizer.ggml.") && key.ends_with("_token_id"); }

// A scalar integer's value, or -1 when the value is not a non-negative integer.
int64_t id_value(const gguf::Value& v) {
  if (gguf::detail::is_unsigned(v.type)) return v.u > uint64_t(INT64_MAX) ? -1 : int64_t(v.u);
  if (gguf::detail::is_signed(v.type)) return v.i;
  return -1;
}

}  // namespace

Expected<std::vector<gguf::KeyValue>> fit_vocab(const std::vector<gguf::KeyValue>& metadata, uint32_t n_vocab,
                                                std::vector<std::string>* notes) {
  auto note = [&](std::string s) {
    if (notes != nullptr) notes->push_back(std::move(s));
  };
  std::vector<gguf::KeyValue> out;
  for (const gguf::KeyValue& kv : metadata) {
    if (kv.key.starts_with("tokenizer.")) out.push_back(kv);
  }
  gguf::KeyValue* tokens = nullptr;
  for (gguf::KeyValue& kv : out) {
    if (kv.key == kTokens) tokens = &kv;
  }
  if (tokens == nullptr) return Status::error("missing key '" + std::string(kTokens) + "' (not a vocabulary GGUF?)");
  if (tokens->value.type != gguf::ValueType::ARRAY || tokens->value.elem_type != gguf::ValueType::STRING) {
    return Status::error("key '" + std::string(kTokens) + "' is not an array of strings");
  }
  const size_t n_src = tokens->value.arr_str.size();
  if (n_src == 0) return Status::error("key '" + std::string(kTokens) + "' is empty");
  for (const gguf::KeyValue& kv : out) {
    if ((kv.key == kScores || kv.key == kTokenTypes) &&
        (!is_numeric_array(kv.value) || kv.value.array_size() != n_src)) {
      return Status::error("key '" + kv.key + "' is not a numeric array of " + std::to_string(n_src) + " entries");
    }
  }
  if (n_src == n_vocab) return out;

  if (n_src < n_vocab) {
    const size_t n_pad = n_vocab - n_src;
    std::unordered_set<std::string> existing(tokens->value.arr_str.begin(), tokens->value.arr_str.end());
    size_t counter = 0;
    for (size_t k = 0; k < n_pad; ++k) {
      std::string text;
      do {
        text = "<unused_" + std::to_string(counter++) + ">";
      } while (existing.count(text) != 0);
      tokens->value.arr_str.push_back(std::move(text));
    }
    for (gguf::KeyValue& kv : out) {
      if (kv.key == kScores) append_number(kv.value, n_pad, 0);
      if (kv.key == kTokenTypes) append_number(kv.value, n_pad, kTokenTypeUnused);
    }
    note("vocabulary padded from " + std::to_string(n_src) + " to " + std::to_string(n_vocab) +
         " tokens with unused <unused_N> tokens");
    return out;
  }

  // Truncate: per-token arrays, then merges and special ids that refer to dropped tokens.
  for (gguf::KeyValue& kv : out) {
    if (kv.key == kTokens || kv.key == kScores || kv.key == kTokenTypes) resize_array(kv.value, n_vocab);
  }
  const std::vector<std::string>& kept = tokens->value.arr_str;
  const std::unordered_set<std::string_view> kept_set(kept.begin(), kept.end());
  size_t merges_dropped = 0, merges_total = 0;
  for (gguf::KeyValue& kv : out) {
    if (kv.key != kMerges || kv.value.type != gguf::ValueType::ARRAY ||
        kv.value.elem_type != gguf::ValueType::STRING) {
      continue;
    }
    std::vector<std::string> merges;
    merges_total = kv.value.arr_str.size();
    for (std::string& m : kv.value.arr_str) {
      const size_t space = m.find(' ', 1);
      bool keep = space != std::string::npos;
      if (keep) {
        const std::string_view left = std::string_view(m).substr(0, space);
        const std::string_view right = std::string_view(m).substr(space + 1);
        keep = kept_set.count(left) && kept_set.count(right) && kept_set.count(std::string(left) + std::string(right));
      }
      if (keep) merges.push_back(std::move(m));
    }
    merges_dropped = merges_total - merges.size();
    kv.value.arr_str = std::move(merges);
  }
  std::vector<gguf::KeyValue> fitted;
  for (gguf::KeyValue& kv : out) {
    if (is_token_id_key(kv.key)) {
      const int64_t id = id_value(kv.value);
      if (id >= int64_t(n_vocab)) {
        note("dropped " + kv.key + " = " + std::to_string(id) + " (beyond the " + std::to_string(n_vocab) +
             " kept tokens)");
        continue;
      }
    }
    fitted.push_back(std::move(kv));
  }
  std::string msg = "vocabulary truncated from " + std::to_string(n_src) + " to " + std::to_string(n_vocab) + " tokens";
  if (merges_total > 0) {
    msg += ", " + std::to_string(merges_dropped) + " of " + std::to_string(merges_total) + " merges dropped";
  }
  note(msg);
  return fitted;
}

}  // namespace kvant::synth
