// tests/unit/test_tokenizer.cpp — tokenizer conformance against llama.cpp's vocabulary cases
// (shared/data), SPM round trips, special tokens, pre-tokenizer split boundaries and Unicode tables.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "test_support.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer/vocab.h"

namespace kvant {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: cases separated by "\n__ggml_vocab_test__\n" (the trailing empty piece is not a case);
// .out: one line of space-separated ids per case.
std::vector<Case> read_cases(const std::string& inp_path) {
  const std::string inp = test::read_file(inp_path);
  const std::string out = test::read_file(inp_path.substr(0, inp_path.size() - 4) + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0;;) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) {
      if (pos < inp.size()) texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  std::vector<Case> cases;
  std::istringstream lines(out);
  std::string line;
  for (const std::string& text : texts) {
    if (!std::getline(lines, line)) break;
    Case c{text, {}};
    std::istringstream ids(line);
    for (int64_t id; ids >> id;) c.ids.push_back(static_cast<int32_t>(id));
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << inp_path << ": .inp and .out disagree on the case count";
  return cases;
}

std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) {
    s += ' ';
    s += std::to_string(id);
  }
  return s;
}

Expected<Tokenizer> load(const std::string& path) {
  KVANT_ASSIGN_OR_RETURN(gguf::File file, gguf::File::open(path));
  return Tokenizer::from_gguf(file);
}

// ---- llama.cpp conformance, one test per vocabulary --------------------------------------------

class VocabCases : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabCases, MatchesLlamaCpp) {
  KVANT_REQUIRE_DATA(gguf_path, GetParam());
  KVANT_REQUIRE_DATA(inp_path, GetParam() + ".inp");
  auto tokenizer = load(gguf_path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  const std::vector<Case> cases = read_cases(inp_path);
  ASSERT_GE(cases.size(), 40u);
  size_t passed = 0;
  for (const Case& c : cases) {
    const std::vector<int32_t> got = tokenizer->encode(c.text, /*add_special=*/false, /*parse_special=*/false);
    if (got == c.ids) {
      ++passed;
    } else {
      ADD_FAILURE() << GetParam() << ": text '" << c.text << "'\n  expected" << ids_to_string(c.ids)
                    << "\n  got     " << ids_to_string(got);
    }
  }
  std::cout << "[ tokenizer ] " << GetParam() << ": " << passed << "/" << cases.size() << " cases pass\n";
  EXPECT_EQ(passed, cases.size());
}

std::string vocab_test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(info.param.rfind('/') + 1);
  name = name.substr(0, name.find(".gguf"));
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, VocabCases,
                         ::testing::Values("tokenizer/ggml-vocab-llama-spm.gguf",
                                           "tokenizer/ggml-vocab-gpt-2.gguf",
                                           "tokenizer/ggml-vocab-deepseek-coder.gguf",
                                           "tokenizer/ggml-vocab-deepseek-llm.gguf",
                                           "tokenizer/ggml-vocab-falcon.gguf",
                                           "tokenizer/ggml-vocab-starcoder.gguf",
                                           "tokenizer/ggml-vocab-bert-bge.gguf",
                                           "stories260K/stories260K.gguf",
                                           "refmodel/refmodel-f16.gguf"),
                         vocab_test_name);

// ---- WPM ---------------------------------------------------------------------------------------

