// tokenizer/tokenizer.cpp — Tokenizer: loads the vocabulary and special tokens from GGUF metadata
// (llama.cpp's rules and defaults), splits out special tokens, dispatches to SPM, BPE or WPM, and decodes.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <set>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kvant {

using tok::TokenData;
using tok::Vocab;

namespace {

constexpr int32_t kNone = -1;
constexpr std::string_view kEscapedSpace = "\xE2\x96\x81";  // U+2581 '▁'

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  for (size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(s, pos, hit - pos);
    out.append(to);
  }
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Texts llama.cpp recognises for the EOT / EOM / FIM roles when metadata does not name them.
constexpr std::string_view kEotTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "[EOT]", "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>",
    "<end_of_utterance>"};
constexpr std::string_view kEomTexts[] = {"<|eom_id|>"};
constexpr std::string_view kFimPreTexts[] = {
    "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "begin\xEF\xBD\x9C>",
    "<PRE>", "\xE2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>"};
constexpr std::string_view kFimSufTexts[] = {
    "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "hole\xEF\xBD\x9C>",
    "<SUF>", "\xE2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>"};
constexpr std::string_view kFimMidTexts[] = {
    "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xEF\xBD\x9C" "fim\xE2\x96\x81" "end\xEF\xBD\x9C>",
    "<MID>", "\xE2\x96\x81<MID>", "<|code_middle|>", "<|middle|>"};
