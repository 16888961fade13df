// policy::ChatFormat against transformers' apply_chat_template
// (tests/policy/reference/chat_template_reference.py --episodes): for every
// published template of tests/policy/chat_templates/ and clinrl's own
// (ChatMlTemplate, read back as the built-in format), each episode of
// episodes.json is rendered the way the rollout builds it, segment by
// segment around the policy's turns (Opening, the turn's text, TurnClose,
// Continuation, ...), and the text before each policy turn must equal what
// transformers renders for the conversation up to that turn with the
// generation prompt. Where transformers itself renders a later prompt that
// does not extend the earlier one (Mistral moves the system prompt to the
// last user turn), no segment-wise rendering can match; the test then
// checks the first prompt only, and that this is the reason. Where
// transformers raises, ChatFormat must throw.
#include "policy/chat_format.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "policy/bpe_tokenizer.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using Json = nlohmann::ordered_json;

const std::string kTemplateDir =
    std::string(CLINRL_SOURCE_DIR) + "/tests/policy/chat_templates";
const std::string kEpisodesPath = kTemplateDir + "/episodes.json";
const std::string kReferenceScript =
    std::string(CLINRL_SOURCE_DIR) +
    "/tests/policy/reference/chat_template_reference.py";

const Json& Spec() {
  static const Json spec = Json::parse(testing::ReadTextFile(kEpisodesPath));
  return spec;
}

// The published templates and clinrl's own, in one folder for the
// reference script.
const testing::TempDir& TemplateDir() {
  static const testing::TempDir dir = [] {
    testing::TempDir made;
    for (const auto& entry :
         std::filesystem::directory_iterator(kTemplateDir)) {
      if (entry.path().extension() == ".jinja") {
        std::filesystem::copy_file(
            entry.path(), made.path() + "/" + entry.path().filename().string());
      }
    }
    testing::WriteTextFile(made.path() + "/clinrl_chatml.jinja", ChatMlTemplate());
    return made;
  }();
  return dir;
}

struct Reference {
  bool raised = false;
  std::string error;
  std::vector<std::string> prompts;
};

// Runs the reference once; a missing Python or transformers fails every
// case, naming the command.
const std::map<std::string, Reference>& References(std::string* error) {
  static std::string run_error;
  static const std::map<std::string, Reference> references = [] {
    std::map<std::string, Reference> found;
    const std::string command =
        fmt::format("'{}' '{}' --episodes '{}' '{}'", CLINRL_PYTHON,
                    kReferenceScript, TemplateDir().path(), kEpisodesPath);
    const testing::CommandOutput run = testing::RunCaptured(command);
    if (run.status != 0) {
      run_error = fmt::format(
          "{} exited with {}: {}(CLINRL_PYTHON is the venv of launch/setup, "
          "which installs transformers)",
          command, run.status, run.err);
      return found;
    }
    std::istringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) {
      const Json record = Json::parse(line);
      Reference reference;
      reference.raised = record.contains("error");
      if (reference.raised) {
        reference.error = record["error"].get<std::string>();
      } else {
        reference.prompts =
            record["prompts"].get<std::vector<std::string>>();
      }
      found[record["template"].get<std::string>() + "/" +
            record["episode"].get<std::string>()] = reference;
    }
    return found;
  }();
  *error = run_error;
  return references;
}

// A byte-level tokenizer with the family's special tokens, in a folder whose
// tokenizer_config.json carries the template and its bos/eos tokens, loaded
// back as a model folder's tokenizer is.
std::unique_ptr<Tokenizer> FamilyTokenizer(const std::string& name,
                                           const testing::TempDir& dir) {
  const Json& tokens = Spec()["templates"][name];
  BpeTokenizer::FromByteMerges(
      {}, tokens["special_tokens"].get<std::vector<std::string>>())
      ->Save(dir.path());
  Json config = Json::parse(testing::ReadTextFile(dir.path() + "/tokenizer_config.json"));
  config["bos_token"] = tokens["bos_token"];
  config["eos_token"] = tokens["eos_token"];
  config["chat_template"] =
      testing::ReadTextFile(TemplateDir().path() + "/" + name + ".jinja");
  testing::WriteTextFile(dir.path() + "/tokenizer_config.json", config.dump(2));
  return LoadTokenizer(dir.path());
}

