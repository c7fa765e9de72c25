// tokenizer/spm.cpp — SentencePiece-style BPE (llama.cpp's "llama" vocabulary): start from UTF-8
// characters, repeatedly merge the adjacent pair whose joined text is the highest-scoring token,
// then emit each remaining symbol as its token or, when it is not one, as <0xXX> byte tokens.
// (Merged symbols are always tokens, so only unknown single characters fall back to bytes.)
#include <queue>
#include <string>
#include <vector>

#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kvant::tok {

namespace {

struct Symbol {
  int prev;
  int next;
  size_t offset;  // into the text
  size_t n;       // bytes; 0 once merged away
};

struct Bigram {
  int left;
  int right;
  float score;
  size_t size;
};

// Highest score first; on ties the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

class SpmSession {
 public:
  SpmSession(const Vocab& vocab, std::string_view text) : vocab_(vocab), text_(text) {}

  void encode(std::vector<int32_t>& out) {
    for (size_t offset = 0; offset < text_.size();) {
      const size_t n = std::min(unicode::utf8_len(text_[offset]), text_.size() - offset);
      const int index = static_cast<int>(symbols_.size());
      symbols_.push_back({index - 1, offset + n == text_.size() ? -1 : index + 1, offset, n});
      offset += n;
    }
    for (int i = 1; i < static_cast<int>(symbols_.size()); ++i) try_add_bigram(i - 1, i);

    while (!queue_.empty()) {
      const Bigram bigram = queue_.top();
      queue_.pop();
      Symbol& left = symbols_[bigram.left];
      Symbol& right = symbols_[bigram.right];
      if (left.n == 0 || right.n == 0 || left.n + right.n != bigram.size) continue;  // stale
      left.n += right.n;
      right.n = 0;
      left.next = right.next;
      if (right.next >= 0) symbols_[right.next].prev = bigram.left;
      try_add_bigram(left.prev, bigram.left);
      try_add_bigram(bigram.left, left.next);
    }
    if (symbols_.empty()) return;
    for (int i = 0; i != -1; i = symbols_[i].next) emit(symbols_[i], out);
  }

 private:
  std::string_view text_of(const Symbol& s) const { return text_.substr(s.offset, s.n); }

  void try_add_bigram(int left, int right) {
    if (left == -1 || right == -1) return;
    const std::string_view joined =
        text_.substr(symbols_[left].offset, symbols_[left].n + symbols_[right].n);
    const int32_t id = vocab_.find(joined);
    if (id < 0) return;
    queue_.push({left, right, vocab_.tokens[id].score, joined.size()});
  }

  void emit(const Symbol& symbol, std::vector<int32_t>& out) const {
    const std::string_view text = text_of(symbol);
    const int32_t id = vocab_.find(text);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
    for (char c : text) {
      const int32_t byte_id = vocab_.spm_byte_token(static_cast<uint8_t>(c));
      if (byte_id >= 0) out.push_back(byte_id);
    }
  }

  const Vocab& vocab_;
  std::string_view text_;
  std::vector<Symbol> symbols_;
  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue_;
};

}  // namespace

void spm_encode(const Vocab& vocab, std::string_view text, std::vector<int32_t>& out) {
  if (!vocab.spm_split_at_spaces) {
    SpmSession(vocab, text).encode(out);
    return;
  }
  // No token joins a character to a following '▁' run, so no merge can cross the start of a run:
  // encoding the pieces between run starts separately gives the same ids, with far smaller queues.
  constexpr std::string_view kSpace = "\xE2\x96\x81";
  size_t piece_start = 0;
  bool prev_is_space = false;
  for (size_t offset = 0; offset < text.size();) {
    const size_t n = std::min(unicode::utf8_len(text[offset]), text.size() - offset);
    const bool is_space = text.substr(offset, n) == kSpace;
    if (is_space && !prev_is_space && offset > piece_start) {
      SpmSession(vocab, text.substr(piece_start, offset - piece_start)).encode(out);
      piece_start = offset;
    }
    prev_is_space = is_space;
    offset += n;
  }
  SpmSession(vocab, text.substr(piece_start)).encode(out);
}

bool spm_can_split_at_spaces(const std::vector<TokenData>& tokens) {
  constexpr std::string_view kSpace = "\xE2\x96\x81";
  for (const TokenData& t : tokens) {
    for (size_t pos = t.text.find(kSpace, 1); pos != std::string::npos; pos = t.text.find(kSpace, pos + 1)) {
      if (pos < kSpace.size() || std::string_view(t.text).substr(pos - kSpace.size(), kSpace.size()) != kSpace) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace kvant::tok
