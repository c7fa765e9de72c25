// tokenizer/chat_template.h — chat template families: recognising a GGUF tokenizer.chat_template (Jinja
// text) by its signature and rendering each family natively.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvant/chat.h"
#include "kvant/status.h"

namespace kvant {

enum class ChatFamily { Llama3, ChatML, Gemma, Phi3, Mistral, Zephyr };

// "llama3", "chatml", "gemma", "phi3", "mistral", "zephyr".
const char* chat_family_name(ChatFamily family);
std::string chat_family_names();  // "llama3, chatml, ..."
Expected<ChatFamily> parse_chat_family(std::string_view name);

// The family whose signature appears in the Jinja text, if any.
std::optional<ChatFamily> detect_chat_family(std::string_view jinja);

// Renders the messages. `eos_text` is the model's EOS token text (used by mistral and zephyr). The BOS
// token is never part of the result (the tokenizer adds it). Unknown roles are an error.
Expected<std::string> render_chat_family(ChatFamily family, const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt, const std::string& eos_text);

// Text that ends an assistant turn ("<|im_end|>" for chatml; eos_text for mistral and zephyr).
std::vector<std::string> chat_family_stop_strings(ChatFamily family, const std::string& eos_text);

}  // namespace kvant
