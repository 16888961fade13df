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
      {Chat({{"top_logprobs", 3}}), "top_logprobs: 3 needs logprobs: true"},
      {Chat({{"logprobs", false}, {"top_logprobs", 0}}),
       "top_logprobs: 0 needs logprobs: true"},
      {Chat({{"logprobs", true}, {"top_logprobs", 21}}),
       "top_logprobs: 21 is not allowed; expected 0 <= top_logprobs <= 20"},
      {Chat({{"logprobs", true}, {"top_logprobs", -1}}),
       "top_logprobs: -1 is not allowed; expected 0 <= top_logprobs <= 20"},
      {Chat({{"logprobs", true}, {"top_logprobs", 2.5}}),
       "top_logprobs: expected an integer, got number 2.5"},
      {Chat({{"logprobs", true}, {"top_logprobs", "5"}}),
       "top_logprobs: expected an integer, got string \"5\""},
      {Chat({{"logprobs", 1}}), "logprobs: expected true or false"},
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

// The message of the BadRequest that parsing a completions body throws.
std::string CompletionError(const Json& body) {
  try {
    ParseCompletionRequest(body);
  } catch (const BadRequest& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(OpenAiProtocolTest, ReadsTopLogprobs) {
  // Off unless asked: the engine then computes nothing extra.
  EXPECT_EQ(ParseChatRequest(Chat()).sampling.top_logprobs, -1);
  const CompletionRequest sampled_only =
      ParseChatRequest(Chat({{"logprobs", true}}));
  EXPECT_EQ(sampled_only.top_logprobs, 0);
  EXPECT_EQ(sampled_only.sampling.top_logprobs, 0);
  const CompletionRequest top =
      ParseChatRequest(Chat({{"logprobs", true}, {"top_logprobs", 20}}));
  EXPECT_TRUE(top.logprobs);
  EXPECT_EQ(top.top_logprobs, 20);
  EXPECT_EQ(top.sampling.top_logprobs, 20);
  // The legacy completions API: logprobs is the number of alternatives.
  const CompletionRequest legacy =
      ParseCompletionRequest({{"prompt", "a"}, {"logprobs", 5}});
  EXPECT_TRUE(legacy.logprobs);
  EXPECT_EQ(legacy.top_logprobs, 5);
  EXPECT_EQ(legacy.sampling.top_logprobs, 5);
  EXPECT_EQ(ParseCompletionRequest({{"prompt", "a"}}).sampling.top_logprobs,
            -1);
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"prompt", "a"}, {"logprobs", 21}},
       "logprobs: 21 is not allowed; expected 0 <= logprobs <= 20"},
      {{{"prompt", "a"}, {"logprobs", -2}},
       "logprobs: -2 is not allowed; expected 0 <= logprobs <= 20"},
      {{{"prompt", "a"}, {"logprobs", true}},
       "logprobs: expected an integer, got boolean true"},
      {{{"prompt", "a"}, {"logprobs", 1.5}},
       "logprobs: expected an integer, got number 1.5"},
  };
  for (const auto& [body, expected] : cases) {
    const std::string message = CompletionError(body);
    EXPECT_EQ(message.rfind(expected, 0), 0u)
        << body.dump() << "\n  gave: " << message
        << "\n  expected it to start with: " << expected;
  }
  EXPECT_EQ(ErrorBody(CompletionError({{"prompt", "a"}, {"logprobs", 99}}),
                      "invalid_request_error", "")["error"]["param"],
            "logprobs");
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

// An assistant's tool-call arguments arrive as OpenAI's JSON string and
// reach the chat template as the object (as vLLM passes them), so a
// template's `arguments | tojson` shows what the model wrote.
TEST(OpenAiProtocolTest, ToolCallArgumentsReachTheTemplateAsObjects) {
  const Json body = Json::parse(R"({"model": "m", "messages": [
      {"role": "user", "content": "BP?"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_vitals",
         "arguments": "{\"id\": 7}"}},
        {"id": "c2", "type": "function", "function": {"name": "note",
         "arguments": "not json"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "120/80"}]})");
  const CompletionRequest r = ParseChatRequest(body);
  const auto& calls = r.messages[1]["tool_calls"];
  EXPECT_EQ(calls[0]["function"]["arguments"], nlohmann::ordered_json({{"id", 7}}));
  EXPECT_EQ(calls[1]["function"]["arguments"], "not json");
}

TEST(OpenAiProtocolTest, CutsAtTheFirstStopString) {
  EXPECT_EQ(CutAtStop("abc END def STOP", {"STOP", "END"}), "abc ");
  EXPECT_EQ(CutAtStop("abc", {"x"}), "abc");
}

