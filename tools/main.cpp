// tools/main.cpp — the kvant CLI: dispatches to one subcommand per file (cmd_*.cpp).
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace {

struct Command {
  const char* name;
  kvant::cli::CommandFn fn;
  const char* summary;
};

const Command kCommands[] = {
    {"run", kvant::cli::cmd_run, "generate text from a prompt"},
    {"chat", kvant::cli::cmd_chat, "interactive chat over stdin with the model's chat template"},
    {"serve", kvant::cli::cmd_serve, "OpenAI-compatible HTTP server (chat/completions, completions, models)"},
    {"ppl", kvant::cli::cmd_ppl, "perplexity / KL-divergence on a text file (llama.cpp method)"},
    {"info", kvant::cli::cmd_info, "print a model's architecture, hparams, tokenizer, tensors and KV sizes"},
    {"tokenize", kvant::cli::cmd_tokenize, "print the token ids of a text"},
    {"kvq", kvant::cli::cmd_kvq, "quality of every KV-cache type on real K/V dumps (MSE, inner product, attention)"},
    {"bench", kvant::cli::cmd_bench, "throughput like llama-bench (pp, tg, tg@depth) with GB/s and roofline"},
    {"synth", kvant::cli::cmd_synth, "write a GGUF with seeded random weights of a named shape"},
};

void usage(FILE* out) {
  std::fprintf(out, "usage: kvant <command> [options]   (kvant <command> --help for details)\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %-10s %s\n", c.name, c.summary);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 1;
  }
  const std::string name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    usage(stdout);
    return 0;
  }
  if (name == "--version") {
    std::printf("kvant 0.1.0\n");
    return 0;
  }
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Command& c : kCommands) {
    if (name == c.name) return c.fn(args);
  }
  std::string names;
  for (const Command& c : kCommands) names += std::string(names.empty() ? "" : ", ") + c.name;
  std::fprintf(stderr, "kvant: error: unknown command '%s' (commands: %s; see kvant --help)\n", name.c_str(), names.c_str());
  return 1;
}