TEST(Tokenizer, BertSpecialTokensAndDecode) {
  KVANT_REQUIRE_DATA(path, "tokenizer/ggml-vocab-bert-bge.gguf");
  auto tokenizer = load(path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ(tokenizer->model_name(), "bert");
  EXPECT_TRUE(tokenizer->add_bos());
  const int32_t cls = tokenizer->bos_id();
  ASSERT_GE(cls, 0);
  EXPECT_EQ(tokenizer->token_to_piece(cls, true), "[CLS]");
  const std::vector<int32_t> plain = tokenizer->encode("Hello world", false, false);
  EXPECT_EQ(plain, (std::vector<int32_t>{7592, 2088}));  // from the .out file's "Hello world" case
  const std::vector<int32_t> with_special = tokenizer->encode("Hello world", true, false);
  ASSERT_EQ(with_special.size(), plain.size() + 2);
  EXPECT_EQ(with_special.front(), cls);
  EXPECT_EQ(tokenizer->token_to_piece(with_special.back(), true), "[SEP]");
  // Accents fall away, case folds, punctuation stands alone: all spell the same ids.
  EXPECT_EQ(tokenizer->encode("H\xC3\x89LLO , World", false, false),
            tokenizer->encode("hello,world", false, false));
  // '▁' decodes to a space (the first word keeps its leading space); clean-up drops " ,".
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("hello , world", false, false)), " hello, world");
  // A word no piece sequence can spell is one [UNK].
  const std::vector<int32_t> unk = tokenizer->encode("\xE2\x96\x81\xE2\x96\x81\xE2\x96\x81", false, false);
  ASSERT_EQ(unk.size(), 1u);
  EXPECT_EQ(tokenizer->token_to_piece(unk[0], true), "[UNK]");
}

TEST(Unicode, NfdFirstAndLowercase) {
  using namespace unicode;
  EXPECT_EQ(nfd_first(0xC9), uint32_t{'E'});     // É
  EXPECT_EQ(nfd_first(0x1E69), uint32_t{'s'});   // ṩ: two marks
  EXPECT_EQ(nfd_first(0x100), uint32_t{'A'});    // Ā / ā alternate within one run
  EXPECT_EQ(nfd_first(0x101), uint32_t{'a'});
  EXPECT_EQ(nfd_first(0xAC00), 0x1100u);         // 가: Hangul, algorithmic
  EXPECT_EQ(nfd_first(0xD7A3), 0x1112u);         // last Hangul syllable
  EXPECT_EQ(nfd_first('a'), uint32_t{'a'});
  EXPECT_EQ(nfd_first(0x4E2D), 0x4E2Du);
  EXPECT_EQ(to_lower('Q'), uint32_t{'q'});
  EXPECT_EQ(to_lower('q'), uint32_t{'q'});
  EXPECT_EQ(to_lower(0xC4), 0xE4u);              // Ä
  EXPECT_EQ(to_lower(0x100), 0x101u);            // Ā (stride-2 run)
  EXPECT_EQ(to_lower(0x101), 0x101u);
  EXPECT_EQ(to_lower(0x391), 0x3B1u);            // Greek Alpha
  EXPECT_EQ(to_lower(0x410), 0x430u);            // Cyrillic A
  EXPECT_EQ(to_lower(0x130), uint32_t{'i'});     // İ: simple mapping
  EXPECT_EQ(to_lower(0x10400), 0x10428u);        // Deseret
  EXPECT_EQ(to_lower(0x4E2D), 0x4E2Du);
}

// ---- SPM ---------------------------------------------------------------------------------------