struct Case {
  std::string template_name;
  std::string episode;
};

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const auto& [name, tokens] : Spec()["templates"].items()) {
    for (const Json& episode : Spec()["episodes"]) {
      cases.push_back({name, episode["name"].get<std::string>()});
    }
  }
  return cases;
}

const Json& EpisodeNamed(const std::string& name) {
  for (const Json& episode : Spec()["episodes"]) {
    if (episode["name"] == name) return episode;
  }
  throw NotFound("episodes.json has no episode " + name);
}

// The text before each policy turn, built as the rollout builds it.
std::vector<std::string> SegmentedPrompts(const ChatFormat& format,
                                          const Json& episode) {
  const nlohmann::json tools =
      episode.contains("tools") ? nlohmann::json::parse(episode["tools"].dump())
                                : nlohmann::json::array();
  std::vector<std::string> prompts;
  std::string text;
  std::vector<ChatMessage> pending;
  for (const Json& message : episode["messages"]) {
    const std::string role = message["role"].get<std::string>();
    const std::string content = message["content"].get<std::string>();
    if (role != "assistant") {
      pending.push_back({role, content});
      continue;
    }
    text += prompts.empty() ? format.Opening(pending, tools)
                            : format.Continuation(pending, tools);
    pending.clear();
    prompts.push_back(text);
    text += content + format.TurnClose();
  }
  return prompts;
}

class ChatFormatParityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ChatFormatParityTest, EpisodeSegmentsRenderAsTransformersDoes) {
  const Case& test_case = GetParam();
  std::string error;
  const auto& references = References(&error);
  ASSERT_TRUE(error.empty()) << error;
  const auto found =
      references.find(test_case.template_name + "/" + test_case.episode);
  ASSERT_NE(found, references.end()) << "the reference printed no record";
  const Reference& reference = found->second;

