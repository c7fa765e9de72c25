// tokenizer/unicode.cpp — UTF-8 coding, code point flag lookup over the generated range table,
// and the GPT-2 byte-level alphabet.
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace kvant::unicode {

namespace {

uint16_t lookup_flags(uint32_t cp) {
  // Last range whose start is <= cp.
  const FlagRange* begin = kFlagRanges;
  const FlagRange* end = kFlagRanges + kFlagRangeCount;
  const FlagRange* it =
      std::upper_bound(begin, end, cp, [](uint32_t v, const FlagRange& r) { return v < r.first; });
  return (it - 1)->flags;
}

const std::array<uint16_t, 128>& ascii_flags() {
  static const std::array<uint16_t, 128> table = [] {
    std::array<uint16_t, 128> t{};
    for (uint32_t c = 0; c < 128; ++c) t[c] = lookup_flags(c);
    return t;
  }();
  return table;
}

struct ByteAlphabet {
  std::array<uint32_t, 256> to_cp{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 0x144> from_cp{};  // the alphabet's largest code point is U+0143
  ByteAlphabet() {
    from_cp.fill(-1);
    // Printable Latin-1 bytes map to themselves; the rest to U+0100.. in byte order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      to_utf8[b] = to_utf8_string(to_cp[b]);
      from_cp[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
  static std::string to_utf8_string(uint32_t cp) {
    std::string s;
    append_utf8(s, cp);
    return s;
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

}  // namespace

uint16_t flags(uint32_t cp) {
  if (cp < 128) return ascii_flags()[cp];
  if (cp >= 0x110000) return kUndefined;
  return lookup_flags(cp);
}

size_t utf8_len(char lead) {
  static constexpr size_t kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLen[static_cast<uint8_t>(lead) >> 4];
}

uint32_t decode_utf8(std::string_view text, size_t& offset) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[offset + i]); };
  const auto is_cont = [&](size_t i) { return offset + i < text.size() && (byte(i) & 0xC0) == 0x80; };
  const uint8_t b0 = byte(0);
  if (!(b0 & 0x80)) {
    offset += 1;
    return b0;
  }
  if ((b0 & 0xE0) == 0xC0 && is_cont(1)) {
    const uint32_t cp = ((b0 & 0x1Fu) << 6) | (byte(1) & 0x3Fu);
    offset += 2;
    return cp;
  }
  if ((b0 & 0xF0) == 0xE0 && is_cont(1) && is_cont(2)) {
    const uint32_t cp = ((b0 & 0x0Fu) << 12) | ((byte(1) & 0x3Fu) << 6) | (byte(2) & 0x3Fu);
    offset += 3;
    return cp;
  }
  if ((b0 & 0xF8) == 0xF0 && is_cont(1) && is_cont(2) && is_cont(3)) {
    const uint32_t cp = ((b0 & 0x07u) << 18) | ((byte(1) & 0x3Fu) << 12) | ((byte(2) & 0x3Fu) << 6) |
                        (byte(3) & 0x3Fu);
    offset += 4;
    return cp;
  }
  offset += 1;
  return 0xFFFD;
}

std::vector<uint32_t> decode_utf8(std::string_view text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  size_t offset = 0;
  while (offset < text.size()) cps.push_back(decode_utf8(text, offset));
  return cps;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp <= 0x7F) {
    out.push_back(static_cast<char>(cp));
  } else if (cp <= 0x7FF) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp <= 0xFFFF) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | ((cp >> 18) & 0x07)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string to_utf8(uint32_t cp) {
  std::string s;
  append_utf8(s, cp);
  return s;
}

uint32_t byte_to_cp(uint8_t byte) { return byte_alphabet().to_cp[byte]; }

int cp_to_byte(uint32_t cp) {
  const auto& from_cp = byte_alphabet().from_cp;
  return cp < from_cp.size() ? from_cp[cp] : -1;
}

std::string bytes_to_byte_level(std::string_view bytes) {
  const auto& table = byte_alphabet().to_utf8;
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += table[static_cast<uint8_t>(c)];
  return out;
}

uint32_t nfd_first(uint32_t cp) {
  const NfdRun* end = kNfdRuns + kNfdRunCount;
  const NfdRun* it = std::upper_bound(kNfdRuns, end, cp, [](uint32_t v, const NfdRun& r) { return v < r.first; });
  if (it == kNfdRuns) return cp;
  --it;
  if (cp > it->last) return cp;
  return (cp - it->first) % 2 == 0 ? it->even : it->odd;
}

uint32_t to_lower(uint32_t cp) {
  if (cp < 128) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  const LowerRun* end = kLowerRuns + kLowerRunCount;
  const LowerRun* it =
      std::upper_bound(kLowerRuns, end, cp, [](uint32_t v, const LowerRun& r) { return v < r.first; });
  if (it == kLowerRuns) return cp;
  --it;
  const uint32_t offset = cp - it->first;
  if (offset % it->stride != 0 || offset / it->stride >= it->count) return cp;
  return static_cast<uint32_t>(static_cast<int32_t>(cp) + it->delta);
}

}  // namespace kvant::unicode
