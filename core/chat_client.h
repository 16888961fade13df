// A client of an OpenAI-compatible chat-completions endpoint (`clinrl
// serve`, vLLM, SGLang, the OpenAI API): one POST per call, with a bounded
// number of retries for what may pass (no connection, HTTP 429 and 5xx), and
// the typed errors of core/error.h for what will not (HTTP 4xx: BadRequest
// with the server's message). One client belongs to one thread. A reply's
// tool calls (choices[0].message.tool_calls) are returned as the server sent
// them; what they mean to an env is core/chat_conversation.h's business.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace httplib {
class Client;
}

namespace clinrl {

struct ChatEndpoint {
  // Base URL: "http://127.0.0.1:8000" or ".../v1"; "/v1/chat/completions"
  // (or "/chat/completions" after a /v1) is added.
  std::string url;
  std::string model;
  // Name of the environment variable holding the bearer token; the token
  // itself never travels in configs or logs.
  std::string api_key_env;
  int64_t timeout_ms = 120000;  // per request
  int64_t max_retries = 3;      // extra attempts after the first
};

// One entry of choices[0].message.tool_calls, OpenAI's shape
// {"id", "type": "function", "function": {"name", "arguments"}}.
struct ChatToolCall {
  std::string id;  // "" when the server sent none
  std::string name;
  // The JSON text of the arguments as the model wrote it, not checked here:
  // a malformed one is the model's mistake, for the env to answer.
  std::string arguments;
};

struct ChatCompletion {
  std::string content;         // choices[0].message.content ("" when null)
  std::string finish_reason;   // "stop", "length", "tool_calls", ...
  int64_t prompt_tokens = -1;  // usage, when the server reports it
  int64_t completion_tokens = -1;
  // choices[0].message.tool_calls; empty when the reply has none. Last, so
  // that aggregate initialisers of the fields above still compile.
  std::vector<ChatToolCall> tool_calls;
};

class ChatClient {
 public:
  // Throws BadRequest naming `field` when the URL is not http(s)://, and
  // ConfigError when api_key_env names an unset variable.
  ChatClient(ChatEndpoint endpoint, const std::string& field = "--endpoint");
  ~ChatClient();
  ChatClient(const ChatClient&) = delete;
  ChatClient& operator=(const ChatClient&) = delete;

  // POSTs `body` (messages and sampling fields; "model" is added) and
  // returns the first choice.
  ChatCompletion Complete(nlohmann::json body);

  // "http://host:port/v1/chat/completions", for messages.
  std::string where() const;

 private:
  ChatEndpoint endpoint_;
  std::string origin_;  // scheme://host:port
  std::string path_;    // /v1/chat/completions
  std::string api_key_;
  std::unique_ptr<httplib::Client> http_;
};

// The first choice of a chat-completions response body; throws BadRequest
// naming the missing or mistyped field ("response.choices[0].message",
// "response.choices[0].message.tool_calls[1].function.name").
ChatCompletion ParseChatCompletion(const nlohmann::json& response);

}  // namespace clinrl