constexpr std::string_view kFimPadTexts[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"};
constexpr std::string_view kFimRepTexts[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>",
                                             "<reponame>"};
constexpr std::string_view kFimSepTexts[] = {"<|file_sep|>"};
// Every token with one of these texts ends generation.
constexpr std::string_view kEogTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>", "[e~["};

template <size_t N>
bool contains(const std::string_view (&list)[N], std::string_view text) {
  return std::find(std::begin(list), std::end(list), text) != std::end(list);
}

}  // namespace

struct Tokenizer::Impl {
  enum class Kind { kSpm, kBpe, kWpm };
  Kind kind = Kind::kSpm;
  std::string model;
  std::string pre;
  tok::BpeOptions bpe;
  Vocab vocab;
  std::vector<std::string> pieces;  // token_to_piece with render_special = true

  int32_t bos = kNone, eos = kNone, eot = kNone, eom = kNone, unk = kNone, sep = kNone, pad = kNone;
  int32_t fim_pre = kNone, fim_suf = kNone, fim_mid = kNone, fim_pad = kNone, fim_rep = kNone,
          fim_sep = kNone;
  bool add_bos = false;
  bool add_eos = false;
  bool add_sep = false;  // WPM: [SEP] ends the text when add_special
  bool add_space_prefix = false;
  bool clean_spaces = false;
  std::set<int32_t> eog;
  std::vector<int32_t> special_tokens;  // CONTROL / USER_DEFINED / UNKNOWN, longest text first

  Status load(const gguf::File& file);
  Status load_tokens(const gguf::File& file);
  Status load_special_ids(const gguf::File& file);
  void detect_special_tokens();
  std::string piece_for(int32_t id) const;
  uint32_t attr(int32_t id) const { return vocab.tokens[id].attr; }
  bool valid(int32_t id) const { return id >= 0 && id < vocab.size(); }

  struct Fragment {
    int32_t token;  // kNone for raw text
    size_t offset;
    size_t length;
  };
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
};

// ---- loading -----------------------------------------------------------------------------------

Status Tokenizer::Impl::load(const gguf::File& file) {
  KVANT_ASSIGN_OR_RETURN(model, file.get_string("tokenizer.ggml.model"));
  KVANT_ASSIGN_OR_RETURN(std::optional<std::string> pre_opt, file.get_string_opt("tokenizer.ggml.pre"));
  pre = pre_opt.value_or("");

  if (model == "llama") {
    kind = Kind::kSpm;
    bos = 1, eos = 2, unk = 0;
    add_space_prefix = true;
    clean_spaces = false;
    add_bos = true;
    add_eos = false;
  } else if (model == "gpt2") {
    kind = Kind::kBpe;
    KVANT_ASSIGN_OR_RETURN(PreTokenizerInfo info, pre_tokenizer_from_name(pre));
    if (pre.empty()) pre = "default";
    bpe.pre = info.type;
    bpe.ignore_merges = info.ignore_merges;
    bos = info.no_bos ? kNone : 11;
    eos = 11;
    add_space_prefix = false;
    clean_spaces = info.clean_spaces;
    add_bos = info.add_bos;
  } else if (model == "bert") {
    kind = Kind::kWpm;
    bos = 101, eos = kNone, unk = 100, sep = 102, pad = 0;
    add_space_prefix = false;
    clean_spaces = true;
    add_bos = true;
    add_eos = false;
    add_sep = true;
  } else {
    return Status::error("unsupported tokenizer model '" + model +
                         "' (tokenizer.ggml.model; supported: 'llama' (SPM), 'gpt2' (BPE), 'bert' (WPM))");
  }
  KVANT_ASSIGN_OR_RETURN(std::optional<bool> space_prefix, file.get_bool_opt("tokenizer.ggml.add_space_prefix"));
  if (space_prefix) add_space_prefix = *space_prefix;

  KVANT_RETURN_IF_ERROR(load_tokens(file));
  KVANT_RETURN_IF_ERROR(load_special_ids(file));

  KVANT_ASSIGN_OR_RETURN(std::optional<bool> add_bos_opt, file.get_bool_opt("tokenizer.ggml.add_bos_token"));
  KVANT_ASSIGN_OR_RETURN(std::optional<bool> add_eos_opt, file.get_bool_opt("tokenizer.ggml.add_eos_token"));
  KVANT_ASSIGN_OR_RETURN(std::optional<bool> add_sep_opt, file.get_bool_opt("tokenizer.ggml.add_sep_token"));
  if (add_bos_opt) add_bos = *add_bos_opt;
  if (add_eos_opt) add_eos = *add_eos_opt;
  if (add_sep_opt) add_sep = *add_sep_opt;
  if (add_bos && bos == kNone) {
    return Status::error("tokenizer.ggml.add_bos_token is true, but tokenizer.ggml.bos_token_id is not set");
  }
  if (add_eos && eos == kNone) {
    return Status::error("tokenizer.ggml.add_eos_token is true, but tokenizer.ggml.eos_token_id is not set");
  }
  if (kind == Kind::kWpm && add_sep && sep == kNone) {
    return Status::error("a WPM vocabulary adds [SEP], but tokenizer.ggml.seperator_token_id is not set");
  }
  if (kind == Kind::kWpm && unk == kNone) {
    return Status::error("a WPM vocabulary needs tokenizer.ggml.unknown_token_id");
  }

  detect_special_tokens();

  for (int32_t id = 0; id < vocab.size(); ++id) {
    if (attr(id) & (tok::kAttrControl | tok::kAttrUserDefined | tok::kAttrUnknown)) special_tokens.push_back(id);
  }
  std::stable_sort(special_tokens.begin(), special_tokens.end(), [&](int32_t a, int32_t b) {
    return vocab.tokens[a].text.size() > vocab.tokens[b].text.size();
  });

  pieces.resize(vocab.tokens.size());
  for (int32_t id = 0; id < vocab.size(); ++id) pieces[id] = piece_for(id);
  return Status::ok();
}

Status Tokenizer::Impl::load_tokens(const gguf::File& file) {
  KVANT_ASSIGN_OR_RETURN(const std::vector<std::string>* texts, file.get_string_array("tokenizer.ggml.tokens"));
  const size_t n = texts->size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) {
    return Status::error("tokenizer.ggml.tokens has " + std::to_string(n) + " entries");
  }
  std::vector<float> scores;
  if (file.find("tokenizer.ggml.scores")) {
    KVANT_ASSIGN_OR_RETURN(scores, file.get_float_array("tokenizer.ggml.scores"));
    if (scores.size() < n) {
      return Status::error("tokenizer.ggml.scores has " + std::to_string(scores.size()) + " entries for " +
                           std::to_string(n) + " tokens");
    }
  }
  std::vector<int64_t> types;
  if (file.find("tokenizer.ggml.token_type")) {
    KVANT_ASSIGN_OR_RETURN(types, file.get_int_array("tokenizer.ggml.token_type"));
    if (types.size() < n) {
      return Status::error("tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                           std::to_string(n) + " tokens");
    }
  }
  vocab.tokens.resize(n);
  vocab.ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TokenData& t = vocab.tokens[i];
    t.text = (*texts)[i].empty() ? "[EMPTY_" + std::to_string(i) + "]" : (*texts)[i];
    t.score = scores.empty() ? 0.0f : scores[i];
    t.attr = types.empty() ? tok::kAttrNormal : tok::attr_from_type(types[i]);
    vocab.max_token_len = std::max(vocab.max_token_len, t.text.size());
    auto [it, inserted] = vocab.ids.emplace(t.text, static_cast<int32_t>(i));
    if (!inserted) {
      return Status::error("duplicate token in tokenizer.ggml.tokens: '" + t.text + "' has ids " +
                           std::to_string(it->second) + " and " + std::to_string(i));
    }
  }

  if (kind == Kind::kSpm) vocab.spm_split_at_spaces = tok::spm_can_split_at_spaces(vocab.tokens);
  if (kind == Kind::kBpe) {
    if (!file.find("tokenizer.ggml.merges")) return Status::error("missing tokenizer.ggml.merges for a BPE vocabulary");
    KVANT_ASSIGN_OR_RETURN(const std::vector<std::string>* merges, file.get_string_array("tokenizer.ggml.merges"));
    vocab.merge_ranks.reserve(merges->size());
    for (size_t i = 0; i < merges->size(); ++i) {
      const std::string& m = (*merges)[i];
      const size_t space = m.find(' ', 1);
      std::string key = space == std::string::npos ? std::string("\n") : m.substr(0, space) + "\n" + m.substr(space + 1);
      vocab.merge_ranks.emplace(std::move(key), static_cast<int32_t>(i));  // first rank wins
    }
  }
  return Status::ok();
}

Status Tokenizer::Impl::load_special_ids(const gguf::File& file) {
  const std::pair<std::string_view, int32_t*> keys[] = {
      {"tokenizer.ggml.bos_token_id", &bos},          {"tokenizer.ggml.eos_token_id", &eos},
      {"tokenizer.ggml.eot_token_id", &eot},          {"tokenizer.ggml.eom_token_id", &eom},
      {"tokenizer.ggml.unknown_token_id", &unk},      {"tokenizer.ggml.seperator_token_id", &sep},
      {"tokenizer.ggml.padding_token_id", &pad},      {"tokenizer.ggml.fim_pre_token_id", &fim_pre},
      {"tokenizer.ggml.fim_suf_token_id", &fim_suf},  {"tokenizer.ggml.fim_mid_token_id", &fim_mid},
      {"tokenizer.ggml.fim_pad_token_id", &fim_pad},  {"tokenizer.ggml.fim_rep_token_id", &fim_rep},
      {"tokenizer.ggml.fim_sep_token_id", &fim_sep},  {"tokenizer.ggml.prefix_token_id", &fim_pre},
      {"tokenizer.ggml.suffix_token_id", &fim_suf},   {"tokenizer.ggml.middle_token_id", &fim_mid},
  };
  for (const auto& [key, id] : keys) {
    if (*id >= vocab.size()) *id = kNone;  // a default outside this vocabulary
    if (!file.find(key)) continue;
    KVANT_ASSIGN_OR_RETURN(int64_t value, file.get_int(key));
    // Out-of-range ids (e.g. 0xFFFFFFFF for "none") keep the default, as llama.cpp does.
    if (value >= 0 && value < vocab.size()) *id = static_cast<int32_t>(value);
  }
  return Status::ok();
}

// Finds EOT/EOM/FIM tokens by text when metadata did not name them, marks them CONTROL, and builds
// the end-of-generation set (llama.cpp's heuristics).
void Tokenizer::Impl::detect_special_tokens() {
  const auto detect = [&](int32_t& role, auto& texts) {
    if (role != kNone) return;
    for (std::string_view text : texts) {
      const int32_t id = vocab.find(text);
      if (id < 0) continue;
      role = id;
      vocab.tokens[id].attr |= tok::kAttrControl;
      return;
    }
  };
  detect(eot, kEotTexts);
  detect(eom, kEomTexts);
  detect(fim_pre, kFimPreTexts);
  detect(fim_suf, kFimSufTexts);
  detect(fim_mid, kFimMidTexts);
  detect(fim_pad, kFimPadTexts);
  detect(fim_rep, kFimRepTexts);
  detect(fim_sep, kFimSepTexts);

  for (TokenData& t : vocab.tokens) {
    if ((t.attr & tok::kAttrControl) && t.text.find("unused") != std::string::npos) t.attr |= tok::kAttrUnused;
  }
  for (int32_t id : {fim_pad, fim_rep, fim_sep}) {
    if (id != kNone) eog.insert(id);
  }
  for (int32_t id = 0; id < vocab.size(); ++id) {
    TokenData& t = vocab.tokens[id];
    if (contains(kEogTexts, t.text)) {
      eog.insert(id);
      t.attr |= tok::kAttrControl;
    }
    // gpt-oss: these are always rendered.
    if (t.text == "<|channel|>" || t.text == "<|message|>" || t.text == "<|start|>" || t.text == "<|constrain|>") {
      t.attr = tok::kAttrUserDefined;
    }
  }
  for (int32_t id : {eos, eot, eom}) {
    if (id != kNone) eog.insert(id);
  }
  // o200k_harmony / solar-open: "<|end|>" is not an end of generation there.
  const auto eog_has = [&](std::string_view text) {
    const int32_t id = vocab.find(text);
    return id >= 0 && eog.count(id) ? id : kNone;
  };
  const int32_t end_id = eog_has("<|end|>");
  const bool has_call = eog_has("<|call|>") != kNone || eog_has("<|calls|>") != kNone;
  if (end_id != kNone && has_call && (eog_has("<|return|>") != kNone || eog_has("<|flush|>") != kNone)) {
    eog.erase(end_id);
    vocab.tokens[end_id].attr = tok::kAttrUserDefined;
  }
  // gemma4 / paddleocr: "</s>" is not an end of generation when "<|tool_response>" is.
  const int32_t s_id = eog_has("</s>");
  if (s_id != kNone && eog_has("<|tool_response>") != kNone) {
    eog.erase(s_id);
    vocab.tokens[s_id].attr = tok::kAttrNormal;
  }
}

// ---- pieces and decoding -------------------------------------------------------------------------

std::string Tokenizer::Impl::piece_for(int32_t id) const {
  const TokenData& t = vocab.tokens[id];
  if (t.attr & (tok::kAttrUnknown | tok::kAttrControl | tok::kAttrUserDefined)) return t.text;
  if (t.attr & tok::kAttrNormal) {
    std::string piece = t.text;
    if (kind == Kind::kSpm || kind == Kind::kWpm) {
      replace_all(piece, kEscapedSpace, " ");
      return piece;
    }
    std::string bytes;  // byte-level alphabet back to bytes
    for (uint32_t cp : unicode::decode_utf8(piece)) {
      const int b = unicode::cp_to_byte(cp);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
        continue;
      }
      std::string utf8 = unicode::to_utf8(cp);
      bytes += "[UNK_BYTE_0x";
      static constexpr char kHex[] = "0123456789abcdef";
      for (char c : utf8) {
        bytes.push_back(kHex[static_cast<uint8_t>(c) >> 4]);
        bytes.push_back(kHex[static_cast<uint8_t>(c) & 15]);
      }
      bytes += piece + "]";
    }
    return bytes;
  }
  if (t.attr & tok::kAttrByte) {  // "<0xXX>"
    const auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    if (t.text.size() >= 5 && hex(t.text[3]) >= 0 && hex(t.text[4]) >= 0) {
      return std::string(1, static_cast<char>(hex(t.text[3]) * 16 + hex(t.text[4])));
    }
  }
  return "";
}