TEST(OpenAiProtocolTest, ParsesQwenToolCalls) {
  const ChoiceToolCalls parsed = ChoiceToolCallsOf(
      "Let me look.\n<tool_call>\n{\"name\": \"get_vitals\", "
      "\"arguments\": {\"id\": 7}}\n</tool_call>",
      "call_x");
  ASSERT_EQ(parsed.tool_calls.size(), 1u);
  EXPECT_EQ(parsed.content, "Let me look.\n");
  EXPECT_EQ(parsed.tool_calls[0]["function"]["name"], "get_vitals");
  EXPECT_EQ(parsed.tool_calls[0]["function"]["arguments"], "{\"id\":7}");
  EXPECT_EQ(parsed.tool_calls[0]["type"], "function");
  // A block that is not JSON stays text.
  const ChoiceToolCalls broken =
      ChoiceToolCallsOf("<tool_call>not json</tool_call>", "c");
  EXPECT_TRUE(broken.tool_calls.empty());
  EXPECT_EQ(broken.content, "<tool_call>not json</tool_call>");
}

// Streams `text` to StreamedToolCallsOf one byte at a time, as a client
// would see it: the content deltas joined and the calls in order of arrival.
StreamedToolCalls StreamByteByByte(const std::string& text) {
  StreamedToolCalls joined;
  std::string sent;
  size_t calls_sent = 0;
  for (size_t n = 0; n <= text.size(); ++n) {
    const bool finished = n == text.size();
    const StreamedToolCalls shown =
        StreamedToolCallsOf(text.substr(0, n), finished, "call_x");
    // Content only grows; it never shows an open tag unless the choice
    // ended without a call, nor, while running, a tail that may begin one.
    EXPECT_EQ(shown.content.rfind(sent, 0), 0u)
        << "at " << n << ": " << shown.content << " after " << sent;
    if (!finished || !shown.tool_calls.empty()) {
      EXPECT_EQ(shown.content.find("<tool_call>"), std::string::npos)
          << "at " << n << ": " << shown.content;
    }
    const std::string open = "<tool_call>";
    for (size_t k = 1; !finished && k < open.size(); ++k) {
      EXPECT_FALSE(
          shown.content.size() >= k &&
          shown.content.compare(shown.content.size() - k, k, open, 0, k) == 0)
          << "at " << n << ": " << shown.content;
    }
    sent = shown.content;
    EXPECT_GE(shown.tool_calls.size(), calls_sent) << "at " << n;
    for (size_t k = calls_sent; k < shown.tool_calls.size(); ++k) {
      joined.tool_calls.push_back(shown.tool_calls[k]);
    }
    calls_sent = shown.tool_calls.size();
  }
  joined.content = sent;
  return joined;
}

TEST(OpenAiProtocolTest, StreamedToolCallsJoinToTheParsedOnes) {
  const std::vector<std::string> texts = {
      "Let me look.\n<tool_call>\n{\"name\": \"get_vitals\", "
      "\"arguments\": {\"id\": 7}}\n</tool_call>",
      "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>\n"
      "<tool_call>{\"name\": \"b\", \"arguments\": {\"x\": \"<\"}}"
      "</tool_call>",
      // Not a call: everything, tag included, is content in the end.
      "Hm <tool_call>not json</tool_call> ok",
      // An unclosed block stays text too.
      "Check <tool_call>{\"name\": \"a\"",
      // A '<' that is not a tag is held back only while it could be one.
      "a < b and a <tool but no call",
      "plain text",
      // Llama's JSON call is the whole text, held back until the end.
      "{\"name\": \"get_vitals\", \"parameters\": {\"id\": 7}}",
      // White space before it is no content either.
      "\n\n{\"name\": \"get_vitals\", \"parameters\": {}}",
      // JSON that is no call is content in the end.
      "{\"answer\": 1}",
      // One malformed block: no calls, all content (as the env would
      // refuse the turn).
      "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"
      "<tool_call>oops</tool_call>",
  };
  for (const std::string& text : texts) {
    const ChoiceToolCalls whole = ChoiceToolCallsOf(text, "call_x");
    const StreamedToolCalls streamed = StreamByteByByte(text);
    EXPECT_EQ(streamed.content, whole.content) << text;
    EXPECT_EQ(streamed.tool_calls, whole.tool_calls) << text;
  }
  const StreamedToolCalls two = StreamByteByByte(texts[1]);
  ASSERT_EQ(two.tool_calls.size(), 2u);
  EXPECT_EQ(two.tool_calls[1]["function"]["arguments"], "{\"x\":\"<\"}");
  const ChoiceToolCalls llama = ChoiceToolCallsOf(texts[6], "call_x");
  ASSERT_EQ(llama.tool_calls.size(), 1u);
  EXPECT_EQ(llama.content, "");
  EXPECT_EQ(llama.tool_calls[0]["function"]["arguments"], "{\"id\":7}");
  EXPECT_EQ(ChoiceToolCallsOf(texts[7], "c").tool_calls.size(), 1u);
  EXPECT_EQ(ChoiceToolCallsOf(texts[7], "c").content, "");
  EXPECT_TRUE(ChoiceToolCallsOf(texts[8], "c").tool_calls.empty());
  EXPECT_TRUE(ChoiceToolCallsOf(texts[9], "c").tool_calls.empty());
  EXPECT_EQ(ChoiceToolCallsOf(texts[9], "c").content, texts[9]);
  // While running, a tail that may open a tag is held back; one that
  // cannot is not.
  EXPECT_EQ(StreamedToolCallsOf("Sure <tool_c", false, "c").content, "Sure ");
  EXPECT_EQ(StreamedToolCallsOf("Sure <", false, "c").content, "Sure ");
  EXPECT_EQ(StreamedToolCallsOf("Sure <b", false, "c").content, "Sure <b");
  EXPECT_EQ(StreamedToolCallsOf("Sure <tool_c", true, "c").content,
            "Sure <tool_c");
}

