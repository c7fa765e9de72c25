// tools/cmd_synth.cpp — `kvant synth`: write a random-weight Llama GGUF of a known shape and weight type,
// with a vocabulary copied from another GGUF. Progress on stderr.
#include <cstdio>

#include "common.h"
#include "model/synth.h"

namespace kvant::cli {

int cmd_synth(const std::vector<std::string>& args) {
  synth::Options o;
  uint32_t threads = 0;
  ArgParser p("synth", "Write a Llama GGUF with seeded random weights (for tests and benchmarks).");
  p.option({"--shape"}, &o.shape, "NAME", "model shape (required): " + synth::shape_names());
  p.option({"--type"}, &o.type, "TYPE", "weight type (required): " + synth::weight_type_names());
  p.option({"--vocab"}, &o.vocab_path, "FILE", "GGUF whose tokenizer.* metadata is copied (required)");
  p.option({"-o", "--output"}, &o.out_path, "FILE", "output GGUF (required)");
  p.option({"-s", "--seed"}, &o.seed, "N", "random seed (default 42)");
  p.option({"-t", "--threads"}, &threads, "N", "generator threads (default: all cores)", 0, 4096);
  if (Status st = p.parse(args); !st) return fail("synth", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (o.shape.empty()) return fail("synth", "missing --shape NAME (valid: " + synth::shape_names() + ")");
  if (synth::find_shape(o.shape) == nullptr) {
    return fail("synth", "unknown shape '" + o.shape + "' (valid: " + synth::shape_names() + ")");
  }
  if (o.type.empty()) return fail("synth", "missing --type TYPE (valid: " + synth::weight_type_names() + ")");
  if (synth::find_weight_type(o.type) == nullptr) {
    return fail("synth", "unknown type '" + o.type + "' (valid: " + synth::weight_type_names() + ")");
  }
  if (o.vocab_path.empty()) return fail("synth", "missing --vocab FILE");
  if (o.out_path.empty()) return fail("synth", "missing -o/--output FILE");
  o.n_threads = threads;
  o.log = [](const std::string& line) { std::fprintf(stderr, "kvant synth: %s\n", line.c_str()); };
  if (Status st = synth::synthesize(o); !st) return fail("synth", st.message());
  return 0;
}

}  // namespace kvant::cli
