// Chat formatting of `clinrl serve`: the model folder's own template (from
// tokenizer_config.json or chat_template.jinja) with its special tokens and
// the request's tools, ChatML when the folder has none.
#include "serve/chat_formatter.h"

#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "tests/policy/test_util.h"

namespace clinrl::serve {
namespace {

using nlohmann::ordered_json;
using policy::testing::TempDir;

const ordered_json kMessages = ordered_json::parse(
    R"([{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "BP?"}])");

TEST(ChatFormatterTest, UsesTheFoldersTemplateWithItsTokensAndTools) {
  TempDir dir;
  const ordered_json config = {
      {"bos_token", "<s>"},
      // Not one of the tokenizer's default stops, so StopIds must add it.
      {"eos_token", {{"content", "<|im_start|>"}}},
      {"chat_template",
       "{{ bos_token }}{% if tools %}[{{ tools | length }} tools: "
       "{{ tools[0].function.name }}]{% endif %}{% for m in messages %}"
       "{{ m.role }}={{ m.content }};{% endfor %}"
       "{% if add_generation_prompt %}assistant={% endif %}"}};
  WriteFileAtomic(dir.path() + "/tokenizer_config.json", config.dump());
  const auto tokenizer = policy::LoadTokenizer("byte");
  const ChatFormatter formatter(dir.path(), tokenizer.get());
  EXPECT_EQ(formatter.source(), "tokenizer_config.json");
  EXPECT_EQ(formatter.Format(kMessages, nullptr),
            "<s>system=Be brief.;user=BP?;assistant=");
  const ordered_json tools = ordered_json::parse(
      R"([{"type": "function", "function": {"name": "get_vitals"}}])");
  EXPECT_EQ(formatter.Format(kMessages, tools),
            "<s>[1 tools: get_vitals]system=Be brief.;user=BP?;assistant=");
  // The eos token ends an answer too.
  const auto eos = tokenizer->TokenId("<|im_start|>");
  ASSERT_TRUE(eos.has_value());
  const auto stops = formatter.StopIds();
  EXPECT_NE(std::find(stops.begin(), stops.end(), *eos), stops.end());
}

TEST(ChatFormatterTest, ReadsChatTemplateJinja) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/chat_template.jinja",
                  "{% for m in messages %}<{{ m.role }}>{% endfor %}");
  const auto tokenizer = policy::LoadTokenizer("byte");
  const ChatFormatter formatter(dir.path(), tokenizer.get());
  EXPECT_EQ(formatter.source(), "chat_template.jinja");
  EXPECT_EQ(formatter.Format(kMessages, nullptr), "<system><user>");
}

TEST(ChatFormatterTest, FallsBackToChatMlAndRefusesToolsThere) {
  TempDir dir;
  const auto tokenizer = policy::LoadTokenizer("byte");
  const ChatFormatter formatter(dir.path(), tokenizer.get());
  EXPECT_EQ(formatter.source(), "ChatML");
  EXPECT_EQ(formatter.Format(kMessages, nullptr),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nBP?"
            "<|im_end|>\n<|im_start|>assistant\n");
  try {
    formatter.Format(kMessages, ordered_json::array({{{"type", "function"}}}));
    FAIL() << "tools accepted without a template";
  } catch (const BadRequest& e) {
    EXPECT_EQ(std::string(e.what()).rfind("tools: ", 0), 0u) << e.what();
  }
}

TEST(ChatFormatterTest, TemplateRefusalsNameMessages) {
  TempDir dir;
  WriteFileAtomic(dir.path() + "/chat_template.jinja",
                  "{{ raise_exception('roles must alternate') }}");
  const auto tokenizer = policy::LoadTokenizer("byte");
  const ChatFormatter formatter(dir.path(), tokenizer.get());
  try {
    formatter.Format(kMessages, nullptr);
    FAIL() << "the template's exception was lost";
  } catch (const BadRequest& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("messages: ", 0), 0u) << message;
    EXPECT_NE(message.find("roles must alternate"), std::string::npos)
        << message;
  }
}

}  // namespace
}  // namespace clinrl::serve
