// tokenizer/wpm.cpp — WordPiece (BERT) encoding as llama.cpp does it: NFD-first + lowercase
// normalisation, word splitting, then greedy longest-prefix matching of "▁"-prefixed words.
#include <algorithm>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kvant::tok {

namespace {

// The CJK ideograph blocks BERT's basic tokenizer splits one character at a time (with the
// 0x2B920 lower bound HF's tokenizer uses).
bool is_cjk_ideograph(uint32_t cp) {
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
         (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
         (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
         (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

}  // namespace

std::vector<std::string> wpm_words(std::string_view text) {
  std::vector<std::string> words(1);
  const auto finish_word = [&] {
    if (!words.back().empty()) words.emplace_back();
  };
  for (size_t offset = 0; offset < text.size();) {
    const uint32_t cp = unicode::nfd_first(unicode::decode_utf8(text, offset));
    const uint16_t f = unicode::flags(cp);
    if (f & unicode::kWhitespace) {
      finish_word();
      continue;
    }
    if (cp == 0 || cp == 0xFFFD || (f & unicode::kControl)) continue;
    const uint32_t lower = unicode::to_lower(cp);
    if ((f & unicode::kPunctuation) || (cp < 0x7F && (f & unicode::kSymbol)) || is_cjk_ideograph(cp)) {
      finish_word();
      unicode::append_utf8(words.back(), lower);  // a word of its own
      words.emplace_back();
    } else {
      unicode::append_utf8(words.back(), lower);
    }
  }
  if (words.back().empty()) words.pop_back();
  return words;
}

void wpm_encode(const Vocab& vocab, int32_t unk, std::string_view text, std::vector<int32_t>& out) {
  for (const std::string& word : wpm_words(text)) {
    const std::string marked = "\xE2\x96\x81" + word;  // word-initial pieces carry '▁'
    const size_t n = marked.size();
    const size_t word_start = out.size();
    for (size_t i = 0; i < n;) {
      // Longest vocabulary entry starting at byte i.
      int32_t id = -1;
      size_t j = std::min(n, i + vocab.max_token_len);
      for (; j > i; --j) {
        id = vocab.find(std::string_view(marked).substr(i, j - i));
        if (id >= 0) break;
      }
      if (id < 0) {  // the word cannot be spelled: it becomes one UNK
        out.resize(word_start);
        break;
      }
      out.push_back(id);
      i = j;
    }
    if (out.size() == word_start) out.push_back(unk);
  }
}

}  // namespace kvant::tok