TEST(OpenAiProtocolTest, BuildsTopLogprobShapes) {
  ChoiceResult c;
  c.text = "ok";
  c.finish_reason = "stop";
  c.token_texts = {"o", "k"};
  c.logprobs = {-0.5f, -1.0f};
  c.top_logprobs = {{{"o", -0.5f}, {"a", -1.5f}},
                    {{"x", -0.75f}, {"k", -1.0f}}};
  const Json chat = ChatResponse("id", "m", 5, {c}, true, Usage(3, 2));
  const Json& content = chat["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content[1]["token"], "k");
  EXPECT_EQ(content[1]["logprob"], -1.0f);
  EXPECT_EQ(content[1]["bytes"], Json::array({107}));
  ASSERT_EQ(content[1]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[1]["top_logprobs"][0],
            (Json{{"token", "x"}, {"logprob", -0.75f}, {"bytes", {120}}}));
  // A chunk carries the entries of the tokens it brings.
  const Json part = ChatLogprobs(c, 1, 2);
  ASSERT_EQ(part["content"].size(), 1u);
  EXPECT_EQ(part["content"][0], content[1]);
  EXPECT_EQ(ChatChunk("id", "m", 5, 0, {{"content", "k"}}, "",
                      part)["choices"][0]["logprobs"],
            part);

  const Json text = CompletionResponse("id", "m", 5, {c}, true, Usage(1, 2));
  const Json& lp = text["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], Json::array({"o", "k"}));
  EXPECT_EQ(lp["token_logprobs"], Json::array({-0.5f, -1.0f}));
  EXPECT_EQ(lp["text_offset"], Json::array({0, 1}));
  EXPECT_EQ(lp["top_logprobs"][1], (Json{{"x", -0.75f}, {"k", -1.0f}}));
  // Streamed from the second token on: its offset is still into the text.
  const Json tail = CompletionLogprobs(c, 1, 2);
  EXPECT_EQ(tail["text_offset"], Json::array({1}));
  EXPECT_EQ(tail["top_logprobs"], Json::array({lp["top_logprobs"][1]}));
  // logprobs 0: the sampled tokens only.
  c.top_logprobs.clear();
  EXPECT_TRUE(CompletionLogprobs(c, 0, 2)["top_logprobs"].is_null());
  EXPECT_EQ(ChatLogprobs(c, 0, 2)["content"][0]["top_logprobs"], Json::array());
  // A token that holds part of a character: its own bytes, not U+FFFD's.
  ChoiceResult partial;
  partial.token_texts = {"\xEF\xBF\xBD"};
  partial.token_bytes = {"\xE2"};
  partial.logprobs = {-0.1f};
  partial.top_logprobs = {{{"\xEF\xBF\xBD", -0.1f, "\xE2"}}};
  const Json entry = ChatLogprobs(partial, 0, 1)["content"][0];
  EXPECT_EQ(entry["bytes"], Json::array({0xE2}));
  EXPECT_EQ(entry["top_logprobs"][0]["bytes"], Json::array({0xE2}));
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
