// Request parsing and response building of the OpenAI protocol: accepted
// requests read into the internal request, and every refusal names its field
// (in the message and as OpenAI's `param`).
#include "serve/openai_protocol.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace clinrl::serve {
namespace {

using Json = nlohmann::json;

Json Chat(Json extra = Json::object()) {
  Json body = {{"model", "m"},
               {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  body.update(extra);
  return body;
}

// The message of the BadRequest that parsing `body` throws.
std::string ChatError(const Json& body) {
  try {
    ParseChatRequest(body);
  } catch (const BadRequest& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(OpenAiProtocolTest, ReadsAChatRequest) {
  const CompletionRequest r = ParseChatRequest(Chat({{"temperature", 0},
                                                     {"top_p", 0.5},
                                                     {"max_tokens", 7},
                                                     {"stop", "END"},
                                                     {"seed", 3},
                                                     {"n", 2},
                                                     {"stream", true},
                                                     {"logprobs", true}}));
  EXPECT_TRUE(r.chat);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.sampling.temperature, 0.0);
  EXPECT_EQ(r.sampling.top_p, 0.5);
  EXPECT_EQ(r.sampling.max_new_tokens, 7);
  EXPECT_EQ(r.sampling.stop_strings, std::vector<std::string>{"END"});
  EXPECT_TRUE(r.has_seed);
  EXPECT_EQ(r.sampling.seed, 3u);
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.logprobs);
  EXPECT_EQ(r.messages.size(), 1u);
  EXPECT_TRUE(r.tools.is_null());
}

TEST(OpenAiProtocolTest, DefaultsFollowOpenAi) {
  const CompletionRequest r = ParseChatRequest(Chat());
  EXPECT_EQ(r.sampling.temperature, 1.0);
  EXPECT_EQ(r.sampling.max_new_tokens, kDefaultMaxTokens);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  // max_completion_tokens is the newer name of max_tokens.
  EXPECT_EQ(ParseChatRequest(Chat({{"max_completion_tokens", 5}}))
                .sampling.max_new_tokens,
            5);
  // null means "not given", as the client sends it.
  EXPECT_EQ(
      ParseChatRequest(Chat({{"temperature", nullptr}})).sampling.temperature,
      1.0);
}

TEST(OpenAiProtocolTest, ChatErrorsNameTheField) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"model", "m"}}, "messages: missing"},
      {Chat({{"messages", Json::array()}}), "messages: expected"},
      {Chat({{"messages", "hi"}}), "messages: expected"},
      {Chat({{"messages", {{{"role", "robot"}, {"content", "x"}}}}}),
       "messages[0].role: unknown role \"robot\""},
      {Chat({{"messages", {{{"content", "x"}}}}}),
       "messages[0].role: expected a string"},
      {Chat({{"messages", {{{"role", "user"}}}}}),
       "messages[0].content: missing"},
      {Chat({{"messages", {{{"role", "user"}, {"content", 5}}}}}),
       "messages[0].content: expected"},
      {Chat({{"temperature", -1}}), "temperature: -1 is not allowed"},
      {Chat({{"temperature", "hot"}}), "temperature: expected a number"},
      {Chat({{"top_p", 0}}), "top_p: 0 is not allowed"},
      {Chat({{"n", 0}}), "n: 0 is not allowed"},
      {Chat({{"n", 1.5}}), "n: expected an integer"},
      {Chat({{"max_tokens", 0}}), "max_tokens: 0 is not allowed"},
      {Chat({{"max_tokens", "10"}}), "max_tokens: expected an integer"},
      {Chat({{"stop", 3}}), "stop: expected a string or a list"},
      {Chat({{"stop", {"a", 1}}}), "stop[1]: expected a non-empty string"},
      {Chat({{"seed", "x"}}), "seed: expected an integer"},
      {Chat({{"stream", 1}}), "stream: expected true or false"},
      {Chat({{"top_logprobs", 3}}), "top_logprobs: 3 is not supported"},
      {Chat({{"presence_penalty", 0.5}}), "presence_penalty: 0.5 is not"},
      {Chat({{"tools", "x"}}), "tools: expected a list"},
      {Chat({{"tool_choice", "required"}}), "tool_choice: \"required\""},
      {Json::array(), "body: expected a JSON object"},
  };
  for (const auto& [body, expected] : cases) {
    const std::string message = ChatError(body);
    EXPECT_EQ(message.rfind(expected, 0), 0u)
        << body.dump() << "\n  gave: " << message
        << "\n  expected it to start with: " << expected;
  }
}