TEST(Tokenizer, Stories260KPromptWithBos) {
  KVANT_REQUIRE_DATA(path, "stories260K/stories260K.gguf");
  auto tokenizer = load(path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ(tokenizer->model_name(), "llama");
  EXPECT_EQ(tokenizer->n_vocab(), 512);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_TRUE(tokenizer->add_bos());  // no add_bos_token key: the SPM default
  EXPECT_FALSE(tokenizer->add_eos());
  EXPECT_EQ(tokenizer->encode("Once upon a time", true, false), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tokenizer->encode("Once upon a time", false, false), (std::vector<int32_t>{403, 407, 261, 378}));
  EXPECT_TRUE(tokenizer->is_end_of_generation(2));
  EXPECT_FALSE(tokenizer->is_end_of_generation(1));
  // Control tokens render only on request; "<s>" in text is plain text unless parse_special.
  EXPECT_EQ(tokenizer->token_to_piece(1), "");
  EXPECT_EQ(tokenizer->token_to_piece(1, true), "<s>");
  EXPECT_EQ(tokenizer->encode("<s>", false, true), (std::vector<int32_t>{1}));
  EXPECT_NE(tokenizer->encode("<s>", false, false), (std::vector<int32_t>{1}));
  // Byte tokens decode to their byte.
  EXPECT_EQ(tokenizer->token_to_piece(3 + 0x0A), "\n");
  EXPECT_EQ(tokenizer->decode({1, 403, 407, 261, 378}), " Once upon a time");  // BOS keeps the space
}

TEST(Tokenizer, SpmRoundTrips) {
  for (const char* name : {"tokenizer/ggml-vocab-llama-spm.gguf", "stories260K/stories260K.gguf",
                           "refmodel/refmodel-f16.gguf"}) {
    KVANT_REQUIRE_DATA(path, name);
    auto tokenizer = load(path);
    ASSERT_TRUE(tokenizer) << tokenizer.error();
    size_t checked = 0;
    for (const Case& c : read_cases(path + ".inp")) {
      // decode() drops the one space the encoder prefixed, so the text comes back unchanged.
      EXPECT_EQ(tokenizer->decode(tokenizer->encode(c.text, false, false)), c.text) << name;
      ++checked;
    }
    EXPECT_GE(checked, 40u) << name;
  }
}

TEST(Tokenizer, RefmodelFlags) {
  KVANT_REQUIRE_DATA(path, "refmodel/refmodel-f16.gguf");
  auto tokenizer = load(path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ(tokenizer->n_vocab(), 4096);
  EXPECT_TRUE(tokenizer->add_bos());
  const std::vector<int32_t> ids = tokenizer->encode("Hello", true, false);
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(tokenizer->encode("\n", false, false).back(), 13);  // newline is <0x0A>
}

TEST(Tokenizer, RefmodelEvalTextTokenCount) {
  KVANT_REQUIRE_DATA(path, "refmodel/refmodel-f16.gguf");
  KVANT_REQUIRE_DATA(eval_path, "refmodel/eval.txt");
  auto tokenizer = load(path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  const std::string text = test::read_file(eval_path);
  const std::vector<int32_t> ids = tokenizer->encode(text, true, false);
  EXPECT_EQ(ids.size(), 798571u);  // llama.cpp's count with BOS (refmodel/README.md)
  EXPECT_EQ(tokenizer->decode(ids), " " + text);  // BOS first: the prefixed space stays
}

// The word-by-word SPM shortcut must give exactly the ids of one pass over the whole text.
TEST(Tokenizer, SpmSplitAtSpacesMatchesWholeText) {
  KVANT_REQUIRE_DATA(path, "refmodel/refmodel-f16.gguf");
  KVANT_REQUIRE_DATA(eval_path, "refmodel/eval.txt");
  auto file = gguf::File::open(path);
  ASSERT_TRUE(file) << file.error();
  auto texts = file->get_string_array("tokenizer.ggml.tokens");
  auto scores = file->get_float_array("tokenizer.ggml.scores");
  ASSERT_TRUE(texts && scores);
  tok::Vocab vocab;
  for (size_t i = 0; i < (*texts)->size(); ++i) {
    vocab.tokens.push_back({(**texts)[i], (*scores)[i], tok::kAttrNormal});
    vocab.ids.emplace((**texts)[i], static_cast<int32_t>(i));
  }
  ASSERT_TRUE(tok::spm_can_split_at_spaces(vocab.tokens));
  std::string escaped = "\xE2\x96\x81";
  for (char c : test::read_file(eval_path).substr(0, 200000) + "  \xF0\x9F\x98\x81 x\xFF y") {
    escaped += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
  }
  std::vector<int32_t> split, whole;
  vocab.spm_split_at_spaces = true;
  tok::spm_encode(vocab, escaped, split);
  vocab.spm_split_at_spaces = false;
  tok::spm_encode(vocab, escaped, whole);
  EXPECT_GT(whole.size(), 40000u);
  EXPECT_EQ(split, whole);
  // A vocabulary with a token like "a▁b" must not take the shortcut.
  vocab.tokens.push_back({"a\xE2\x96\x81" "b", 0.0f, tok::kAttrNormal});
  EXPECT_FALSE(tok::spm_can_split_at_spaces(vocab.tokens));
}

// ---- BPE ---------------------------------------------------------------------------------------

TEST(Tokenizer, Gpt2SpecialTokensAndDecode) {
  KVANT_REQUIRE_DATA(path, "tokenizer/ggml-vocab-gpt-2.gguf");
  auto tokenizer = load(path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_EQ(tokenizer->model_name(), "gpt2");
  EXPECT_EQ(tokenizer->pre_name(), "gpt-2");
  EXPECT_FALSE(tokenizer->add_bos());  // BPE default for gpt-2
  EXPECT_EQ(tokenizer->eos_id(), 50256);
  EXPECT_EQ(tokenizer->eot_id(), 50256);  // "<|endoftext|>" found by text
  EXPECT_TRUE(tokenizer->is_end_of_generation(50256));
  EXPECT_EQ(tokenizer->encode("a<|endoftext|>b", false, true), (std::vector<int32_t>{64, 50256, 65}));
  const std::vector<int32_t> literal = tokenizer->encode("a<|endoftext|>b", false, false);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 50256), 0);
  EXPECT_EQ(tokenizer->decode(literal), "a<|endoftext|>b");
  // Byte-level pieces decode to raw bytes; clean-up removes the space before punctuation.
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("Hello world", false, false)), "Hello world");
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("\xC3\x84pfel \xF0\x9F\x98\x81", false, false)),
            "\xC3\x84pfel \xF0\x9F\x98\x81");
  EXPECT_EQ(tokenizer->decode(tokenizer->encode("Hi , there .", false, false)), "Hi, there.");
}

