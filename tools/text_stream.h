// tools/text_stream.h — turns generated token pieces into text that is safe to emit: holds back an
// incomplete UTF-8 sequence and any suffix that could still become a stop string, and cuts the text
// at the first stop string. Used by `kvant chat` and `kvant serve`.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

namespace kvant::cli {

class TextStream {
 public:
  explicit TextStream(std::vector<std::string> stops = {}) : stops_(std::move(stops)) {
    std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  }

  // Adds a piece; returns the text that can be emitted now. After a stop string, returns "" forever.
  std::string push(const std::string& piece) {
    if (stopped_) return "";
    held_ += piece;
    size_t stop_at = std::string::npos;
    for (const std::string& s : stops_) stop_at = std::min(stop_at, held_.find(s));
    if (stop_at != std::string::npos) {
      stopped_ = true;
      std::string out = held_.substr(0, stop_at);
      held_.clear();
      return out;
    }
    size_t keep = 0;  // longest suffix of held_ that is a proper prefix of a stop string
    for (const std::string& s : stops_) {
      for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
        if (held_.compare(held_.size() - n, n, s, 0, n) == 0) {
          keep = n;
          break;
        }
      }
    }
    size_t emit = held_.size() - keep;
    emit -= incomplete_utf8_tail(held_, emit);
    std::string out = held_.substr(0, emit);
    held_.erase(0, emit);
    return out;
  }
  // Text still held at the end of generation (a partial stop string is real text then).
  std::string flush() {
    std::string out = stopped_ ? "" : held_;
    held_.clear();
    return out;
  }
  bool stopped() const { return stopped_; }

  // Bytes at the end of s[0, n) that start a UTF-8 sequence not yet complete.
  static size_t incomplete_utf8_tail(const std::string& s, size_t n) {
    for (size_t back = 1; back <= 3 && back <= n; ++back) {
      const unsigned char c = static_cast<unsigned char>(s[n - back]);
      if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
      const size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
      return len > back ? back : 0;
    }
    return 0;
  }

 private:
  std::vector<std::string> stops_;
  std::string held_;
  bool stopped_ = false;
};

}  // namespace kvant::cli
