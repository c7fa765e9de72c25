// tools/cmd_tokenize.cpp — `kvant tokenize`: token ids of a text, printed like llama.cpp's
// llama-tokenize (with --ids: one Python-style list; otherwise one "id -> 'piece'" line per token).
#include <cstdio>

#include "common.h"

namespace kvant::cli {

int cmd_tokenize(const std::vector<std::string>& args) {
  std::string model_path, prompt, prompt_file;
  bool ids_only = false, no_bos = false, no_parse_special = false;
  ArgParser p("tokenize", "Print the token ids of a text (BOS added when the vocabulary adds it).");
  p.option({"-m", "--model"}, &model_path, "FILE", "GGUF model or vocabulary (required)");
  p.option({"-p", "--prompt"}, &prompt, "TEXT", "text to tokenize");
  p.option({"-f", "--file"}, &prompt_file, "FILE", "read the text from a file");
  p.flag({"--ids"}, &ids_only, "print only the ids, as [a, b, c]");
  p.flag({"--no-bos"}, &no_bos, "do not add BOS/EOS");
  p.flag({"--no-parse-special"}, &no_parse_special, "treat special-token text as plain text");
  if (Status st = p.parse(args); !st) return fail("tokenize", st.message());
  if (p.help_requested()) {
    std::fputs(p.help().c_str(), stdout);
    return 0;
  }
  if (model_path.empty()) return fail("tokenize", "missing -m/--model FILE");
  const bool has_prompt = p.was_set("-p") || p.was_set("--prompt");
  if (has_prompt == !prompt_file.empty()) {
    return fail("tokenize", "give exactly one of -p/--prompt TEXT or -f/--file FILE");
  }
  if (!prompt_file.empty()) {
    auto text = read_text_file(prompt_file);
    if (!text) return fail("tokenize", text.error());
    prompt = *text;
  }
  auto model = Model::load(model_path);
  if (!model) return fail("tokenize", model.error());
  const std::vector<int32_t> ids = (*model)->tokenize(prompt, !no_bos, !no_parse_special);
  if (ids_only) {
    std::string line = "[";
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
    std::printf("%s]\n", line.c_str());
  } else {
    for (int32_t id : ids) std::printf("%6d -> '%s'\n", id, (*model)->token_to_piece(id, true).c_str());
  }
  return 0;
}

}  // namespace kvant::cli