// llama.cpp's clean_up_tokenization_spaces passes over detokenized text.
static std::string clean_up_spaces(const std::string& text) {
  if (text.empty()) return text;
  // 1. " ?", " !", " .", " ," lose the space.
  std::string a(1, text[0]);
  for (size_t i = 1; i < text.size(); ++i) {
    const char x = text[i];
    if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ',')) a.pop_back();
    a.push_back(x);
  }
  // 2. " ' " becomes "'".
  std::string b(1, a[0]);
  for (size_t i = 1; i < a.size(); ++i) {
    const char x = a[i];
    if (x == '\'' && i + 1 < a.size() && a[i - 1] == ' ' && a[i + 1] == ' ') {
      b.pop_back();
      a[++i] = '\0';
    }
    b.push_back(x);
  }
  // 3. " 's", " 'm", " 're", " 've" lose the space.
  std::string c(1, b[0]);
  for (size_t i = 1; i < b.size(); ++i) {
    const char x = b[i];
    if (b[i - 1] == ' ' && x == '\'' && i + 1 < b.size()) {
      const char x1 = b[i + 1];
      if (x1 == 's' || x1 == 'm') {
        c.pop_back();
      } else if (i + 2 < b.size()) {
        const char x2 = b[i + 2];
        if ((x1 == 'r' && x2 == 'e') || (x1 == 'v' && x2 == 'e')) c.pop_back();
      }
    }
    c.push_back(x);
  }
  return c;
}