  testing::TempDir dir;
  const auto tokenizer = FamilyTokenizer(test_case.template_name, dir);
  const ChatFormat format(*tokenizer);
  EXPECT_EQ(format.is_builtin(), test_case.template_name == "clinrl_chatml");
  const Json& episode = EpisodeNamed(test_case.episode);
  if (reference.raised) {
    // For the same reason: the template's own message.
    const std::string reason =
        reference.error.substr(reference.error.find(": ") + 2);
    try {
      SegmentedPrompts(format, episode);
      FAIL() << "transformers raised: " << reference.error;
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos)
          << e.what() << "\ntransformers raised: " << reference.error;
    }
    return;
  }
  const std::vector<std::string> prompts = SegmentedPrompts(format, episode);
  ASSERT_EQ(prompts.size(), reference.prompts.size());
  ASSERT_EQ(prompts[0], reference.prompts[0]) << "the opening segment";

  // Does transformers' own prompt before each turn extend the previous
  // prompt and the turn's content? Only then can segments match it.
  std::vector<std::string> contents;
  for (const Json& m : episode["messages"]) {
    if (m["role"] == "assistant") contents.push_back(m["content"]);
  }
  bool extends = true;
  for (size_t k = 1; k < prompts.size(); ++k) {
    const std::string before = reference.prompts[k - 1] + contents[k - 1];
    extends = extends &&
              reference.prompts[k].compare(0, before.size(), before) == 0;
  }
  if (!extends) {
    EXPECT_EQ(test_case.template_name, "mistral_nemo_instruct")
        << "only Mistral's template is known to re-render earlier turns";
    return;
  }
  for (size_t k = 0; k < prompts.size(); ++k) {
    EXPECT_EQ(prompts[k], reference.prompts[k]) << "before policy turn " << k;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Templates, ChatFormatParityTest, ::testing::ValuesIn(AllCases()),
    [](const ::testing::TestParamInfo<Case>& info) {
      std::string name =
          info.param.template_name + "_" + info.param.episode;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

// What ends a policy turn comes from the template: the token the sampler
// stops on and the text the sequence closes the turn with.
TEST(ChatFormatTest, TurnCloseAndStopIdsComeFromTheTemplate) {
  const std::map<std::string, std::string> closes = {
      {"qwen2.5_instruct", "<|im_end|>\n"},
      {"qwen3", "<|im_end|>\n"},
      {"llama3.2_instruct", "<|eot_id|>"},
      {"gemma2_it", "<end_of_turn>\n"},
      {"mistral_nemo_instruct", "</s>"},
      {"phi3.5_mini_instruct", "<|end|>\n"},
      {"clinrl_chatml", "<|im_end|>\n"}};
  for (const auto& [name, close] : closes) {
    testing::TempDir dir;
    const auto tokenizer = FamilyTokenizer(name, dir);
    const ChatFormat format(*tokenizer);
    EXPECT_EQ(format.TurnClose(), close) << name;
    const std::vector<int64_t> close_ids = tokenizer->Encode(close);
    EXPECT_EQ(format.EndOfTurnId(), close_ids.front()) << name;
    const auto stops = format.StopIds();
    EXPECT_NE(std::find(stops.begin(), stops.end(), format.EndOfTurnId()),
              stops.end())
        << name;
  }
}

// Episodes render the same whatever day it is: a template that reads the
// date (Llama 3.2 asks strftime_now) gets the pinned one.
TEST(ChatFormatTest, EpisodesPinTheDateButPromptsDoNot) {
  testing::TempDir dir;
  const auto tokenizer = FamilyTokenizer("llama3.2_instruct", dir);
  const ChatFormat format(*tokenizer);
  const std::string opening = format.Opening({{"user", "Hi"}}, nullptr);
  EXPECT_NE(opening.find("Today Date: 26 Jul 2024"), std::string::npos)
      << opening;
  const std::string prompt = format.Prompt(
      Json::array({{{"role", "user"}, {"content", "Hi"}}}), nullptr);
  EXPECT_EQ(prompt.find("26 Jul 2024"), std::string::npos) << prompt;
}

// A folder without a template, or with the ChatML one clinrl wrote before
// it rendered tools, gets the built-in format; a template that does not
// parse is refused naming its file.
TEST(ChatFormatTest, BuiltInAndBrokenTemplates) {
  testing::TempDir dir;
  BpeTokenizer::FromByteMerges({}, DefaultSpecialTokens())->Save(dir.path());
  Json config = Json::parse(testing::ReadTextFile(dir.path() + "/tokenizer_config.json"));
  config["chat_template"] = LegacyChatMlTemplate();
  testing::WriteTextFile(dir.path() + "/tokenizer_config.json", config.dump(2));
  EXPECT_TRUE(ChatFormat(*LoadTokenizer(dir.path())).is_builtin());
  config.erase("chat_template");
  testing::WriteTextFile(dir.path() + "/tokenizer_config.json", config.dump(2));
  EXPECT_TRUE(ChatFormat(*LoadTokenizer(dir.path())).is_builtin());

  // chat_template.jinja wins over the config, as in transformers.
  testing::WriteTextFile(dir.path() + "/chat_template.jinja", "{% for m in messages %}");
  try {
    ChatFormat format(*LoadTokenizer(dir.path()));
    FAIL() << "a template that does not parse was accepted";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("chat_template.jinja"),
              std::string::npos)
        << e.what();
  }
  config["chat_template"] = 7;
  testing::WriteTextFile(dir.path() + "/tokenizer_config.json", config.dump(2));
  std::filesystem::remove(dir.path() + "/chat_template.jinja");
  try {
    LoadTokenizer(dir.path());
    FAIL() << "a chat_template of 7 was accepted";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("chat_template"), std::string::npos)
        << e.what();
  }
}

// Saving a loaded tokenizer keeps its template: a Hugging Face checkpoint
// goes out with the template it came in with.
TEST(ChatFormatTest, SavedFolderKeepsTheTemplate) {
  testing::TempDir in;
  testing::TempDir out;
  const auto tokenizer = FamilyTokenizer("llama3.2_instruct", in);
  testing::WriteTextFile(in.path() + "/chat_template.jinja",
            testing::ReadTextFile(kTemplateDir + "/qwen3.jinja"));
  const auto reloaded = LoadTokenizer(in.path());
  reloaded->Save(out.path());
  const auto saved = LoadTokenizer(out.path());
  EXPECT_EQ(saved->chat_template(), testing::ReadTextFile(kTemplateDir + "/qwen3.jinja"));
  EXPECT_EQ(saved->chat_template_origin(), "chat_template.jinja");
}


