// tokenizer/vocab.h — the token table shared by the SPM, BPE and WPM encoders (internal to tokenizer/):
// token texts, scores and attributes, text -> id lookup and BPE merge ranks.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer/pretokenizer.h"

namespace kvant::tok {

// GGUF tokenizer.ggml.token_type values.
enum TokenType : int32_t {
  kTypeUndefined = 0, kTypeNormal = 1, kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4,
  kTypeUnused = 5, kTypeByte = 6,
};

// Attribute bits (a token may gain CONTROL or UNUSED on top of its type, as in llama.cpp).
enum TokenAttr : uint32_t {
  kAttrUndefined = 0, kAttrUnknown = 1, kAttrUnused = 2, kAttrNormal = 4, kAttrControl = 8,
  kAttrUserDefined = 16, kAttrByte = 32,
};
uint32_t attr_from_type(int64_t type);

struct TokenData {
  std::string text;
  float score = 0.0f;
  uint32_t attr = kAttrNormal;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct Vocab {
  std::vector<TokenData> tokens;
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> ids;
  // BPE: "left" + '\n' + "right" -> merge rank (merge texts never hold a newline).
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> merge_ranks;
  // SPM: true when no token has a '▁' right after another character (see spm_can_split_at_spaces).
  bool spm_split_at_spaces = false;
  size_t max_token_len = 0;  // longest token text in bytes (WPM matching bound)

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  int32_t find(std::string_view text) const {
    auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  }
  int32_t merge_rank(std::string_view left, std::string_view right) const;
  // SPM byte fallback: "<0xXX>", else the one-byte token, else -1.
  int32_t spm_byte_token(uint8_t byte) const;
};

// SentencePiece BPE over text whose spaces are already escaped to U+2581. Appends ids.
void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out);
// True when every '▁' inside every token follows another '▁' (then SPM may encode word by word).
bool spm_can_split_at_spaces(const std::vector<TokenData>& tokens);

struct BpeOptions {
  PreTokenizerType pre = PreTokenizerType::kDefault;
  bool ignore_merges = false;
};
// Byte-level BPE: pre-tokenize, map bytes to the GPT-2 alphabet, merge by rank. Appends ids.
void bpe_encode(const Vocab& vocab, const BpeOptions& options, std::string_view text,
                std::vector<int32_t>& out);

// WordPiece: NFD-first + lowercase, drop controls, split at whitespace, punctuation and CJK
// ideographs. Returns the words (without the '▁' the encoder prefixes).
std::vector<std::string> wpm_words(std::string_view text);
// WordPiece: greedy longest match of each "▁" + word; a word that cannot be matched becomes `unk`.
void wpm_encode(const Vocab& vocab, int32_t unk, std::string_view text, std::vector<int32_t>& out);

}  // namespace kvant::tok
