// tests/unit/test_chat_template.cpp — chat template families: recognition by signature, rendering of
// every family against strings written out from each family's reference Jinja template, overrides and
// errors.
#include <gtest/gtest.h>

#include "kvant/chat.h"
#include "test_support.h"
#include "tokenizer/chat_template.h"

namespace kvant {
namespace {

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", " Hi there\n"}, {"assistant", "Hello!"}, {"user", "Count to 3."}};

std::string render(ChatFamily f, bool gen, const std::string& eos = "</s>") {
  auto r = render_chat_family(f, kConversation, gen, eos);
  EXPECT_TRUE(r.has_value()) << r.error();
  return r ? *r : "";
}

TEST(ChatTemplate, Llama3TrimsContentAndUsesHeaders) {
  EXPECT_EQ(render(ChatFamily::Llama3, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nCount to 3.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, ChatMLKeepsContentVerbatim) {
  EXPECT_EQ(render(ChatFamily::ChatML, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\n Hi there\n<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nCount to 3.<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(render(ChatFamily::ChatML, false).find("<|im_start|>assistant\n", 100), std::string::npos);
}

TEST(ChatTemplate, GemmaMergesSystemAndNamesTheModelRole) {
  EXPECT_EQ(render(ChatFamily::Gemma, true),
            "<start_of_turn>user\nBe brief.\n\n Hi there<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nCount to 3.<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(ChatTemplate, Phi3UsesRoleTagsAndEnd) {
  EXPECT_EQ(render(ChatFamily::Phi3, true),
            "<|system|>\nBe brief.<|end|>\n<|user|>\n Hi there\n<|end|>\n<|assistant|>\nHello!<|end|>\n"
            "<|user|>\nCount to 3.<|end|>\n<|assistant|>\n");
}

TEST(ChatTemplate, MistralWrapsUserTurnsInInst) {
  const std::string expected = "[INST] Be brief.\n\n Hi there\n [/INST]Hello!</s>[INST] Count to 3. [/INST]";
  EXPECT_EQ(render(ChatFamily::Mistral, true), expected);
  EXPECT_EQ(render(ChatFamily::Mistral, false), expected);  // no separate generation prompt
}

TEST(ChatTemplate, ZephyrEndsTurnsWithEos) {
  EXPECT_EQ(render(ChatFamily::Zephyr, true, "</s>"),
            "<|system|>\nBe brief.</s>\n<|user|>\n Hi there\n</s>\n<|assistant|>\nHello!</s>\n"
            "<|user|>\nCount to 3.</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, GenerationPromptOnlyWhenAsked) {
  for (ChatFamily f : {ChatFamily::Llama3, ChatFamily::ChatML, ChatFamily::Gemma, ChatFamily::Phi3, ChatFamily::Zephyr}) {
    const std::string with = render(f, true), without = render(f, false);
    EXPECT_GT(with.size(), without.size()) << chat_family_name(f);
    EXPECT_EQ(with.compare(0, without.size(), without), 0) << chat_family_name(f);
  }
}

TEST(ChatTemplate, UnknownRoleIsAnError) {
  auto r = render_chat_family(ChatFamily::ChatML, {{"robot", "x"}}, true, "</s>");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().find("robot"), std::string::npos);
}

TEST(ChatTemplate, DetectsFamiliesBySignature) {
  // Fragments in the style of each family's published Jinja template.
  EXPECT_EQ(detect_chat_family("{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' %}"),
            ChatFamily::Llama3);
  EXPECT_EQ(detect_chat_family("{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>'}}"),
            ChatFamily::ChatML);
  EXPECT_EQ(detect_chat_family("{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"),
            ChatFamily::Gemma);
  EXPECT_EQ(detect_chat_family("{{'<|user|>' + '\\n' + message['content'] + '<|end|>' + '\\n'}}"), ChatFamily::Phi3);
  EXPECT_EQ(detect_chat_family("{{ '<|user|>\\n' + message['content'] + eos_token }}"), ChatFamily::Zephyr);
  EXPECT_EQ(detect_chat_family("{{ '[INST] ' + message['content'] + ' [/INST]' }}"), ChatFamily::Mistral);
  EXPECT_FALSE(detect_chat_family("{{ '[INST] <<SYS>>\\n' + system + '\\n<</SYS>>' }}").has_value());
  EXPECT_FALSE(detect_chat_family("{% for m in messages %}{{ m.content }}{% endfor %}").has_value());
}

TEST(ChatTemplate, ParsesEveryFamilyName) {
  for (const char* name : {"llama3", "chatml", "gemma", "phi3", "mistral", "zephyr"}) {
    auto f = parse_chat_family(name);
    ASSERT_TRUE(f.has_value()) << name;
    EXPECT_STREQ(chat_family_name(*f), name);
  }
  auto bad = parse_chat_family("vicuna");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().find("vicuna"), std::string::npos);
  EXPECT_NE(bad.error().find("chatml"), std::string::npos);
}

TEST(ChatTemplate, ModelWithoutTemplateNeedsOverride) {
  KVANT_REQUIRE_DATA(path, "stories260K/stories260K.gguf");
  auto model = Model::load(path);
  ASSERT_TRUE(model.has_value()) << model.error();
  auto none = render_chat(**model, {{"user", "hi"}}, true, "");
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().find("--chat-template"), std::string::npos);
  auto chatml = render_chat(**model, {{"user", "hi"}}, true, "chatml");
  ASSERT_TRUE(chatml.has_value()) << chatml.error();
  EXPECT_EQ(*chatml, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  auto zephyr = render_chat(**model, {{"user", "hi"}}, true, "zephyr");
  ASSERT_TRUE(zephyr.has_value());
  EXPECT_EQ(*zephyr, "<|user|>\nhi" + (*model)->token_to_piece((*model)->info().eos_id, true) + "\n<|assistant|>\n");
  EXPECT_FALSE(render_chat(**model, {{"user", "hi"}}, true, "nope").has_value());
}

}  // namespace
}  // namespace kvant
