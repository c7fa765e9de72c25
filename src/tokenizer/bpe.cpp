// tokenizer/bpe.cpp — byte-level BPE (llama.cpp's "gpt2" vocabulary): pre-tokenize, map every byte
// to the GPT-2 alphabet, then merge adjacent symbols lowest merge rank first within each word.
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
  size_t offset;  // into the word
  size_t n;       // bytes; 0 once merged away
};

struct Bigram {
  int left;
  int right;
  int rank;
  size_t size;  // bytes of the joined text when queued
};

// Lowest rank first; on ties the leftmost pair.
struct BigramOrder {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

void encode_word(const Vocab& vocab, const BpeOptions& options, std::string_view word,
                 std::vector<int32_t>& out) {
  if (word.empty()) return;
  if (options.ignore_merges) {
    const int32_t id = vocab.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<Symbol> symbols;
  for (size_t offset = 0; offset < word.size();) {
    const size_t n = std::min(unicode::utf8_len(word[offset]), word.size() - offset);
    const int index = static_cast<int>(symbols.size());
    symbols.push_back({index - 1, offset + n == word.size() ? -1 : index + 1, offset, n});
    offset += n;
  }
  const auto text_of = [&](int i) { return word.substr(symbols[i].offset, symbols[i].n); };

  std::priority_queue<Bigram, std::vector<Bigram>, BigramOrder> queue;
  const auto add_bigram = [&](int left, int right) {
    if (left == -1 || right == -1) return;
    const int rank = vocab.merge_rank(text_of(left), text_of(right));
    if (rank < 0) return;
    queue.push({left, right, rank, symbols[left].n + symbols[right].n});
  };
  for (int i = 1; i < static_cast<int>(symbols.size()); ++i) add_bigram(i - 1, i);

  while (!queue.empty()) {
    const Bigram bigram = queue.top();
    queue.pop();
    Symbol& left = symbols[bigram.left];
    Symbol& right = symbols[bigram.right];
    // Stale when either side changed since it was queued (the pair is adjacent by construction).
    if (left.n == 0 || right.n == 0 || left.next != bigram.right ||
        left.n + right.n != bigram.size) {
      continue;
    }
    left.n += right.n;
    right.n = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = bigram.left;
    add_bigram(left.prev, bigram.left);
    add_bigram(bigram.left, left.next);
  }

  for (int i = 0; i != -1; i = symbols[i].next) {
    const std::string_view text = text_of(i);
    const int32_t id = vocab.find(text);
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    // Not a token: fall back to tokens for the single bytes, dropping those that have none.
    for (char c : text) {
      const int32_t byte_id = vocab.find(std::string_view(&c, 1));
      if (byte_id >= 0) out.push_back(byte_id);
    }
  }
}

}  // namespace

void bpe_encode(const Vocab& vocab, const BpeOptions& options, std::string_view text,
                std::vector<int32_t>& out) {
  for (const std::string& word : pre_tokenize(text, options.pre)) {
    encode_word(vocab, options, unicode::bytes_to_byte_level(word), out);
  }
}

}  // namespace kvant::tok
