// Chat templates rendered by policy::ChatTemplate against transformers' own
// apply_chat_template (tests/policy/reference/chat_template_reference.py,
// run once with the venv's Python): every published template under
// tests/policy/chat_templates/ with every conversation of
// conversations.json must come out byte for byte the same, and where
// transformers raises (a template refusing a system role or broken
// alternation) clinrl must throw BadRequest with the same message. The
// interpreter's corners (whitespace control, loop variables, Python
// printing and arithmetic, filters, tests, methods) are checked one snippet
// at a time (snippets.json) against the Jinja environment transformers
// compiles templates in. Also the interpreter's own errors: unsupported
// syntax names line, column and the construct at load time.
#include "policy/chat_template.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "core/error.h"
#include "policy/tokenizer.h"
#include "tests/policy/test_util.h"

namespace clinrl::policy {
namespace {

using Json = nlohmann::ordered_json;

const std::string kTemplateDir =
    std::string(CLINRL_SOURCE_DIR) + "/tests/policy/chat_templates";
const std::string kConversationsPath = kTemplateDir + "/conversations.json";
const std::string kReferenceScript =
    std::string(CLINRL_SOURCE_DIR) +
    "/tests/policy/reference/chat_template_reference.py";

const Json& Spec() {
  static const Json spec = Json::parse(testing::ReadTextFile(kConversationsPath));
  return spec;
}

// What transformers rendered (or raised) for one template and conversation.
struct Expected {
  bool raised = false;
  std::string text;  // the rendering, or the exception's message
};

// Runs the reference once for all cases; a missing Python, transformers or
// a failing script fails every case that needs it, naming the command.
const std::map<std::string, Expected>& References(std::string* error) {
  static std::string run_error;
  static const std::map<std::string, Expected> references = [] {
    std::map<std::string, Expected> found;
    const std::string command =
        fmt::format("'{}' '{}' '{}' '{}'", CLINRL_PYTHON, kReferenceScript,
                    kTemplateDir, kConversationsPath);
    const testing::CommandOutput run = testing::RunCaptured(command);
    if (run.status != 0) {
      run_error = fmt::format(
          "{} exited with {}: {}(CLINRL_PYTHON is the venv of launch/setup, "
          "which installs transformers, tokenizers and jinja2)",
          command, run.status, run.err);
      return found;
    }
    std::istringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) {
      Json record = Json::parse(line);
      Expected expected;
      expected.raised = record.contains("error");
      expected.text = expected.raised ? record["error"].get<std::string>()
                                      : record["output"].get<std::string>();
      found[record["template"].get<std::string>() + "/" +
            record["conversation"].get<std::string>()] = expected;
    }
    return found;
  }();
  *error = run_error;
  return references;
}

Json ContextFor(const Json& tokens, const Json& conversation) {
  Json variables = tokens;
  if (conversation.contains("kwargs")) {
    for (const auto& [key, value] : conversation["kwargs"].items()) {
      variables[key] = value;
    }
  }
  return ChatTemplateContext(
      conversation["messages"],
      conversation.contains("tools") ? conversation["tools"] : Json(nullptr),
      conversation["add_generation_prompt"].get<bool>(), variables);
}

struct Case {
  std::string template_name;
  std::string conversation;
};

std::vector<Case> AllCases() {
  std::vector<Case> cases;
  for (const auto& [name, tokens] : Spec()["templates"].items()) {
    for (const Json& conversation : Spec()["conversations"]) {
      cases.push_back({name, conversation["name"].get<std::string>()});
    }
  }
  return cases;
}

class ChatTemplateParityTest : public ::testing::TestWithParam<Case> {};

TEST_P(ChatTemplateParityTest, RendersAsTransformersDoes) {
  const Case& test_case = GetParam();
  std::string error;
  const auto& references = References(&error);
  ASSERT_TRUE(error.empty()) << error;
  auto found =
      references.find(test_case.template_name + "/" + test_case.conversation);
  ASSERT_NE(found, references.end()) << "the reference printed no record";
  const Expected& expected = found->second;

  ChatTemplate chat_template(
      testing::ReadTextFile(kTemplateDir + "/" + test_case.template_name + ".jinja"));
  Json conversation;
  for (const Json& candidate : Spec()["conversations"]) {
    if (candidate["name"] == test_case.conversation) conversation = candidate;
  }
  Json context =
      ContextFor(Spec()["templates"][test_case.template_name], conversation);
  if (expected.raised) {
    try {
      std::string rendered = chat_template.Render(context);
      FAIL() << "transformers raised '" << expected.text
             << "' but clinrl rendered:\n"
             << rendered;
    } catch (const BadRequest& error) {
      // raise_exception's message must surface; Jinja's own UndefinedError
      // messages are only checked to be errors.
      std::string message = expected.text.substr(expected.text.find(": ") + 2);
      if (expected.text.rfind("TemplateError", 0) == 0) {
        EXPECT_NE(std::string(error.what()).find(message), std::string::npos)
            << error.what();
      }
    }
    return;
  }
  EXPECT_EQ(chat_template.Render(context), expected.text);
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.template_name + "_" + info.param.conversation;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(PublishedTemplates, ChatTemplateParityTest,
                         ::testing::ValuesIn(AllCases()), CaseName);

// The interpreter's corners one at a time (snippets.json), against the
// environment transformers compiles chat templates in.
const Json& SnippetReferences(std::string* error) {
  static std::string run_error;
  static const Json references = [] {
    Json found = Json::object();
    const std::string command =
        fmt::format("'{}' '{}' --snippets '{}'", CLINRL_PYTHON,
                    kReferenceScript, kTemplateDir + "/snippets.json");
    const testing::CommandOutput run = testing::RunCaptured(command);
    if (run.status != 0) {
      run_error =
          fmt::format("{} exited with {}: {}", command, run.status, run.err);
      return found;
    }
    std::istringstream lines(run.out);
    for (std::string line; std::getline(lines, line);) {
      Json record = Json::parse(line);
      found[record["snippet"].get<std::string>()] = record;
    }
    return found;
  }();
  *error = run_error;
  return references;
}

std::vector<Json> AllSnippets() {
  Json snippets = Json::parse(testing::ReadTextFile(kTemplateDir + "/snippets.json"));
  return std::vector<Json>(snippets.begin(), snippets.end());
}

class ChatTemplateSnippetTest : public ::testing::TestWithParam<Json> {};

TEST_P(ChatTemplateSnippetTest, RendersAsJinjaDoes) {
  const Json& snippet = GetParam();
  std::string error;
  const Json& references = SnippetReferences(&error);
  ASSERT_TRUE(error.empty()) << error;
  const std::string name = snippet["name"].get<std::string>();
  ASSERT_TRUE(references.contains(name)) << "the reference printed no record";
  const Json& expected = references[name];
  ASSERT_TRUE(expected.contains("output")) << expected.dump();
  EXPECT_EQ(ChatTemplate(snippet["template"].get<std::string>())
                .Render(snippet["context"]),
            expected["output"].get<std::string>())
      << snippet["template"].get<std::string>();
}

INSTANTIATE_TEST_SUITE_P(Snippets, ChatTemplateSnippetTest,
                         ::testing::ValuesIn(AllSnippets()),
                         [](const ::testing::TestParamInfo<Json>& info) {
                           return info.param["name"].get<std::string>();
                         });

std::string ErrorOf(const std::string& source, const Json& context) {
  try {
    ChatTemplate(source).Render(context);
  } catch (const BadRequest& error) {
    return error.what();
  }
  return "no error";
}

TEST(ChatTemplateTest, UnsupportedTagNamesLineColumnAndTag) {
  std::string error =
      ErrorOf("{{ bos_token }}\n  {% include 'other.jinja' %}", Json::object());
  EXPECT_NE(error.find("line 2 column 6"), std::string::npos) << error;
  EXPECT_NE(error.find("unsupported tag '{% include %}'"), std::string::npos)
      << error;
}

TEST(ChatTemplateTest, UnsupportedFilterNamesItsPosition) {
  std::string error = ErrorOf("{{ x | wordwrap(5) }}", Json{{"x", "a"}});
  EXPECT_NE(error.find("line 1 column 6"), std::string::npos) << error;
  EXPECT_NE(error.find("unsupported filter 'wordwrap'"), std::string::npos)
      << error;
}

TEST(ChatTemplateTest, UnclosedBlockSaysWhatIsMissing) {
  std::string error = ErrorOf("{% for m in messages %}{{ m }}", Json::object());
  EXPECT_NE(error.find("expected '{% endfor %}'"), std::string::npos) << error;
}

TEST(ChatTemplateTest, RaiseExceptionMessageSurfaces) {
  std::string error = ErrorOf(
      "{% if messages[0].role == 'system' %}"
      "{{ raise_exception('System role not supported') }}{% endif %}",
      Json{{"messages", Json::array({{{"role", "system"}}})}});
  EXPECT_NE(error.find("raise_exception: System role not supported"),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("line 1 column 41"), std::string::npos) << error;
}

TEST(ChatTemplateTest, UndefinedRendersEmptyButCannotBeUsedFurther) {
  EXPECT_EQ(ChatTemplate("[{{ missing }}]{{ missing is defined }}")
                .Render(Json::object()),
            "[]False");
  std::string error = ErrorOf("{{ missing.role }}", Json::object());
  EXPECT_NE(error.find("'missing' is undefined"), std::string::npos) << error;
}

TEST(ChatTemplateTest, ContextDropsNullKeysAndAliasesReasoning) {
  Json messages = Json::parse(
      R"([{"role": "assistant", "content": null, "reasoning": "r"}])");
  Json context =
      ChatTemplateContext(messages, nullptr, true, Json{{"bos_token", "<s>"}});
  EXPECT_EQ(context["messages"].dump(),
            R"([{"thinking":"r","role":"assistant","reasoning":"r",)"
            R"("reasoning_content":"r"}])");
  EXPECT_TRUE(context["tools"].is_null());
  EXPECT_EQ(context["bos_token"], "<s>");
}

TEST(ChatTemplateTest, StrftimeNowFormatsToday) {
  std::string year =
      ChatTemplate("{{ strftime_now('%Y') }}").Render(Json::object());
  ASSERT_EQ(year.size(), 4u) << year;
  EXPECT_GE(std::stoi(year), 2024);
}

TEST(ChatTemplateTest, PythonSemanticsOfValues) {
  Json context = {{"d", {{"b", 1}, {"a", {1.5, nullptr, true}}}}};
  EXPECT_EQ(ChatTemplate("{{ d }}|{{ d | tojson }}|{{ d | tojson(indent=2) }}")
                .Render(context),
            "{'b': 1, 'a': [1.5, None, True]}|{\"b\": 1, \"a\": [1.5, null, "
            "true]}|{\n  \"b\": 1,\n  \"a\": [\n    1.5,\n    null,\n    "
            "true\n  ]\n}");
  EXPECT_EQ(ChatTemplate("{{ 7 / 2 }} {{ 7 // 2 }} {{ -7 % 3 }} {{ 'ab' * 2 }} "
                         "{{ 'héllo'[1:3] }} {{ [1,2,3][::-1] }}")
                .Render(Json::object()),
            "3.5 3 2 abab él [3, 2, 1]");
}

// Tokenizer::ApplyChatTemplate with tools (what the rollout renders an env's
// tools with) against transformers' apply_chat_template on Qwen2.5's
// published template: a system prompt, tools, assistant tool calls (as the
// text a model samples, and as OpenAI tool_calls, which the template writes
// the same way), consecutive tool results; and without a system message.
TEST(ChatTemplateTest, TokenizerWithToolsRendersAsQwen25Does) {
  const nlohmann::json tools = nlohmann::json::parse(R"([
    {"type": "function", "function": {"name": "ask",
      "description": "Ask the patient a question (température, douleur).",
      "parameters": {"type": "object",
        "properties": {"question": {"type": "string"}},
        "required": ["question"], "additionalProperties": false}}},
    {"type": "function", "function": {"name": "examine",
      "description": "Examine a system.",
      "parameters": {"type": "object",
        "properties": {"system": {"type": "string",
                                  "enum": ["heart", "lungs"]},
                       "depth": {"type": "number", "minimum": 0.5}},
        "required": ["system"]}}}])");
  const std::string call_ask =
      "<tool_call>\n{\"name\": \"ask\", \"arguments\": {\"question\": "
      "\"fièvre?\"}}\n</tool_call>";
  const std::string call_exam =
      "<tool_call>\n{\"name\": \"examine\", \"arguments\": {\"system\": "
      "\"heart\"}}\n</tool_call>";
  const std::vector<ChatMessage> messages = {
      {"system", "You are a doctor."}, {"user", "I feel dizzy."},
      {"assistant", call_ask},         {"tool", "No fever."},
      {"tool", "Turn 1 of 10."},       {"assistant", call_exam},
      {"tool", "Heart: murmur."},
  };
  // transformers reads the conversations through Python's json, which keeps
  // nlohmann's (sorted) key order: the order the spec's tools travel in.
  nlohmann::json text_messages = nlohmann::json::array();
  for (const auto& m : messages) {
    text_messages.push_back({{"role", m.role}, {"content", m.content}});
  }
  nlohmann::json structured = text_messages;
  structured[2] = {
      {"role", "assistant"},
      {"content", ""},
      {"tool_calls",
       {{{"type", "function"},
         {"function",
          {{"name", "ask"}, {"arguments", {{"question", "fièvre?"}}}}}}}}};
  nlohmann::json no_system = text_messages;
  no_system.erase(no_system.begin());
  const nlohmann::json spec = {
      {"templates",
       {{"qwen2.5_instruct",
         {{"bos_token", "<|endoftext|>"}, {"eos_token", "<|im_end|>"}}}}},
      {"conversations",
       {{{"name", "text_calls"},
         {"messages", text_messages},
         {"tools", tools},
         {"add_generation_prompt", true}},
        {{"name", "structured_calls"},
         {"messages", structured},
         {"tools", tools},
         {"add_generation_prompt", true}},
        {{"name", "no_system"},
         {"messages", no_system},
         {"tools", tools},
         {"add_generation_prompt", false}}}}};
  testing::TempDir dir;
  const std::string conversations = dir.path() + "/conversations.json";
  std::ofstream(conversations) << spec.dump();
  const std::string command =
      fmt::format("'{}' '{}' '{}' '{}'", CLINRL_PYTHON, kReferenceScript,
                  kTemplateDir, conversations);
  const testing::CommandOutput run = testing::RunCaptured(command);
  ASSERT_EQ(run.status, 0) << command << ": " << run.err;
  std::map<std::string, std::string> rendered;
  std::istringstream lines(run.out);
  for (std::string line; std::getline(lines, line);) {
    const Json record = Json::parse(line);
    ASSERT_TRUE(record.contains("output")) << line;
    rendered[record["conversation"].get<std::string>()] = record["output"];
  }
  const auto tokenizer = LoadTokenizer("byte");
  const std::string whole = tokenizer->ApplyChatTemplate(messages, true, tools);
  EXPECT_EQ(whole, rendered["text_calls"]);
  EXPECT_EQ(whole, rendered["structured_calls"]);
  const std::vector<ChatMessage> rest(messages.begin() + 1, messages.end());
  EXPECT_EQ(tokenizer->ApplyChatTemplate(rest, false, tools),
            rendered["no_system"]);
  EXPECT_NE(whole.find("# Tools"), std::string::npos);
  // Segments (as the rollout renders them between policy turns) concatenate
  // to the whole conversation.
  const std::string segments =
      tokenizer->ApplyChatTemplate({messages[0], messages[1]}, true, tools) +
      call_ask + "<|im_end|>\n" +
      tokenizer->ApplyChatTemplate({messages[3], messages[4]}, true, tools,
                                   /*conversation_start=*/false) +
      call_exam + "<|im_end|>\n" +
      tokenizer->ApplyChatTemplate({messages[6]}, true, tools, false);
  EXPECT_EQ(segments, whole);
  // Without tools: plain ChatML, as before.
  EXPECT_EQ(tokenizer->ApplyChatTemplate(messages, true, Json::array()),
            tokenizer->ApplyChatTemplate(messages, true));
}

}  // namespace
}  // namespace clinrl::policy
