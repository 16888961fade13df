// Tool-call parsing, checking and formatting (envs/tool_calls.h): the
// Qwen-family format a model writes, and the errors that go back to it.
#include "envs/tool_calls.h"

#include <gtest/gtest.h>

#include "envs/env.h"

namespace clinrl::envs {
namespace {

using nlohmann::json;

json AskTools() {
  return json::array(
      {FunctionTool("ask", "Ask a question.",
                    {{"question", {{"type", "string"}}},
                     {"urgent", {{"type", "boolean"}}}},
                    {"question"}),
       FunctionTool(
           "examine", "Examine.",
           {{"system",
             {{"type", "string"}, {"enum", json::array({"heart", "lungs"})}}},
            {"repeat", {{"type", "integer"}}}},
           {"system"})});
}

TEST(ToolCallsTest, ParsesOneCall) {
  const auto parsed = ParseToolCalls(
      "Let me ask.\n<tool_call>\n{\"name\": \"ask\", \"arguments\": "
      "{\"question\": \"any fever?\"}}\n</tool_call>");
  ASSERT_EQ(parsed.error, "");
  ASSERT_EQ(parsed.calls.size(), 1u);
  EXPECT_EQ(parsed.calls[0].name, "ask");
  EXPECT_EQ(parsed.calls[0].arguments, json({{"question", "any fever?"}}));
}

TEST(ToolCallsTest, ParsesSeveralCallsInOrder) {
  const auto parsed = ParseToolCalls(
      "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call> and "
      "<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": 1}}</tool_call>");
  ASSERT_EQ(parsed.error, "");
  ASSERT_EQ(parsed.calls.size(), 2u);
  EXPECT_EQ(parsed.calls[0].name, "a");
  EXPECT_EQ(parsed.calls[1].name, "b");
  EXPECT_EQ(parsed.calls[1].arguments["x"], 1);
}

TEST(ToolCallsTest, TextWithoutCallsHasNone) {
  const auto parsed = ParseToolCalls("ASK: chest pain");
  EXPECT_EQ(parsed.error, "");
  EXPECT_TRUE(parsed.calls.empty());
}

TEST(ToolCallsTest, MalformedJsonNamesTheBlock) {
  const auto parsed = ParseToolCalls(
      "<tool_call>{\"name\": \"a\"}</tool_call><tool_call>{\"name\": "
      "ask}</tool_call>");
  EXPECT_NE(parsed.error.find("tool call 2: invalid JSON"), std::string::npos)
      << parsed.error;
  EXPECT_EQ(parsed.error.find("json.exception"), std::string::npos)
      << parsed.error;
}

TEST(ToolCallsTest, MissingNameOrClosingTagIsAnError) {
  EXPECT_EQ(ParseToolCalls("<tool_call>{\"arguments\": {}}</tool_call>").error,
            "tool call 1: missing \"name\" (the tool's name as a string)");
  EXPECT_EQ(ParseToolCalls("<tool_call>{\"name\": \"a\"}").error,
            "tool call 1: <tool_call> without a closing </tool_call>");
  EXPECT_EQ(ParseToolCalls("<tool_call>[1]</tool_call>").error,
            "tool call 1: expected a JSON object {\"name\": ..., "
            "\"arguments\": {...}}, got array");
  EXPECT_EQ(ParseToolCalls("<tool_call>{\"name\": \"a\", \"arguments\": 3}"
                           "</tool_call>")
                .error,
            "tool call 1: \"arguments\": expected a JSON object, got number");
}

TEST(ToolCallsTest, ArgumentsMayBeAJsonString) {
  const auto parsed = ParseToolCalls(
      "<tool_call>{\"name\": \"ask\", \"arguments\": \"{\\\"question\\\": "
      "\\\"cough?\\\"}\"}</tool_call>");
  ASSERT_EQ(parsed.error, "");
  EXPECT_EQ(parsed.calls[0].arguments, json({{"question", "cough?"}}));
  EXPECT_NE(ParseToolCalls("<tool_call>{\"name\": \"ask\", \"arguments\": "
                           "\"{oops\"}</tool_call>")
                .error.find("\"arguments\" is a string that is not valid JSON"),
            std::string::npos);
}

// A Llama-family policy's call (core/tool_call_text.h) reaches the env's
// check as a Qwen block does.
TEST(ToolCallsTest, LlamaJsonCallIsCheckedLikeABlock) {
  const auto good = ParseToolCalls(
      "<|python_tag|>{\"name\": \"examine\", \"parameters\": {\"system\": "
      "\"heart\"}}");
  ASSERT_EQ(good.error, "");
  ASSERT_EQ(good.calls.size(), 1u);
  EXPECT_EQ(CheckToolCall(good.calls[0], AskTools()), "");
  const auto bad = ParseToolCalls(
      "{\"name\": \"examine\", \"parameters\": {\"system\": \"liver\"}}");
  ASSERT_EQ(bad.calls.size(), 1u);
  EXPECT_NE(CheckToolCall(bad.calls[0], AskTools()).find("expected one of"),
            std::string::npos);
}

TEST(ToolCallsTest, CheckAcceptsAWellFormedCall) {
  EXPECT_EQ(CheckToolCall({"ask", {{"question", "fever?"}}}, AskTools()), "");
  EXPECT_EQ(CheckToolCall({"examine", {{"system", "heart"}, {"repeat", 2.0}}},
                          AskTools()),
            "");
}

TEST(ToolCallsTest, CheckNamesWhatIsWrong) {
  EXPECT_EQ(CheckToolCall({"order", {}}, AskTools()),
            "unknown tool 'order'; tools: ask, examine");
  EXPECT_EQ(CheckToolCall({"ask", json::object()}, AskTools()),
            "tool 'ask': missing required argument 'question'");
  EXPECT_EQ(CheckToolCall({"ask", {{"question", 3}}}, AskTools()),
            "tool 'ask': argument 'question' must be of type string, got "
            "number (3)");
  EXPECT_EQ(CheckToolCall({"ask", {{"question", "q"}, {"urgent", "yes"}}},
                          AskTools()),
            "tool 'ask': argument 'urgent' must be of type boolean, got "
            "string (\"yes\")");
  EXPECT_EQ(CheckToolCall({"examine", {{"system", "liver"}}}, AskTools()),
            "tool 'examine': argument 'system' got \"liver\", expected one "
            "of [\"heart\",\"lungs\"]");
  EXPECT_EQ(CheckToolCall({"examine", {{"system", "heart"}, {"repeat", 1.5}}},
                          AskTools()),
            "tool 'examine': argument 'repeat' must be of type integer, got "
            "number (1.5)");
  EXPECT_EQ(
      CheckToolCall({"ask", {{"question", "q"}, {"why", "x"}}}, AskTools()),
      "tool 'ask': unknown argument 'why'; arguments: question, urgent");
}

TEST(ToolCallsTest, FormatRoundTripsThroughParse) {
  const ToolCall call{
      "ask", {{"question", "Douleur thoracique \"aiguë\"?"}, {"urgent", true}}};
  const std::string text = FormatToolCall(call);
  // Qwen2.5's template writes arguments with json.dumps: ", " and ": ".
  EXPECT_EQ(text,
            "<tool_call>\n{\"name\": \"ask\", \"arguments\": {\"question\": "
            "\"Douleur thoracique \\\"aiguë\\\"?\", \"urgent\": "
            "true}}\n</tool_call>");
  const auto parsed = ParseToolCalls(text);
  ASSERT_EQ(parsed.error, "");
  ASSERT_EQ(parsed.calls.size(), 1u);
  EXPECT_EQ(parsed.calls[0].name, call.name);
  EXPECT_EQ(parsed.calls[0].arguments, call.arguments);
}

TEST(ToolCallsTest, ValidateToolSchemasNamesThePath) {
  EXPECT_EQ(ValidateToolSchemas(AskTools()), "");
  json tools = AskTools();
  tools[1]["function"]["parameters"]["required"] = {"organ"};
  EXPECT_EQ(ValidateToolSchemas(tools),
            "tools[1].function.parameters.required[0]: got \"organ\", "
            "expected a property name");
  tools = AskTools();
  tools[0]["function"]["parameters"]["properties"]["question"]["type"] = "text";
  EXPECT_NE(ValidateToolSchemas(tools).find(
                "tools[0].function.parameters.properties.question.type: got "
                "\"text\""),
            std::string::npos);
  tools = AskTools();
  tools[0]["type"] = "tool";
  EXPECT_EQ(ValidateToolSchemas(tools),
            "tools[0].type: expected \"function\", got \"tool\"");
  tools = AskTools();
  tools[1]["function"]["name"] = "ask";
  EXPECT_EQ(ValidateToolSchemas(tools),
            "tools[1].function.name: 'ask' is declared twice");
  EXPECT_NE(ValidateToolSchemas(json::object()).find("expected an array"),
            std::string::npos);
}

TEST(ToolCallsTest, SpecToolsRoundTripAndANonArrayIsNamed) {
  EnvSpec spec;
  spec.name = "t";
  spec.version = "1";
  spec.splits = {{"test", 1}};
  spec.tools = AskTools();
  EXPECT_EQ(EnvSpecFromJson(ToJson(spec)).tools, spec.tools);
  json j = ToJson(spec);
  j.erase("tools");
  EXPECT_EQ(EnvSpecFromJson(j).tools, json::array());
  j["tools"] = {{"name", "ask"}};
  try {
    EnvSpecFromJson(j);
    FAIL() << "a non-array tools was accepted";
  } catch (const std::exception& e) {
    EXPECT_EQ(std::string(e.what()),
              "spec.tools: expected an array of OpenAI function schemas, got "
              "object");
  }
}

}  // namespace
}  // namespace clinrl::envs
