// A fake OpenAI chat-completions endpoint on loopback, for the tests that
// play envs through an endpoint (rollout/endpoint_rollout.h, `clinrl eval
// --endpoint`). What it answers is the test's reply function; what it
// refuses is what OpenAI's API refuses of tool messages, so a conversation
// sent in the wrong shape fails the test as it would fail against a real
// server. Every request body is kept for the test to inspect.
#pragma once

#include <httplib.h>

#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace clinrl::rollout::testing {

// Why OpenAI's API would refuse `messages` ("" when it would not): each
// assistant message with tool_calls must be followed by one tool message per
// call, by id, and no tool message may answer nothing.
std::string ToolMessageShapeError(const nlohmann::json& messages);

// A chat-completions response whose one choice calls the tool `name` with
// `arguments` (a JSON text, as OpenAI sends it) under call id `id`; `content`
// is the message's text before the call, null when empty.
nlohmann::json ToolCallReply(const std::string& id, const std::string& name,
                             const std::string& arguments,
                             const std::string& content = "");

// The server on 127.0.0.1, an ephemeral port, serving POST
// /v1/chat/completions from its own thread until destroyed.
class FakeChatEndpoint {
 public:
  // The response body to a request body whose messages are in OpenAI's
  // shape. It throws std::invalid_argument to refuse a request: HTTP 400
  // with the exception's message. Called from the server's threads.
  using ReplyFunction =
      std::function<nlohmann::json(const nlohmann::json& request_body)>;

  explicit FakeChatEndpoint(ReplyFunction reply);
  ~FakeChatEndpoint();
  FakeChatEndpoint(const FakeChatEndpoint&) = delete;
  FakeChatEndpoint& operator=(const FakeChatEndpoint&) = delete;

  // The base URL a client is given: http://127.0.0.1:PORT/v1.
  std::string url() const;
  // Every request body received so far, refused ones included, in order.
  std::vector<nlohmann::json> bodies() const;

 private:
  void Handle(const httplib::Request& request, httplib::Response& response);

  ReplyFunction reply_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<nlohmann::json> bodies_;
};

}  // namespace clinrl::rollout::testing
