// tokenizer/tokenizer.h — SPM, BPE and WPM (WordPiece) tokenizers built from GGUF `tokenizer.ggml.*` metadata.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gguf/gguf.h"
#include "kvant/status.h"

namespace kvant {

class Tokenizer {
 public:
  // Reads tokenizer.ggml.{model,pre,tokens,scores,token_type,merges,bos/eos/eot/unk/pad ids,
  // add_bos_token,add_eos_token,add_space_prefix}. Unknown model or pre names are an error naming them.
  static Expected<Tokenizer> from_gguf(const gguf::File& file);

  // add_special: add BOS/EOS (WPM: [CLS]/[SEP]) per the vocabulary's flags. parse_special: match
  // control/user-defined tokens written literally in the text (e.g. "<|eot_id|>").
  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;
  // Raw bytes a token stands for (SPM/WPM '▁' -> ' ', byte tokens -> their byte, BPE byte-level decoded).
  // Control tokens give "" unless render_special.
  std::string token_to_piece(int32_t id, bool render_special = false) const;
  std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const;

  int32_t n_vocab() const;
  int32_t bos_id() const;   // -1 when none
  int32_t eos_id() const;   // -1 when none
  int32_t eot_id() const;   // -1 when none
  bool add_bos() const;
  bool add_eos() const;
  bool is_end_of_generation(int32_t id) const;  // EOS, EOT and other EOG tokens from metadata
  std::string_view model_name() const;  // "llama" (SPM), "gpt2" (BPE) or "bert" (WPM)
  std::string_view pre_name() const;    // BPE pre-tokenizer ("default", "llama-bpe", ...)

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

 private:
  Tokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvant
