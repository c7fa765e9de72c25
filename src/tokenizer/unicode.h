// tokenizer/unicode.h — UTF-8 decoding/encoding, code point classes (letter, number, whitespace, ...)
// and GPT-2's byte <-> printable code point mapping, as llama.cpp's tokenizers see them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kvant::unicode {

// One category class bit per code point (General_Category major class; Cn is kUndefined), plus
// kWhitespace for the White_Space property. Code points past U+10FFFF are kUndefined.
enum CpFlag : uint16_t {
  kUndefined = 1,
  kNumber = 2,       // \p{N}
  kLetter = 4,       // \p{L}
  kSeparator = 8,    // \p{Z}
  kMark = 16,        // \p{M}
  kPunctuation = 32, // \p{P}
  kSymbol = 64,      // \p{S}
  kControl = 128,    // \p{C} except Cn
  kWhitespace = 256, // White_Space
};
constexpr uint16_t kCategoryMask = 0xFF;

struct FlagRange {
  uint32_t first;
  uint16_t flags;
};
// Generated table (unicode_tables.cpp): ranges in ascending order, the first starts at 0.
extern const FlagRange kFlagRanges[];
extern const size_t kFlagRangeCount;

// Generated WordPiece tables (unicode_tables.cpp), ascending by first code point.
struct NfdRun {
  uint32_t first, last;
  uint32_t even, odd;  // cp in [first, last] decomposes to `even` (cp - first even) or `odd`, + marks
};
struct LowerRun {
  uint32_t first;
  uint16_t count;
  uint8_t stride;
  int32_t delta;  // first + k * stride (k < count) lowercases to itself + delta
};
extern const NfdRun kNfdRuns[];
extern const size_t kNfdRunCount;
extern const LowerRun kLowerRuns[];
extern const size_t kLowerRunCount;

uint16_t flags(uint32_t cp);
// First code point of the canonical (NFD) decomposition: 'é' -> 'e'; `cp` itself when it does not decompose.
uint32_t nfd_first(uint32_t cp);
// Simple (one code point) lowercase mapping from UnicodeData.txt; `cp` itself when there is none.
uint32_t to_lower(uint32_t cp);
inline bool is_letter(uint32_t cp) { return flags(cp) & kLetter; }
inline bool is_number(uint32_t cp) { return flags(cp) & kNumber; }
inline bool is_whitespace(uint32_t cp) { return flags(cp) & kWhitespace; }

// Length of the UTF-8 sequence a lead byte announces (1 for continuation/invalid bytes).
size_t utf8_len(char lead);
// Decodes one code point at `offset` and advances it. Malformed input yields U+FFFD and advances
// by one byte (llama.cpp's rule).
uint32_t decode_utf8(std::string_view text, size_t& offset);
std::vector<uint32_t> decode_utf8(std::string_view text);
void append_utf8(std::string& out, uint32_t cp);
std::string to_utf8(uint32_t cp);

// GPT-2 byte-level BPE alphabet: every byte maps to one printable code point and back.
uint32_t byte_to_cp(uint8_t byte);
// Returns -1 when `cp` is not in the byte alphabet.
int cp_to_byte(uint32_t cp);
// UTF-8 text -> byte-level alphabet text (each byte becomes its code point's UTF-8).
std::string bytes_to_byte_level(std::string_view bytes);

}  // namespace kvant::unicode