// `clinrl serve` prompts: a folder's own template, with its special tokens
// as variables and the request's tools; an eos_token that is not one of the
// tokenizer's default stops still ends an answer.
const Json kServeMessages = Json::parse(
    R"([{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "BP?"}])");

std::unique_ptr<Tokenizer> ByteTokenizerWith(const testing::TempDir& dir,
                                             const Json& config_entries) {
  BpeTokenizer::FromByteMerges({}, DefaultSpecialTokens())->Save(dir.path());
  Json config = Json::parse(testing::ReadTextFile(dir.path() + "/tokenizer_config.json"));
  config.erase("chat_template");
  for (const auto& [key, value] : config_entries.items()) config[key] = value;
  testing::WriteTextFile(dir.path() + "/tokenizer_config.json", config.dump(2));
  return LoadTokenizer(dir.path());
}

TEST(ChatFormatPromptTest, UsesTheFoldersTemplateWithItsTokensAndTools) {
  testing::TempDir dir;
  const auto tokenizer = ByteTokenizerWith(
      dir, {{"bos_token", "<s>"},
            {"eos_token", {{"content", "<|im_start|>"}}},
            {"chat_template",
             "{{ bos_token }}{% if tools %}[{{ tools | length }} tools: "
             "{{ tools[0].function.name }}]{% endif %}{% for m in messages %}"
             "{{ m.role }}={{ m.content }};{% endfor %}"
             "{% if add_generation_prompt %}assistant={% endif %}"}});
  const ChatFormat format(*tokenizer);
  EXPECT_EQ(format.source(), "tokenizer_config.json");
  EXPECT_EQ(format.Prompt(kServeMessages, nullptr),
            "<s>system=Be brief.;user=BP?;assistant=");
  const Json tools = Json::parse(
      R"([{"type": "function", "function": {"name": "get_vitals"}}])");
  EXPECT_EQ(format.Prompt(kServeMessages, tools),
            "<s>[1 tools: get_vitals]system=Be brief.;user=BP?;assistant=");
  const auto eos = tokenizer->TokenId("<|im_start|>");
  ASSERT_TRUE(eos.has_value());
  const auto stops = format.StopIds();
  EXPECT_NE(std::find(stops.begin(), stops.end(), *eos), stops.end());
  // Turns end in plain text (";"), so the eos token ends them.
  EXPECT_EQ(format.TurnClose(), ";");
  EXPECT_EQ(format.EndOfTurnId(), *eos);
}

// The built-in format prompts as training renders: ChatML, and with tools
// Qwen2.5's tools block; an assistant's tool_calls and the tool results are
// shown as Qwen2.5 shows them, and text parts are joined.
TEST(ChatFormatPromptTest, BuiltInPromptsAsTrainingRenders) {
  testing::TempDir dir;
  const auto tokenizer = ByteTokenizerWith(dir, Json::object());
  const ChatFormat format(*tokenizer);
  EXPECT_TRUE(format.is_builtin());
  EXPECT_EQ(format.Prompt(kServeMessages, nullptr),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nBP?"
            "<|im_end|>\n<|im_start|>assistant\n");
  // Keys sorted, as env tools reach the rollout; a request's tools keep
  // the client's order, as in transformers.
  const Json tools = Json::parse(
      R"([{"function": {"description": "Vitals.", "name": "get_vitals",
           "parameters": {"properties": {}, "type": "object"}},
           "type": "function"}])");
  EXPECT_EQ(format.Prompt(kServeMessages, tools),
            tokenizer->ApplyChatTemplate(
                {{"system", "Be brief."}, {"user", "BP?"}}, true,
                nlohmann::json::parse(tools.dump())));
  const Json history = Json::parse(R"([
      {"role": "user", "content": [{"type": "text", "text": "B"},
                                   {"type": "text", "text": "P?"}]},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
        "type": "function", "function": {"name": "get_vitals",
        "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "120/80"}])");
  const std::string prompt = format.Prompt(history, tools);
  EXPECT_NE(prompt.find("<|im_start|>user\nBP?<|im_end|>"), std::string::npos)
      << prompt;
  EXPECT_NE(prompt.find("<|im_start|>assistant\n<tool_call>\n{\"name\": "
                        "\"get_vitals\", \"arguments\": {}}\n</tool_call>"
                        "<|im_end|>\n<|im_start|>user\n<tool_response>\n"
                        "120/80\n</tool_response><|im_end|>\n"),
            std::string::npos)
      << prompt;
}