// ---- special-token partitioning ----------------------------------------------------------------

std::vector<Tokenizer::Impl::Fragment> Tokenizer::Impl::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({kNone, 0, text.size()});
  for (int32_t id : special_tokens) {
    if (!parse_special && (attr(id) & (tok::kAttrControl | tok::kAttrUnknown))) continue;
    const std::string& special = vocab.tokens[id].text;
    std::vector<Fragment> next;
    next.reserve(fragments.size());
    for (const Fragment& f : fragments) {
      if (f.token != kNone) {
        next.push_back(f);
        continue;
      }
      const std::string_view raw = text.substr(f.offset, f.length);
      size_t pos = 0;
      for (size_t hit; (hit = raw.find(special, pos)) != std::string_view::npos; pos = hit + special.size()) {
        if (hit > pos) next.push_back({kNone, f.offset + pos, hit - pos});
        next.push_back({id, 0, 0});
      }
      if (pos < raw.size()) next.push_back({kNone, f.offset + pos, raw.size() - pos});
    }
    fragments = std::move(next);
  }
  return fragments;
}

// ---- Tokenizer ---------------------------------------------------------------------------------

Tokenizer::Tokenizer() : impl_(std::make_unique<Impl>()) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Expected<Tokenizer> Tokenizer::from_gguf(const gguf::File& file) {
  Tokenizer tokenizer;
  Status status = tokenizer.impl_->load(file);
  if (!status) return status.with_context(file.path());
  return tokenizer;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  const Impl& m = *impl_;
  std::vector<int32_t> out;
  if (add_special && m.add_bos) out.push_back(m.bos);
  bool prev_special = true;  // SPM: a fragment at the start or after a special token gets the space prefix
  for (const Impl::Fragment& f : m.partition(text, parse_special)) {
    if (f.token != kNone) {
      out.push_back(f.token);
      prev_special = true;
      continue;
    }
    const std::string_view raw = text.substr(f.offset, f.length);
    if (m.kind == Impl::Kind::kSpm) {
      std::string escaped = (m.add_space_prefix && prev_special) ? " " : "";
      escaped.append(raw);
      replace_all(escaped, " ", kEscapedSpace);
      tok::spm_encode(m.vocab, escaped, out);
    } else if (m.kind == Impl::Kind::kWpm) {
      tok::wpm_encode(m.vocab, m.unk, raw, out);
    } else {
      tok::bpe_encode(m.vocab, m.bpe, raw, out);
    }
    prev_special = false;
  }
  if (add_special && m.add_eos) out.push_back(m.eos);
  if (add_special && m.add_sep) out.push_back(m.sep);
  return out;
}

