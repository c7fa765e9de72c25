// tokenizer/chat_template.cpp — native renderers for the chat template families kvant recognises. Each
// renderer follows its family's reference Jinja template (HF tokenizer_config.json, trim_blocks on);
// the BOS token those templates start with is left to the tokenizer.
#include "tokenizer/chat_template.h"

#include <array>

namespace kvant {

namespace {

constexpr std::array<ChatFamily, 6> kFamilies = {ChatFamily::Llama3, ChatFamily::ChatML, ChatFamily::Gemma,
                                                 ChatFamily::Phi3,   ChatFamily::Mistral, ChatFamily::Zephyr};

bool contains(std::string_view text, std::string_view what) { return text.find(what) != std::string_view::npos; }

// Jinja's `| trim`: strips leading and trailing whitespace.
std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

Status check_roles(const std::vector<ChatMessage>& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& r = messages[i].role;
    if (r != "system" && r != "user" && r != "assistant") {
      return Status::error("message " + std::to_string(i) + ": unknown role '" + r +
                           "' (expected system, user or assistant)");
    }
  }
  return Status::ok();
}

// For templates without a system turn (gemma, mistral): the system text goes in front of the first
// user message, separated by a blank line.
std::vector<ChatMessage> merge_system(const std::vector<ChatMessage>& messages) {
  std::vector<ChatMessage> out;
  std::string system;
  for (const ChatMessage& m : messages) {
    if (m.role == "system") {
      system += (system.empty() ? "" : "\n\n") + m.content;
      continue;
    }
    out.push_back(m);
    if (m.role == "user" && !system.empty()) {
      out.back().content = system + "\n\n" + m.content;
      system.clear();
    }
  }
  return out;
}

std::string render_llama3(const std::vector<ChatMessage>& messages, bool gen) {
  std::string s;
  for (const ChatMessage& m : messages) {
    s += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
  if (gen) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return s;
}

std::string render_chatml(const std::vector<ChatMessage>& messages, bool gen) {
  std::string s;
  for (const ChatMessage& m : messages) s += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (gen) s += "<|im_start|>assistant\n";
  return s;
}

std::string render_gemma(const std::vector<ChatMessage>& messages, bool gen) {
  std::string s;
  for (const ChatMessage& m : merge_system(messages)) {
    const std::string role = m.role == "assistant" ? "model" : m.role;
    s += "<start_of_turn>" + role + "\n" + trim(m.content) + "<end_of_turn>\n";
  }
  if (gen) s += "<start_of_turn>model\n";
  return s;
}

std::string render_phi3(const std::vector<ChatMessage>& messages, bool gen) {
  std::string s;
  for (const ChatMessage& m : messages) s += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
  if (gen) s += "<|assistant|>\n";
  return s;
}

std::string render_mistral(const std::vector<ChatMessage>& messages, const std::string& eos) {
  std::string s;
  for (const ChatMessage& m : merge_system(messages)) {
    if (m.role == "user") {
      s += "[INST] " + m.content + " [/INST]";
    } else {
      s += m.content + eos;
    }
  }
  return s;  // the generation prompt is the closing [/INST] itself
}

std::string render_zephyr(const std::vector<ChatMessage>& messages, bool gen, const std::string& eos) {
  std::string s;
  for (const ChatMessage& m : messages) s += "<|" + m.role + "|>\n" + m.content + eos + "\n";
  if (gen) s += "<|assistant|>\n";
  return s;
}

}  // namespace

const char* chat_family_name(ChatFamily family) {
  switch (family) {
    case ChatFamily::Llama3: return "llama3";
    case ChatFamily::ChatML: return "chatml";
    case ChatFamily::Gemma: return "gemma";
    case ChatFamily::Phi3: return "phi3";
    case ChatFamily::Mistral: return "mistral";
    case ChatFamily::Zephyr: return "zephyr";
  }
  return "?";
}

std::string chat_family_names() {
  std::string s;
  for (ChatFamily f : kFamilies) s += std::string(s.empty() ? "" : ", ") + chat_family_name(f);
  return s;
}

Expected<ChatFamily> parse_chat_family(std::string_view name) {
  for (ChatFamily f : kFamilies) {
    if (name == chat_family_name(f)) return f;
  }
  return Status::error("unknown chat template '" + std::string(name) + "' (known: " + chat_family_names() + ")");
}

std::optional<ChatFamily> detect_chat_family(std::string_view t) {
  if (contains(t, "<|start_header_id|>")) return ChatFamily::Llama3;
  if (contains(t, "<|im_start|>")) return ChatFamily::ChatML;
  if (contains(t, "<start_of_turn>")) return ChatFamily::Gemma;
  if (contains(t, "<|user|>") && contains(t, "<|end|>")) return ChatFamily::Phi3;
  if (contains(t, "<|user|>")) return ChatFamily::Zephyr;
  if (contains(t, "[INST]") && !contains(t, "<<SYS>>")) return ChatFamily::Mistral;  // Llama 2 differs
  return std::nullopt;
}

Expected<std::string> render_chat_family(ChatFamily family, const std::vector<ChatMessage>& messages,
                                         bool add_generation_prompt, const std::string& eos_text) {
  KVANT_RETURN_IF_ERROR(check_roles(messages));
  switch (family) {
    case ChatFamily::Llama3: return render_llama3(messages, add_generation_prompt);
    case ChatFamily::ChatML: return render_chatml(messages, add_generation_prompt);
    case ChatFamily::Gemma: return render_gemma(messages, add_generation_prompt);
    case ChatFamily::Phi3: return render_phi3(messages, add_generation_prompt);
    case ChatFamily::Mistral: return render_mistral(messages, eos_text);
    case ChatFamily::Zephyr: return render_zephyr(messages, add_generation_prompt, eos_text);
  }
  return Status::error("unknown chat template family");
}

std::vector<std::string> chat_family_stop_strings(ChatFamily family, const std::string& eos_text) {
  switch (family) {
    case ChatFamily::Llama3: return {"<|eot_id|>"};
    case ChatFamily::ChatML: return {"<|im_end|>"};
    case ChatFamily::Gemma: return {"<end_of_turn>"};
    case ChatFamily::Phi3: return {"<|end|>"};
    case ChatFamily::Mistral:
    case ChatFamily::Zephyr:
      if (eos_text.empty()) return {};
      return {eos_text};
  }
  return {};
}

}  // namespace kvant
