// tokenizer/pretokenizer.h — BPE pre-tokenizers: split text into words the way llama.cpp's regex
// lists do for each `tokenizer.ggml.pre` name, with hand-written matchers over code points.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kvant/status.h"

namespace kvant {

enum class PreTokenizerType {
  kDefault,        // llama.cpp's fallback regex list
  kGpt2,           // gpt-2, mpt, olmo, jais, phi-2, ...
  kLlama3,         // llama-bpe (Llama 3), dbrx, smaug, chatglm4
  kQwen2,          // qwen2, stablelm2, hunyuan, grok-2, ...
  kQwen35,         // qwen35: letters and marks stay together
  kUfakzeka,       // qwen2 without the contraction alternative
  kDeepseekLlm,
  kDeepseekCoder,
  kFalcon,
  kStarcoder,      // starcoder, refact, command-r, smollm, codeshell, exaone, ...
  kBloom,          // bloom, poro-chat, gpt3-finnish
  kViking,
};

// What a pre-tokenizer name implies for the vocabulary (llama.cpp's per-name settings).
struct PreTokenizerInfo {
  PreTokenizerType type = PreTokenizerType::kDefault;
  bool clean_spaces = true;    // detokenizer removes spaces before punctuation/contractions
  bool ignore_merges = false;  // a word that is a whole token skips the merges
  bool add_bos = false;        // default of add_bos_token before metadata overrides it
  bool no_bos = false;         // the vocabulary has no BOS token by default
};

// "" means "default" (llama.cpp warns and uses the default list). Unknown names are an error.
Expected<PreTokenizerInfo> pre_tokenizer_from_name(std::string_view name);

// Splits UTF-8 text into words (UTF-8, not yet byte-level encoded). Malformed UTF-8 becomes U+FFFD.
std::vector<std::string> pre_tokenize(std::string_view text, PreTokenizerType type);

}  // namespace kvant