std::string Tokenizer::token_to_piece(int32_t id, bool render_special) const {
  const Impl& m = *impl_;
  if (!m.valid(id)) return "";
  if (!render_special && (m.attr(id) & (tok::kAttrUnknown | tok::kAttrControl))) return "";
  return m.pieces[id];
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  std::string text;
  bool strip_space = impl_->add_space_prefix;  // the first token loses the space SPM prepended
  for (int32_t id : ids) {
    std::string piece = token_to_piece(id, render_special);
    if (strip_space && !piece.empty() && piece[0] == ' ') piece.erase(0, 1);
    strip_space = false;
    text += piece;
  }
  return impl_->clean_spaces ? clean_up_spaces(text) : text;
}

int32_t Tokenizer::n_vocab() const { return impl_->vocab.size(); }
int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::eot_id() const { return impl_->eot; }
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::add_eos() const { return impl_->add_eos; }
bool Tokenizer::is_end_of_generation(int32_t id) const { return impl_->eog.count(id) > 0; }
std::string_view Tokenizer::model_name() const { return impl_->model; }
std::string_view Tokenizer::pre_name() const { return impl_->pre; }

// ---- Vocab helpers -----------------------------------------------------------------------------

namespace tok {

uint32_t attr_from_type(int64_t type) {
  switch (type) {
    case kTypeNormal: return kAttrNormal;
    case kTypeUnknown: return kAttrUnknown;
    case kTypeControl: return kAttrControl;
    case kTypeUserDefined: return kAttrUserDefined;
    case kTypeUnused: return kAttrUnused;
    case kTypeByte: return kAttrByte;
    default: return kAttrUndefined;
  }
}

int32_t Vocab::merge_rank(std::string_view left, std::string_view right) const {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left).append("\n").append(right);
  auto it = merge_ranks.find(key);
  return it == merge_ranks.end() ? -1 : it->second;
}

int32_t Vocab::spm_byte_token(uint8_t byte) const {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char name[6] = {'<', '0', 'x', kHex[byte >> 4], kHex[byte & 15], '>'};
  const int32_t id = find(std::string_view(name, 6));
  if (id >= 0) return id;
  const char raw = static_cast<char>(byte);
  return find(std::string_view(&raw, 1));
}

}  // namespace tok

}  // namespace kvant
