// tools/common.h — pieces shared by kvant subcommands: session/KV options, model loading with a
// one-line error, reading a prompt file, and the subcommand entry points.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "kvant/kvant.h"

namespace kvant::cli {

// -c/--ctx-size, -t/--threads, -b/--batch-size, -ctk/-k, -ctv/-v, --kv-rotate, --kv-window.
void add_session_options(ArgParser& parser, SessionParams& params);

// --temp, --top-k, --top-p, --min-p, --repeat-penalty, --repeat-last-n, -s/--seed.
void add_sampling_options(ArgParser& parser, SamplerParams& params);
// Range checks the parser cannot express (top-p in (0, 1], min-p in [0, 1], repeat penalty > 0).
Status check_sampling(const SamplerParams& params);

// Prints "kvant <command>: error: <message>" on stderr and returns exit code 1.
int fail(const std::string& command, const std::string& message);

Expected<std::string> read_text_file(const std::string& path);

// "12.3 MiB" style sizes.
std::string human_bytes(uint64_t bytes);

using CommandFn = int (*)(const std::vector<std::string>& args);
int cmd_run(const std::vector<std::string>& args);
int cmd_info(const std::vector<std::string>& args);
int cmd_ppl(const std::vector<std::string>& args);
int cmd_tokenize(const std::vector<std::string>& args);
int cmd_synth(const std::vector<std::string>& args);
int cmd_kvq(const std::vector<std::string>& args);
int cmd_chat(const std::vector<std::string>& args);
int cmd_serve(const std::vector<std::string>& args);
int cmd_bench(const std::vector<std::string>& args);

}  // namespace kvant::cli
