// tools/kv_context.cpp — --load-kv support shared by run and chat.
#include "kv_context.h"

#include <algorithm>

namespace kvant::cli {

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

Expected<size_t> resume_from_saved(Session& session, const std::string& path, const std::vector<int32_t>& prompt) {
  KVANT_RETURN_IF_ERROR(session.load_kv(path));
  const std::vector<int32_t>& saved = session.tokens();
  const size_t common = common_prefix(saved, prompt);
  if (common < saved.size()) {
    return Status::error(path + ": the prompt does not start with the saved context's " + std::to_string(saved.size()) +
                         " tokens (they differ at token " + std::to_string(common) + ")");
  }
  size_t done = saved.size();
  if (done == prompt.size() && done > 0) {
    --done;
    KVANT_RETURN_IF_ERROR(session.truncate(uint32_t(done)));
  }
  return done;
}

}  // namespace kvant::cli
