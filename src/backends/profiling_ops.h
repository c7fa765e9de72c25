// backends/profiling_ops.h — an Ops decorator that times every call of a host backend by op kind (matmul
// also by weight shape and type) and prints a per-forward-pass table to stderr when destroyed.
// Session wraps its backend in it when the environment variable KVANT_PROFILE is set (CPU backend only:
// GPU ops are asynchronous, so host-side times would measure launches, not work).
#pragma once

#include <memory>

#include "backends/ops.h"

namespace kvant {

std::unique_ptr<Ops> make_profiling_ops(std::unique_ptr<Ops> inner);

}  // namespace kvant
