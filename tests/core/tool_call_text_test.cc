// The one reader of tool calls in text (core/tool_call_text.h): Qwen's
// <tool_call> blocks and Llama 3.x's JSON call, with the strict rules the
// envs, the `format` reward and the EHR grader share.
#include "core/tool_call_text.h"

#include <gtest/gtest.h>

namespace clinrl {
namespace {

using nlohmann::json;

TEST(ToolCallTextTest, ReadsQwenBlocksInOrderAndIgnoresTheTextAround) {
  const ParsedToolCalls parsed = ParseToolCalls(
      "Let me ask.\n<tool_call>\n{\"name\": \"ask\", \"arguments\": "
      "{\"question\": \"fever?\"}}\n</tool_call>\n<tool_call>{\"name\": "
      "\"finish\"}</tool_call> done");
  ASSERT_EQ(parsed.error, "");
  ASSERT_EQ(parsed.calls.size(), 2u);
  EXPECT_EQ(parsed.calls[0].name, "ask");
  EXPECT_EQ(parsed.calls[0].arguments, json({{"question", "fever?"}}));
  EXPECT_EQ(parsed.calls[1].name, "finish");
  EXPECT_EQ(parsed.calls[1].arguments, json::object());
}

TEST(ToolCallTextTest, ArgumentsStringMustHoldAnObject) {
  const ParsedToolCalls held = ParseToolCalls(
      "<tool_call>{\"name\": \"ask\", \"arguments\": \"{\\\"q\\\": "
      "1}\"}</tool_call>");
  ASSERT_EQ(held.error, "");
  EXPECT_EQ(held.calls[0].arguments, json({{"q", 1}}));

  const ParsedToolCalls not_json = ParseToolCalls(
      "<tool_call>{\"name\": \"ask\", \"arguments\": \"fever\"}</tool_call>");
  EXPECT_TRUE(not_json.calls.empty());
  EXPECT_NE(
      not_json.error.find(
          "tool call 1: \"arguments\" is a string that is not valid JSON"),
      std::string::npos)
      << not_json.error;

  const ParsedToolCalls array = ParseToolCalls(
      "<tool_call>{\"name\": \"ask\", \"arguments\": \"[1]\"}</tool_call>");
  EXPECT_EQ(array.error,
            "tool call 1: \"arguments\": expected a JSON object, got array");
}

TEST(ToolCallTextTest, MalformedBlocksNameTheBlockAndTheProblem) {
  EXPECT_EQ(ParseToolCalls("<tool_call>{\"name\": \"a\"}</tool_call>"
                           "<tool_call>{\"arguments\": {}}</tool_call>")
                .error,
            "tool call 2: missing \"name\" (the tool's name as a string)");
  EXPECT_EQ(ParseToolCalls("<tool_call>{\"name\": \"a\"}").error,
            "tool call 1: <tool_call> without a closing </tool_call>");
  EXPECT_EQ(ParseToolCalls("<tool_call>[1]</tool_call>").error,
            "tool call 1: expected a JSON object {\"name\": ..., "
            "\"arguments\": {...}}, got array");
  EXPECT_NE(ParseToolCalls("<tool_call>{bad}</tool_call>")
                .error.find("tool call 1: invalid JSON ("),
            std::string::npos);
}

// Llama 3.1/3.2's template: 'Respond in the format {"name": function name,
// "parameters": dictionary of argument name and its value}'.
TEST(ToolCallTextTest, LlamaJsonCallIsOneCall) {
  for (const std::string text :
       {"{\"name\": \"ask\", \"parameters\": {\"question\": \"fever?\"}}",
        "  \n{\"name\": \"ask\", \"parameters\": {\"question\": "
        "\"fever?\"}}\n",
        "<|python_tag|>{\"name\": \"ask\", \"parameters\": {\"question\": "
        "\"fever?\"}}",
        "{\"name\": \"ask\", \"arguments\": {\"question\": \"fever?\"}}"}) {
    const ParsedToolCalls parsed = ParseToolCalls(text);
    ASSERT_EQ(parsed.error, "") << text;
    ASSERT_EQ(parsed.calls.size(), 1u) << text;
    EXPECT_EQ(parsed.calls[0].name, "ask");
    EXPECT_EQ(parsed.calls[0].arguments, json({{"question", "fever?"}}));
  }
}

TEST(ToolCallTextTest, TextThatIsNotExactlyOneLlamaCallHasNoCall) {
  for (const std::string text :
       {"ASK: chest pain", "", "{\"answer\": 3}",
        "{\"name\": \"ask\"}",  // no parameters: a JSON answer, not a call
        "{\"name\": 5, \"parameters\": {}}",
        "Calling: {\"name\": \"ask\", \"parameters\": {}}",
        "{\"name\": \"ask\", \"parameters\": {}} and more",
        "{\"name\": \"a\", \"parameters\": {}}{\"name\": \"b\", "
        "\"parameters\": {}}"}) {
    const ParsedToolCalls parsed = ParseToolCalls(text);
    EXPECT_EQ(parsed.error, "") << text;
    EXPECT_TRUE(parsed.calls.empty()) << text;
  }
}

TEST(ToolCallTextTest, LlamaCallWithBadParametersNamesTheField) {
  EXPECT_EQ(ParseToolCalls("{\"name\": \"ask\", \"parameters\": 3}").error,
            "tool call 1: \"parameters\": expected a JSON object, got number");
  EXPECT_EQ(
      ParseToolCalls("{\"name\": \"ask\", \"parameters\": {}, \"arguments\": "
                     "{}}")
          .error,
      "tool call 1: both \"parameters\" and \"arguments\"; expected one of "
      "them");
}

TEST(ToolCallTextTest, FormatWritesQwensRenderingAndReadsBack) {
  const ToolCall call{"ask", {{"question", "douleur thoracique?"}, {"n", 2}}};
  const std::string text = FormatToolCall(call);
  EXPECT_EQ(text,
            "<tool_call>\n{\"name\": \"ask\", \"arguments\": {\"n\": 2, "
            "\"question\": \"douleur thoracique?\"}}\n</tool_call>");
  const ParsedToolCalls parsed = ParseToolCalls(text);
  ASSERT_EQ(parsed.calls.size(), 1u);
  EXPECT_EQ(parsed.calls[0].arguments, call.arguments);
}

}  // namespace
}  // namespace clinrl
