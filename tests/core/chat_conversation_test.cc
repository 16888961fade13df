// An episode with tools in OpenAI's conversation shape
// (core/chat_conversation.h) and the reply's tool_calls as the chat client
// reads them (core/chat_client.h).
#include "core/chat_conversation.h"

#include <gtest/gtest.h>

#include "core/chat_client.h"
#include "core/error.h"
#include "core/tool_call_text.h"

namespace clinrl {
namespace {

using nlohmann::json;

json ReplyWithCalls(json tool_calls, json content = nullptr) {
  return {{"choices",
           {{{"message",
              {{"role", "assistant"},
               {"content", std::move(content)},
               {"tool_calls", std::move(tool_calls)}}},
             {"finish_reason", "tool_calls"}}}}};
}

json Call(const std::string& id, const std::string& name, json arguments) {
  return {{"id", id},
          {"type", "function"},
          {"function", {{"name", name}, {"arguments", std::move(arguments)}}}};
}

TEST(ChatClientToolCallsTest, ReadsTheCallsAsSent) {
  const ChatCompletion reply = ParseChatCompletion(
      ReplyWithCalls({Call("call_a", "ask", "{\"question\": \"fever?\"}"),
                      Call("call_b", "finish", json({{"answer", {1}}}))}));
  EXPECT_EQ(reply.content, "");
  EXPECT_EQ(reply.finish_reason, "tool_calls");
  ASSERT_EQ(reply.tool_calls.size(), 2u);
  EXPECT_EQ(reply.tool_calls[0].id, "call_a");
  EXPECT_EQ(reply.tool_calls[0].name, "ask");
  EXPECT_EQ(reply.tool_calls[0].arguments, "{\"question\": \"fever?\"}");
  // An object (some servers send one) is kept as its JSON text.
  EXPECT_EQ(reply.tool_calls[1].arguments, "{\"answer\":[1]}");
  EXPECT_TRUE(ParseChatCompletion(ReplyWithCalls(json::array(), "hi"))
                  .tool_calls.empty());
}

TEST(ChatClientToolCallsTest, AMalformedCallNamesTheField) {
  try {
    ParseChatCompletion(ReplyWithCalls(
        {Call("a", "ask", "{}"), {{"id", "b"}, {"function", {{"name", 3}}}}}));
    FAIL() << "no error";
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "response.choices[0].message.tool_calls[1].function.name"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ParseChatCompletion(ReplyWithCalls("calls")), BadRequest);
}

TEST(ChatConversationTest, TextTurnsAreThePlainTranscript) {
  ChatConversation conversation;
  conversation.AddEnvMessages({{"system", "Be brief."}, {"user", "Hello"}});
  ChatCompletion reply;
  reply.content = "ASK: fever";
  EXPECT_EQ(conversation.AddAssistantReply(reply), "ASK: fever");
  conversation.AddEnvMessages({{"user", "No fever."}});
  EXPECT_EQ(conversation.messages(),
            json::parse(R"([{"role": "system", "content": "Be brief."},
                            {"role": "user", "content": "Hello"},
                            {"role": "assistant", "content": "ASK: fever"},
                            {"role": "user", "content": "No fever."}])"));
}

TEST(ChatConversationTest, CallsBecomeBlocksAndToolMessagesAnswerThemById) {
  ChatConversation conversation;
  conversation.AddEnvMessages({{"system", "Use the tools."}});
  const ChatCompletion reply = ParseChatCompletion(ReplyWithCalls(
      {Call("call_7", "ask", "{\"question\": \"fever?\"}")}, "Let me ask."));
  const std::string action = conversation.AddAssistantReply(reply);
  EXPECT_EQ(action, "Let me ask.\n" +
                        FormatToolCall({"ask", {{"question", "fever?"}}}));
  const ParsedToolCalls parsed = ParseToolCalls(action);
  ASSERT_EQ(parsed.calls.size(), 1u);
  EXPECT_EQ(parsed.calls[0].arguments, json({{"question", "fever?"}}));
  conversation.AddEnvMessages({{"tool", "No fever."}});
  const json& messages = conversation.messages();
  ASSERT_EQ(messages.size(), 3u);
  EXPECT_EQ(messages[1],
            json({{"role", "assistant"},
                  {"content", "Let me ask."},
                  {"tool_calls",
                   {Call("call_7", "ask", "{\"question\": \"fever?\"}")}}}));
  EXPECT_EQ(messages[2], json({{"role", "tool"},
                               {"tool_call_id", "call_7"},
                               {"content", "No fever."}}));
}

TEST(ChatConversationTest, MalformedArgumentsReachTheEnvsParserAsWritten) {
  for (const std::string arguments : {"{\"question\": ", "[1]", "fever"}) {
    const std::string action = ToolCallActionText({"call_1", "ask", arguments});
    const ParsedToolCalls parsed = ParseToolCalls(action);
    EXPECT_TRUE(parsed.calls.empty()) << action;
    EXPECT_NE(parsed.error.find("tool call 1: \"arguments\""),
              std::string::npos)
        << parsed.error;
  }
}

// OpenAI accepts neither an unanswered call nor an unpaired tool message.
TEST(ChatConversationTest, EveryCallIsAnsweredAndNoToolMessageIsUnpaired) {
  ChatConversation conversation;
  conversation.AddEnvMessages({{"user", "Go."}});
  ChatCompletion two;
  two.tool_calls = {{"", "ask", "{}"}, {"", "ask", "{}"}};
  conversation.AddAssistantReply(two);
  conversation.AddEnvMessages({{"tool", "Invalid: one call per turn."}});
  ChatCompletion text;
  text.content = "I am done.";
  conversation.AddAssistantReply(text);
  conversation.AddEnvMessages({{"tool", "Invalid: no call."}});
  const json& messages = conversation.messages();
  ASSERT_EQ(messages.size(), 6u) << messages.dump(1);
  // Ids the server left out are made up, and each call gets an answer.
  EXPECT_EQ(messages[1]["tool_calls"][0]["id"], "call_1_0");
  EXPECT_EQ(messages[1]["tool_calls"][1]["id"], "call_1_1");
  EXPECT_TRUE(messages[1]["content"].is_null());
  EXPECT_EQ(messages[2]["tool_call_id"], "call_1_0");
  EXPECT_EQ(messages[3]["tool_call_id"], "call_1_1");
  EXPECT_EQ(messages[3]["content"], "Invalid: one call per turn.");
  // The env's reply to a turn of text answers no call: a user message.
  EXPECT_EQ(messages[5],
            json({{"role", "user"}, {"content", "Invalid: no call."}}));
}

}  // namespace
}  // namespace clinrl
