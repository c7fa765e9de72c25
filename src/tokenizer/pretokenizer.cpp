// tokenizer/pretokenizer.cpp — hand-written equivalents of llama.cpp's BPE pre-tokenizer regex lists.
// Each list is applied pass by pass: a pass splits every current chunk into matches and the gaps
// between them. Two matching flavours exist, as in llama.cpp: its custom GPT-2/Llama-3 splitters
// (Unicode flags) and std::regex run over "collapsed" text (ASCII kept, other code points reduced
// to their class), whose quirks the regex-mode predicates below reproduce.
#include "tokenizer/pretokenizer.h"

#include <algorithm>
#include <array>
#include <utility>

#include "tokenizer/unicode.h"

namespace kvant {

namespace {

using unicode::flags;
constexpr uint32_t kOutOfRange = 0xFFFFFFFF;

// The code points of one chunk; positions outside [begin, end) read as out of range.
struct Span {
  const std::vector<uint32_t>& cps;
  size_t begin;
  size_t end;
  uint32_t at(size_t i) const { return (i >= begin && i < end) ? cps[i] : kOutOfRange; }
  uint16_t flags_at(size_t i) const { return (i >= begin && i < end) ? flags(cps[i]) : 0; }
};

// A matcher returns the length of the match starting at `pos`, or 0 for none.
using Matcher = size_t (*)(const Span& s, size_t pos);

// ---- regex-mode classes (std::regex over collapsed text) ---------------------------------------

bool ascii_space(uint32_t c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }
bool rx_space(uint32_t c) {
  if (c == kOutOfRange) return false;
  return c < 128 ? ascii_space(c) : (flags(c) & unicode::kWhitespace) != 0;
}
bool rx_letter(uint32_t c) {
  if (c < 128) return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
  return c != kOutOfRange && (flags(c) & (unicode::kLetter | unicode::kWhitespace)) == unicode::kLetter;
}
bool rx_number(uint32_t c) {
  if (c < 128) return c >= '0' && c <= '9';
  return c != kOutOfRange && (flags(c) & (unicode::kNumber | unicode::kWhitespace)) == unicode::kNumber;
}
bool rx_mark(uint32_t c) {
  return c >= 128 && c != kOutOfRange && (flags(c) & (unicode::kMark | unicode::kWhitespace)) == unicode::kMark;
}
bool rx_punct(uint32_t c) {
  if (c < 128) return c < 0x7F && (flags(c) & unicode::kPunctuation) != 0;
  return c != kOutOfRange &&
         (flags(c) & (unicode::kPunctuation | unicode::kWhitespace)) == unicode::kPunctuation;
}
// "[^\s\p{L}\p{N}]": anything in the chunk that is not whitespace, letter or number.
bool rx_other(uint32_t c) { return c != kOutOfRange && !rx_space(c) && !rx_letter(c) && !rx_number(c); }
bool is_cr_lf(uint32_t c) { return c == '\r' || c == '\n'; }
bool is_one_of(uint32_t c, std::u32string_view set) { return set.find(static_cast<char32_t>(c)) != set.npos; }

// wregex mode (no \p in the pattern): code points as is, non-ASCII whitespace seen as U+000B.
uint32_t wide(uint32_t c) { return (c > 0x7F && c != kOutOfRange && rx_space(c)) ? 0x0B : c; }

size_t run(const Span& s, size_t pos, bool (*pred)(uint32_t)) {
  size_t n = 0;
  while (pred(s.at(pos + n))) ++n;
  return n;
}
// "\s?X+" where X is `pred`.
size_t optional_space_then_run(const Span& s, size_t pos, bool (*pred)(uint32_t)) {
  if (rx_space(s.at(pos)) && pred(s.at(pos + 1))) return 1 + run(s, pos + 1, pred);
  return run(s, pos, pred);
}

// "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])" — also llama3's case-insensitive form.
size_t contraction_any_case(const Span& s, size_t pos) {
  if (s.at(pos) != '\'') return 0;
  const auto lower = [](uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; };
  const uint32_t c1 = lower(s.at(pos + 1));
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  const uint32_t c2 = lower(s.at(pos + 2));
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

// The whitespace tail shared by llama3/qwen2: "\s*[\r\n]+|\s+(?!\S)|\s+".
size_t whitespace_tail(const Span& s, size_t pos, bool (*space)(uint32_t), bool with_newlines) {
  size_t n = 0;
  size_t last_newline_end = 0;
  while (space(s.at(pos + n))) {
    if (with_newlines && is_cr_lf(s.at(pos + n))) last_newline_end = n + 1;
    ++n;
  }
  if (last_newline_end > 0) return last_newline_end;
  if (n > 1 && s.at(pos + n) != kOutOfRange) return n - 1;  // \s+(?!\S): leave one for the next word
  return n;
}

// ---- llama.cpp's custom splitters (Unicode flags; every code point lands in some word) ----------

bool f_space(uint16_t f) { return f & unicode::kWhitespace; }
bool f_letter(uint16_t f) { return f & unicode::kLetter; }
bool f_number(uint16_t f) { return f & unicode::kNumber; }
bool f_other(uint16_t f) { return f != 0 && !(f & (unicode::kWhitespace | unicode::kLetter | unicode::kNumber)); }
bool flag_space(uint32_t c) { return c != kOutOfRange && f_space(flags(c)); }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t match_gpt2(const Span& s, size_t pos) {
  const uint32_t c = s.at(pos);
  if (c == '\'') {
    const uint32_t c1 = s.at(pos + 1);
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
    const uint32_t c2 = s.at(pos + 2);
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  }
  const size_t lead = (c == ' ') ? 1 : 0;
  const uint16_t f = s.flags_at(pos + lead);
  for (bool (*cls)(uint16_t) : {f_letter, f_number, f_other}) {
    if (!cls(f)) continue;
    size_t n = lead;
    while (cls(s.flags_at(pos + n))) ++n;
    return n;
  }
  const size_t n = whitespace_tail(s, pos, flag_space, false);
  return n > 0 ? n : 1;
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
// \s*[\r\n]+|\s+(?!\S)|\s+
size_t match_llama3(const Span& s, size_t pos) {
  if (size_t n = contraction_any_case(s, pos)) return n;
  const uint32_t c = s.at(pos);
  const uint16_t f = s.flags_at(pos);
  if (!is_cr_lf(c) && !f_number(f) && (f_letter(f) || f_letter(s.flags_at(pos + 1)))) {
    size_t n = 1;
    while (f_letter(s.flags_at(pos + n))) ++n;
    return n;
  }
  if (f_number(f)) {
    size_t n = 0;
    while (n < 3 && f_number(s.flags_at(pos + n))) ++n;
    return n;
  }
  const size_t lead = (c == ' ') ? 1 : 0;
  if (f_other(s.flags_at(pos + lead))) {
    size_t n = lead;
    while (f_other(s.flags_at(pos + n))) ++n;
    while (is_cr_lf(s.at(pos + n))) ++n;
    return n;
  }
  const size_t n = whitespace_tail(s, pos, flag_space, true);
  return n > 0 ? n : 1;
}

// ---- std::regex-based lists ---------------------------------------------------------------------

// Qwen2 family: the llama3 pattern with \p{N} taken one at a time, run by std::regex (collapsed).
// `letters` is the word class ([\p{L}] or [\p{L}\p{M}]); `other` its complement in the punct run.
template <bool kContractions, bool kWithMarks>
size_t match_qwen_family(const Span& s, size_t pos) {
  if (kContractions) {
    if (size_t n = contraction_any_case(s, pos)) return n;
  }
  const auto word = [](uint32_t c) { return rx_letter(c) || (kWithMarks && rx_mark(c)); };
  const auto other = [](uint32_t c) { return rx_other(c) && !(kWithMarks && rx_mark(c)); };
  const uint32_t c = s.at(pos);
  // [^\r\n\p{L}\p{N}]?[word]+
  if (c != kOutOfRange && !is_cr_lf(c) && !rx_letter(c) && !rx_number(c) && word(s.at(pos + 1))) {
    size_t n = 1;
    while (word(s.at(pos + n))) ++n;
    return n;
  }
  if (word(c)) {
    size_t n = 0;
    while (word(s.at(pos + n))) ++n;
    return n;
  }
  if (rx_number(c)) return 1;
  // " ?[^\s<word>\p{N}]+[\r\n]*"
  const size_t lead = (c == ' ' && other(s.at(pos + 1))) ? 1 : 0;
  if (other(s.at(pos + lead))) {
    size_t n = lead;
    while (other(s.at(pos + n))) ++n;
    while (is_cr_lf(s.at(pos + n))) ++n;
    return n;
  }
  return whitespace_tail(s, pos, rx_space, true);
}

size_t match_cr_or_lf(const Span& s, size_t pos) { return is_cr_lf(s.at(pos)) ? 1 : 0; }
size_t match_number_run(const Span& s, size_t pos) { return run(s, pos, rx_number); }
size_t match_one_number(const Span& s, size_t pos) { return rx_number(s.at(pos)) ? 1 : 0; }
size_t match_three_digits(const Span& s, size_t pos) {
  for (size_t i = 0; i < 3; ++i) {
    const uint32_t c = s.at(pos + i);
    if (c < '0' || c > '9') return 0;
  }
  return 3;
}

// "[\p{P}\$\+<=>\^~\|]+" (default) and the same with '`' (falcon).
bool default_punct(uint32_t c) { return rx_punct(c) || is_one_of(c, U"$+<=>^~|"); }
bool falcon_punct(uint32_t c) { return rx_punct(c) || is_one_of(c, U"$+<=>^~|`"); }
size_t match_default_punct(const Span& s, size_t pos) { return run(s, pos, default_punct); }
size_t match_falcon_punct(const Span& s, size_t pos) { return run(s, pos, falcon_punct); }

size_t match_space_letters(const Span& s, size_t pos) { return optional_space_then_run(s, pos, rx_letter); }
size_t match_space_punct(const Span& s, size_t pos) { return optional_space_then_run(s, pos, rx_punct); }

// "[一-龥ࠀ-一가-퟿]+": U+0800..U+9FA5 and U+AC00..U+D7FF (wregex mode).
bool cjk_hangul(uint32_t c) {
  const uint32_t w = wide(c);
  return (w >= 0x0800 && w <= 0x9FA5) || (w >= 0xAC00 && w <= 0xD7FF);
}
size_t match_cjk_hangul(const Span& s, size_t pos) { return run(s, pos, cjk_hangul); }

// DeepSeek LLM's explicit cased-letter class (wregex mode).
constexpr std::pair<uint32_t, uint32_t> kDeepseekLetters[] = {
    {0x0041, 0x005A}, {0x0061, 0x007A}, {0x00B5, 0x00B5}, {0x00C0, 0x00D6}, {0x00D8, 0x00F6}, {0x00F8, 0x01BA},
    {0x01BC, 0x01BF}, {0x01C4, 0x0293}, {0x0295, 0x02AF}, {0x0370, 0x0373}, {0x0376, 0x0377}, {0x037B, 0x037D},
    {0x037F, 0x037F}, {0x0386, 0x0386}, {0x0388, 0x038A}, {0x038C, 0x038C}, {0x038E, 0x03A1}, {0x03A3, 0x03F5},
    {0x03F7, 0x0481}, {0x048A, 0x052F}, {0x0531, 0x0556}, {0x10A0, 0x10C5}, {0x13A0, 0x13F5}, {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA}, {0x1CBD, 0x1CBF}, {0x1D00, 0x1D2B}, {0x1D6B, 0x1D77}, {0x1D79, 0x1D9A}, {0x1E00, 0x1F15},
    {0x1F18, 0x1F1D}, {0x1F20, 0x1F45}, {0x1F48, 0x1F4D}, {0x1F50, 0x1F57}, {0x1F59, 0x1F59}, {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D}, {0x1F5F, 0x1F7D}, {0x1F80, 0x1FB4}, {0x1FB6, 0x1FBC}, {0x1FBE, 0x1FBE}, {0x1FC2, 0x1FC4},
    {0x1FC6, 0x1FCC}, {0x1FD0, 0x1FD3}, {0x1FD6, 0x1FDB}, {0x1FE0, 0x1FEC}, {0x1FF2, 0x1FF4}, {0x1FF6, 0x1FFC},
    {0x2102, 0x2102}, {0x2107, 0x2107}, {0x210A, 0x2113}, {0x2115, 0x2115}, {0x2119, 0x211D}, {0x2124, 0x2124},
    {0x2126, 0x2126}, {0x2128, 0x2128}, {0x212A, 0x212D}, {0x212F, 0x2134}, {0x2139, 0x2139}, {0x213C, 0x213F},
    {0x2145, 0x2149}, {0x214E, 0x214E}, {0x2183, 0x2184}, {0x2C00, 0x2C7B}, {0x2C7E, 0x2CE4}, {0x2CEB, 0x2CEE},
    {0x2CF2, 0x2CF3}, {0xA640, 0xA66D}, {0xA680, 0xA69B}, {0xA722, 0xA76F}, {0xA771, 0xA787}, {0xA78B, 0xA78E},
    {0xAB70, 0xABBF}, {0xFB00, 0xFB06}, {0xFB13, 0xFB17}, {0xFF21, 0xFF3A}, {0xFF41, 0xFF5A}, {0x10400, 0x1044F},
    {0x104B0, 0x104D3}, {0x104D8, 0x104FB}, {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF},
    {0x1E900, 0x1E943},
};
bool in_ranges(uint32_t c, const std::pair<uint32_t, uint32_t>* ranges, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (c >= ranges[i].first && c <= ranges[i].second) return true;
  }
  return false;
}
bool deepseek_letter(uint32_t c) {
  return in_ranges(wide(c), kDeepseekLetters, std::size(kDeepseekLetters));
}
// "[!-/:-~！-／：-～‘-‟　-。]"
bool deepseek_punct(uint32_t c) {
  static constexpr std::pair<uint32_t, uint32_t> kRanges[] = {
      {0x21, 0x2F}, {0x3A, 0x7E}, {0xFF01, 0xFF0F}, {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
  return in_ranges(wide(c), kRanges, std::size(kRanges));
}
size_t match_deepseek_letters(const Span& s, size_t pos) { return optional_space_then_run(s, pos, deepseek_letter); }
size_t match_deepseek_punct(const Span& s, size_t pos) { return optional_space_then_run(s, pos, deepseek_punct); }
// "\s+$"
size_t match_trailing_space(const Span& s, size_t pos) {
  const size_t n = run(s, pos, rx_space);
  return (n > 0 && pos + n == s.end) ? n : 0;
}

// " ?[^(\s|.,!?…。，、।۔،)]+" (bloom family, wregex mode).
bool bloom_word(uint32_t c) {
  return c != kOutOfRange && !rx_space(c) && !is_one_of(wide(c), U"(|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)");
}
size_t match_bloom(const Span& s, size_t pos) {
  if (s.at(pos) == ' ' && bloom_word(s.at(pos + 1))) return 1 + run(s, pos + 1, bloom_word);
  return run(s, pos, bloom_word);
}

// One pass: every chunk is split into matches and the unmatched gaps between them.
std::vector<size_t> split_pass(const std::vector<uint32_t>& cps, const std::vector<size_t>& chunks,
                               Matcher matcher) {
  std::vector<size_t> out;
  out.reserve(chunks.size() * 2);
  size_t begin = 0;
  for (size_t len : chunks) {
    const Span span{cps, begin, begin + len};
    size_t gap_start = begin;
    size_t pos = begin;
    while (pos < span.end) {
      const size_t n = std::min(matcher(span, pos), span.end - pos);
      if (n == 0) {
        ++pos;
        continue;
      }
      if (pos > gap_start) out.push_back(pos - gap_start);
      out.push_back(n);
      pos += n;
      gap_start = pos;
    }
    if (span.end > gap_start) out.push_back(span.end - gap_start);
    begin += len;
  }
  return out;
}

std::vector<Matcher> passes_for(PreTokenizerType type) {
  switch (type) {
    case PreTokenizerType::kGpt2: return {match_gpt2};
    case PreTokenizerType::kLlama3: return {match_llama3};
    case PreTokenizerType::kQwen2: return {match_qwen_family<true, false>};
    case PreTokenizerType::kQwen35: return {match_qwen_family<true, true>};
    case PreTokenizerType::kUfakzeka: return {match_qwen_family<false, false>};
    case PreTokenizerType::kDeepseekLlm:
      return {match_cr_or_lf, match_deepseek_letters, match_deepseek_punct, match_trailing_space,
              match_cjk_hangul, match_number_run};
    case PreTokenizerType::kDeepseekCoder:
      return {match_cr_or_lf, match_space_letters, match_space_punct, match_cjk_hangul, match_one_number};
    case PreTokenizerType::kFalcon: return {match_falcon_punct, match_gpt2, match_three_digits};
    case PreTokenizerType::kStarcoder: return {match_one_number, match_gpt2};
    case PreTokenizerType::kBloom: return {match_bloom};
    case PreTokenizerType::kViking: return {match_bloom, match_one_number};
    case PreTokenizerType::kDefault:
      return {match_default_punct, match_gpt2, match_number_run, match_three_digits};
  }
  return {};
}

}  // namespace

Expected<PreTokenizerInfo> pre_tokenizer_from_name(std::string_view name) {
  using T = PreTokenizerType;
  struct Entry {
    std::string_view name;
    T type;
    bool clean_spaces;
    bool ignore_merges;
    bool add_bos;
    bool no_bos;
  };
  static constexpr Entry kEntries[] = {
      {"", T::kDefault, true, false, false, false},
      {"default", T::kDefault, true, false, false, false},
      {"llama3", T::kLlama3, true, true, true, false},
      {"llama-v3", T::kLlama3, true, true, true, false},
      {"llama-bpe", T::kLlama3, true, true, true, false},
      {"falcon3", T::kLlama3, true, true, true, false},
      {"falcon-h1", T::kLlama3, true, true, true, false},
      {"pixtral", T::kLlama3, true, true, true, false},
      {"midm-2.0", T::kLlama3, true, true, true, false},
      {"lfm2", T::kLlama3, true, true, true, false},
      {"jina-v5-nano", T::kLlama3, true, true, true, false},
      {"dbrx", T::kLlama3, true, false, false, false},
      {"smaug-bpe", T::kLlama3, true, false, false, false},
      {"glm4", T::kLlama3, true, false, false, true},
      {"chatglm-bpe", T::kLlama3, true, false, false, true},
      {"deepseek-llm", T::kDeepseekLlm, false, false, false, false},
      {"deepseek-coder", T::kDeepseekCoder, false, false, false, false},
      {"falcon", T::kFalcon, true, false, false, false},
      {"mpt", T::kGpt2, true, false, false, false},
      {"gpt-2", T::kGpt2, true, false, false, false},
      {"phi-2", T::kGpt2, true, false, false, false},
      {"jina-es", T::kGpt2, true, false, false, false},
      {"jina-de", T::kGpt2, true, false, false, false},
      {"gigachat", T::kGpt2, true, false, false, false},
      {"jina-v2-es", T::kGpt2, true, false, false, false},
      {"jina-v2-de", T::kGpt2, true, false, false, false},
      {"a.x-4.0", T::kGpt2, true, false, false, false},
      {"mellum", T::kGpt2, true, false, false, false},
      {"modern-bert", T::kGpt2, true, false, false, false},
      {"exaone4", T::kGpt2, true, false, false, false},
      {"olmo", T::kGpt2, true, false, false, false},
      {"jais", T::kGpt2, true, false, false, false},
      {"trillion", T::kGpt2, false, false, false, false},
      {"granite-docling", T::kGpt2, false, false, false, false},
      {"starcoder", T::kStarcoder, true, false, false, false},
      {"refact", T::kStarcoder, true, false, false, false},
      {"command-r", T::kStarcoder, false, false, false, false},
      {"smollm", T::kStarcoder, false, false, false, false},
      {"codeshell", T::kStarcoder, true, false, false, false},
      {"exaone", T::kStarcoder, true, false, false, false},
      {"minerva-7b", T::kStarcoder, true, false, false, false},
      {"mellum2", T::kStarcoder, true, false, false, false},
      {"qwen2", T::kQwen2, false, false, false, false},
      {"deepseek-r1-qwen", T::kQwen2, false, false, false, false},
      {"kormo", T::kQwen2, false, false, false, false},
      {"f2llmv2", T::kQwen2, false, false, false, false},
      {"stablelm2", T::kQwen2, true, false, false, false},
      {"megrez", T::kQwen2, true, false, false, false},
      {"hunyuan", T::kQwen2, false, false, false, false},
      {"solar-open", T::kQwen2, false, false, false, false},
      {"grok-2", T::kQwen2, false, false, false, false},
      {"qwen35", T::kQwen35, false, false, false, false},
      {"ufakzeka", T::kUfakzeka, false, false, false, false},
      {"bloom", T::kBloom, true, false, false, false},
      {"gpt3-finnish", T::kBloom, true, false, false, false},
      {"poro-chat", T::kBloom, false, false, false, false},
      {"viking", T::kViking, false, false, false, false},
  };
  for (const Entry& e : kEntries) {
    if (e.name == name) {
      PreTokenizerInfo info;
      info.type = e.type;
      info.clean_spaces = e.clean_spaces;
      info.ignore_merges = e.ignore_merges;
      info.add_bos = e.add_bos;
      info.no_bos = e.no_bos;
      return info;
    }
  }
  return Status::error("unsupported pre-tokenizer '" + std::string(name) + "' (tokenizer.ggml.pre)");
}

std::vector<std::string> pre_tokenize(std::string_view text, PreTokenizerType type) {
  const std::vector<uint32_t> cps = unicode::decode_utf8(text);
  std::vector<size_t> chunks;
  if (!cps.empty()) chunks.push_back(cps.size());
  for (Matcher matcher : passes_for(type)) chunks = split_pass(cps, chunks, matcher);

  std::vector<std::string> words;
  words.reserve(chunks.size());
  size_t begin = 0;
  for (size_t len : chunks) {
    std::string word;
    for (size_t i = begin; i < begin + len; ++i) unicode::append_utf8(word, cps[i]);
    words.push_back(std::move(word));
    begin += len;
  }
  return words;
}

}  // namespace kvant
