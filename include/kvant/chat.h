// kvant/chat.h — chat messages and rendering them with a model's chat template (recognised families:
// llama3, chatml, gemma, phi3, mistral, zephyr), natively, without a Jinja engine.
#pragma once

#include <string>
#include <vector>

#include "kvant/kvant.h"

namespace kvant {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

// The family used for `model`: `template_override` when not empty (a family name), else the one
// recognised in the GGUF's tokenizer.chat_template. Errors when the override is not a family name,
// the model has no template, or its template is not recognised (the message lists the names).
Expected<std::string> chat_template_name(const Model& model, const std::string& template_override);

// Renders messages as the prompt text. The text does not start with the BOS token: tokenize it with
// add_special = true and parse_special = true. add_generation_prompt appends the assistant header.
Expected<std::string> render_chat(const Model& model, const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt, const std::string& template_override);

// Text that ends an assistant turn in this family ("<|im_end|>", "<|eot_id|>", ...): generation should
// stop there even when the vocabulary does not mark it as end-of-generation.
Expected<std::vector<std::string>> chat_stop_strings(const Model& model, const std::string& template_override);

}  // namespace kvant
