// runtime/chat.cpp — the public chat API (kvant/chat.h): picks the model's template family (or the
// override) and renders messages with the model's EOS text.
#include "kvant/chat.h"

#include "tokenizer/chat_template.h"

namespace kvant {

namespace {

Expected<ChatFamily> resolve_family(const Model& model, const std::string& override_name) {
  if (!override_name.empty()) return parse_chat_family(override_name);
  const std::string& jinja = model.info().chat_template;
  if (jinja.empty()) {
    return Status::error(model.info().path + ": the model has no tokenizer.chat_template; pass --chat-template NAME (" +
                         chat_family_names() + ")");
  }
  if (auto family = detect_chat_family(jinja)) return *family;
  std::string head = jinja.substr(0, 60);
  for (char& c : head) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Status::error(model.info().path + ": chat template not recognised (it begins '" + head +
                       "...'); pass --chat-template NAME (" + chat_family_names() + ")");
}

std::string eos_text(const Model& model) {
  const int32_t eos = model.info().eos_id;
  if (eos < 0 || eos >= model.n_vocab()) return "";
  return model.token_to_piece(eos, true);
}

}  // namespace

Expected<std::string> chat_template_name(const Model& model, const std::string& template_override) {
  KVANT_ASSIGN_OR_RETURN(ChatFamily family, resolve_family(model, template_override));
  return std::string(chat_family_name(family));
}

Expected<std::string> render_chat(const Model& model, const std::vector<ChatMessage>& messages,
                                  bool add_generation_prompt, const std::string& template_override) {
  KVANT_ASSIGN_OR_RETURN(ChatFamily family, resolve_family(model, template_override));
  return render_chat_family(family, messages, add_generation_prompt, eos_text(model));
}

Expected<std::vector<std::string>> chat_stop_strings(const Model& model, const std::string& template_override) {
  KVANT_ASSIGN_OR_RETURN(ChatFamily family, resolve_family(model, template_override));
  return chat_family_stop_strings(family, eos_text(model));
}

}  // namespace kvant