// Without tools (tool_choice "none"), a history with an assistant's
// tool_calls and null content still prompts: the content renders as
// nothing, as ApplyChatTemplate renders it.
TEST(ChatFormatPromptTest, BuiltInPromptsToolCallHistoryWithoutTools) {
  testing::TempDir dir;
  const ChatFormat format(*ByteTokenizerWith(dir, Json::object()));
  const Json history = Json::parse(R"([
      {"role": "user", "content": "BP?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1",
        "type": "function", "function": {"name": "get_vitals",
        "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "120/80"}])");
  EXPECT_EQ(format.Prompt(history, nullptr),
            "<|im_start|>user\nBP?<|im_end|>\n<|im_start|>assistant\n"
            "<|im_end|>\n<|im_start|>tool\n120/80<|im_end|>\n"
            "<|im_start|>assistant\n");
}

// A base model's tokenizer without ChatML tokens and without a template
// still prompts (serve, generate); episodes, which need an end of turn,
// are refused saying why.
TEST(ChatFormatPromptTest, BuiltInFormatWithoutChatMlTokensPromptsOnly) {
  testing::TempDir dir;
  BpeTokenizer::FromByteMerges({}, {"<s>", "</s>"})->Save(dir.path());
  Json config = Json::parse(
      testing::ReadTextFile(dir.path() + "/tokenizer_config.json"));
  config.erase("chat_template");
  testing::WriteTextFile(dir.path() + "/tokenizer_config.json", config.dump());
  const auto tokenizer = LoadTokenizer(dir.path());
  const ChatFormat format(*tokenizer);
  EXPECT_NO_THROW(format.Prompt(kServeMessages, nullptr));
  EXPECT_NO_THROW(format.StopIds());
  try {
    format.EndOfTurnId();
    FAIL() << "an end of turn was made up";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("<|im_end|>"), std::string::npos)
        << e.what();
  }
}

TEST(ChatFormatPromptTest, ReadsChatTemplateJinja) {
  testing::TempDir dir;
  const auto made = ByteTokenizerWith(dir, Json::object());
  testing::WriteTextFile(dir.path() + "/chat_template.jinja",
            "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}");
  const ChatFormat format(*LoadTokenizer(dir.path()));
  EXPECT_EQ(format.source(), "chat_template.jinja");
  EXPECT_EQ(format.Prompt(kServeMessages, nullptr), "<system>Be brief.<user>BP?");
}

// A template that raises still loads: prompts name "messages" with the
// template's message, and episodes, which need to know how a turn ends,
// are refused saying why.
TEST(ChatFormatPromptTest, TemplateRefusalsNameMessages) {
  testing::TempDir dir;
  const auto tokenizer = ByteTokenizerWith(
      dir, {{"chat_template", "{{ raise_exception('roles must alternate') }}"}});
  const ChatFormat format(*tokenizer);
  try {
    format.Prompt(kServeMessages, nullptr);
    FAIL() << "the template's exception was lost";
  } catch (const BadRequest& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("messages: ", 0), 0u) << message;
    EXPECT_NE(message.find("roles must alternate"), std::string::npos)
        << message;
  }
  try {
    format.Opening({{"user", "Hi"}}, nullptr);
    FAIL() << "an episode was rendered with a template that cannot end a turn";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("cannot tell how the chat template "
                                         "ends an assistant turn"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::policy