TEST(Tokenizer, DeepseekRoundTripsAndUserDefinedTokens) {
  KVANT_REQUIRE_DATA(path, "tokenizer/ggml-vocab-deepseek-coder.gguf");
  auto tokenizer = load(path);
  ASSERT_TRUE(tokenizer) << tokenizer.error();
  EXPECT_TRUE(tokenizer->add_bos());
  EXPECT_EQ(tokenizer->bos_id(), 32013);
  const std::vector<int32_t> with_bos = tokenizer->encode("int x;", true, false);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos.front(), 32013);
  for (const Case& c : read_cases(path + ".inp")) {  // deepseek keeps spaces as they are
    EXPECT_EQ(tokenizer->decode(tokenizer->encode(c.text, false, false)), c.text);
  }
}

// ---- pre-tokenizers (their vocabularies are not staged; boundaries from the regex definitions) --

std::vector<std::string> split(std::string_view text, PreTokenizerType type) { return pre_tokenize(text, type); }
using Words = std::vector<std::string>;

TEST(PreTokenizer, Llama3Boundaries) {
  const auto t = PreTokenizerType::kLlama3;
  EXPECT_EQ(split("Hello world", t), (Words{"Hello", " world"}));
  EXPECT_EQ(split("1234567", t), (Words{"123", "456", "7"}));            // \p{N}{1,3}
  EXPECT_EQ(split("I'M here", t), (Words{"I", "'M", " here"}));          // case-insensitive contractions
  EXPECT_EQ(split("x   y", t), (Words{"x", "  ", " y"}));                // \s+(?!\S) leaves one space
  EXPECT_EQ(split("a \n\n b", t), (Words{"a", " \n\n", " b"}));          // \s*[\r\n]+
  EXPECT_EQ(split(" ?!\n\nok", t), (Words{" ?!\n\n", "ok"}));            //  ?[^\s\p{L}\p{N}]+[\r\n]*
  EXPECT_EQ(split("$hello", t), (Words{"$hello"}));                      // [^\r\n\p{L}\p{N}]?\p{L}+
  EXPECT_EQ(split("trailing  ", t), (Words{"trailing", "  "}));
}

TEST(PreTokenizer, Qwen2Boundaries) {
  const auto t = PreTokenizerType::kQwen2;
  EXPECT_EQ(split("1234567", t), (Words{"1", "2", "3", "4", "5", "6", "7"}));  // \p{N} one at a time
  EXPECT_EQ(split("Hello world", t), (Words{"Hello", " world"}));
  EXPECT_EQ(split("don'T", t), (Words{"don", "'T"}));
  EXPECT_EQ(split("x   y", t), (Words{"x", "  ", " y"}));
  EXPECT_EQ(split("\xC3\xA9t\xC3\xA9 \xE4\xBD\xA0\xE5\xA5\xBD", t),  // "été 你好": non-ASCII letters
            (Words{"\xC3\xA9t\xC3\xA9", " \xE4\xBD\xA0\xE5\xA5\xBD"}));
  EXPECT_EQ(split("a\t\n b", t), (Words{"a", "\t\n", " b"}));
}

