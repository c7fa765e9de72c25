// tools/kv_context.h — resuming a session from a saved KV context (--load-kv) for run and chat.
#pragma once

#include <string>
#include <vector>

#include "kvant/kvant.h"

namespace kvant::cli {

// Loads `path` into `session` and checks that `prompt` starts with the saved tokens. Returns how many
// prompt tokens are already evaluated; at least one prompt token is always left to evaluate (the
// session is truncated by one when the prompt equals the saved tokens) so that logits exist.
Expected<size_t> resume_from_saved(Session& session, const std::string& path, const std::vector<int32_t>& prompt);

// Length of the common prefix of two token sequences.
size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

}  // namespace kvant::cli