TEST(OpenAiProtocolTest, ReadsCompletionPrompts) {
  CompletionRequest r =
      ParseCompletionRequest({{"model", "m"}, {"prompt", "BP"}});
  EXPECT_FALSE(r.chat);
  EXPECT_EQ(r.prompts, std::vector<std::string>{"BP"});
  EXPECT_EQ(r.sampling.max_new_tokens, 16);  // OpenAI's default here
  r = ParseCompletionRequest(
      {{"prompt", {"a", "b"}}, {"max_tokens", 3}, {"logprobs", 0}});
  EXPECT_EQ(r.prompts, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.sampling.max_new_tokens, 3);
  EXPECT_TRUE(r.logprobs);
  EXPECT_THROW(
      {
        try {
          ParseCompletionRequest({{"prompt", {1, 2}}});
        } catch (const BadRequest& e) {
          EXPECT_EQ(std::string(e.what()).rfind("prompt[0]: expected", 0), 0u)
              << e.what();
          throw;
        }
      },
      BadRequest);
  EXPECT_THROW(ParseCompletionRequest({{"model", "m"}}), BadRequest);
  EXPECT_THROW(ParseCompletionRequest({{"prompt", "a"}, {"echo", true}}),
               BadRequest);
}

TEST(OpenAiProtocolTest, ErrorBodyNamesTheParam) {
  const Json body = ErrorBody("messages[0].role: unknown role \"robot\"",
                              "invalid_request_error", "");
  EXPECT_EQ(body["error"]["param"], "messages[0].role");
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_TRUE(body["error"]["code"].is_null());
  EXPECT_TRUE(ErrorBody("server stopping", "server_error", "")["error"]["param"]
                  .is_null());
  EXPECT_EQ(ParamOf("no field here: really"), "");
}

TEST(OpenAiProtocolTest, CutsAtTheFirstStopString) {
  EXPECT_EQ(CutAtStop("abc END def STOP", {"STOP", "END"}), "abc ");
  EXPECT_EQ(CutAtStop("abc", {"x"}), "abc");
}

TEST(OpenAiProtocolTest, ParsesQwenToolCalls) {
  const ParsedToolCalls parsed = ParseToolCalls(
      "Let me look.\n<tool_call>\n{\"name\": \"get_vitals\", "
      "\"arguments\": {\"id\": 7}}\n</tool_call>",
      "call_x");
  ASSERT_EQ(parsed.tool_calls.size(), 1u);
  EXPECT_EQ(parsed.content, "Let me look.\n");
  EXPECT_EQ(parsed.tool_calls[0]["function"]["name"], "get_vitals");
  EXPECT_EQ(parsed.tool_calls[0]["function"]["arguments"], "{\"id\":7}");
  EXPECT_EQ(parsed.tool_calls[0]["type"], "function");
  // A block that is not JSON stays text.
  const ParsedToolCalls broken =
      ParseToolCalls("<tool_call>not json</tool_call>", "c");
  EXPECT_TRUE(broken.tool_calls.empty());
  EXPECT_EQ(broken.content, "<tool_call>not json</tool_call>");
}

TEST(OpenAiProtocolTest, BuildsOpenAiShapes) {
  ChoiceResult c;
  c.text = "ok";
  c.finish_reason = "length";
  c.token_texts = {"o", "k"};
  c.logprobs = {-0.5f, -1.0f};
  const Json chat = ChatResponse("id1", "m", 5, {c}, true, Usage(3, 2));
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "ok");
  EXPECT_EQ(chat["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_EQ(chat["usage"]["total_tokens"], 5);
  const Json text = CompletionResponse("id2", "m", 5, {c}, false, Usage(1, 2));
  EXPECT_EQ(text["choices"][0]["text"], "ok");
  EXPECT_TRUE(text["choices"][0]["logprobs"].is_null());
  const Json chunk = ChatChunk("id", "m", 5, 0, {{"content", "o"}}, "");
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
}

}  // namespace
}  // namespace clinrl::serve