TEST(PreTokenizer, Gpt2AndDeepseekBoundaries) {
  EXPECT_EQ(split("Hello  world's 123", PreTokenizerType::kGpt2),
            (Words{"Hello", " ", " world", "'s", " 123"}));
  // deepseek-coder: newlines alone, digits one by one, CJK runs apart.
  EXPECT_EQ(split("ab\n12", PreTokenizerType::kDeepseekCoder), (Words{"ab", "\n", "1", "2"}));
  // starcoder: digits split before the gpt-2 pass.
  EXPECT_EQ(split(" 42", PreTokenizerType::kStarcoder), (Words{" ", "4", "2"}));
}

TEST(PreTokenizer, NamesAndErrors) {
  auto qwen = pre_tokenizer_from_name("qwen2");
  ASSERT_TRUE(qwen);
  EXPECT_EQ(qwen->type, PreTokenizerType::kQwen2);
  EXPECT_FALSE(qwen->clean_spaces);
  auto llama3 = pre_tokenizer_from_name("llama-bpe");
  ASSERT_TRUE(llama3);
  EXPECT_TRUE(llama3->add_bos);
  EXPECT_TRUE(llama3->ignore_merges);
  auto unknown = pre_tokenizer_from_name("no-such-pre");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().find("'no-such-pre'"), std::string::npos) << unknown.error();
}

// ---- Unicode -----------------------------------------------------------------------------------

TEST(Unicode, CategoryFlags) {
  using namespace unicode;
  EXPECT_TRUE(flags('A') & kLetter);
  EXPECT_TRUE(flags('7') & kNumber);
  EXPECT_TRUE(flags('~') & kSymbol);
  EXPECT_TRUE(flags('!') & kPunctuation);
  EXPECT_TRUE(flags('\n') & kWhitespace);
  EXPECT_TRUE(flags('\n') & kControl);
  EXPECT_TRUE(flags(0x00A0) & kWhitespace);
  EXPECT_TRUE(flags(0x3000) & kWhitespace);
  EXPECT_FALSE(flags(0x200B) & kWhitespace);  // zero-width space is Cf, not White_Space
  EXPECT_TRUE(flags(0x0301) & kMark);
  EXPECT_TRUE(flags(0x4E2D) & kLetter);
  EXPECT_TRUE(flags(0x00BD) & kNumber);       // ½ is No
  EXPECT_TRUE(flags(0x1F601) & kSymbol);      // emoji
  EXPECT_TRUE(flags(0x0378) & kUndefined);    // unassigned
  EXPECT_TRUE(flags(0xE000) & kControl);      // private use (Co)
  EXPECT_EQ(flags(0x110000), kUndefined);
}

TEST(Unicode, Utf8AndByteAlphabet) {
  using namespace unicode;
  EXPECT_EQ(decode_utf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x81"), (std::vector<uint32_t>{'a', 0xE9, 0x20AC, 0x1F601}));
  EXPECT_EQ(decode_utf8("\xFF" "a\xC3"), (std::vector<uint32_t>{0xFFFD, 'a', 0xFFFD}));
  for (uint32_t cp : {0x24u, 0xE9u, 0x20ACu, 0x1F601u}) EXPECT_EQ(decode_utf8(to_utf8(cp)), std::vector<uint32_t>{cp});
  std::vector<bool> seen(0x200, false);
  for (int b = 0; b < 256; ++b) {
    const uint32_t cp = byte_to_cp(static_cast<uint8_t>(b));
    ASSERT_LT(cp, seen.size());
    EXPECT_FALSE(seen[cp]) << "two bytes map to U+" << std::hex << cp;
    seen[cp] = true;
    EXPECT_EQ(cp_to_byte(cp), b);
  }
  EXPECT_EQ(byte_to_cp(' '), 0x120u);  // 'Ġ'
  EXPECT_EQ(byte_to_cp('\n'), 0x10Au);  // 'Ċ'
  EXPECT_EQ(cp_to_byte('A'), 'A');
  EXPECT_EQ(cp_to_byte(0x4E2D), -1);
}

}  // namespace
}  // namespace kvant
