// tools/cmd_synth.cpp — `kvant synth` (placeholder until implemented): refuses with a clear message.
#include "common.h"

namespace kvant::cli {

int cmd_synth(const std::vector<std::string>& args) {
  return fail("synth", "not implemented yet");
}

}  // namespace kvant::cli
