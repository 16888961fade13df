#include "tests/rollout/fake_chat_endpoint.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <utility>

namespace clinrl::rollout::testing {

using nlohmann::json;

std::string ToolMessageShapeError(const json& messages) {
  std::vector<std::string> pending;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (m["role"] == "tool") {
      if (pending.empty() || m.value("tool_call_id", "") != pending[0]) {
        return "messages[" + std::to_string(i) +
               "]: a tool message must answer a preceding tool call";
      }
      pending.erase(pending.begin());
      continue;
    }
    if (!pending.empty()) {
      return "messages[" + std::to_string(i) + "]: tool call " + pending[0] +
             " has no answer";
    }
    if (m["role"] == "assistant" && m.contains("tool_calls")) {
      for (const json& call : m["tool_calls"]) pending.push_back(call["id"]);
    }
  }
  return "";
}

json ToolCallReply(const std::string& id, const std::string& name,
                   const std::string& arguments, const std::string& content) {
  return {{"choices",
           {{{"message",
              {{"role", "assistant"},
               {"content", content.empty() ? json() : json(content)},
               {"tool_calls",
                {{{"id", id},
                  {"type", "function"},
                  {"function", {{"name", name}, {"arguments", arguments}}}}}}}},
             {"finish_reason", "tool_calls"}}}}};
}

FakeChatEndpoint::FakeChatEndpoint(ReplyFunction reply)
    : reply_(std::move(reply)) {
  server_.Post("/v1/chat/completions", [this](const httplib::Request& request,
                                              httplib::Response& response) {
    Handle(request, response);
  });
  port_ = server_.bind_to_any_port("127.0.0.1");
  EXPECT_GT(port_, 0) << "no loopback port for the fake endpoint";
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // A request sent before the thread listens would be refused; wait for it,
  // two seconds at the most.
  for (int i = 0; i < 400 && !server_.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

FakeChatEndpoint::~FakeChatEndpoint() {
  server_.stop();
  thread_.join();
}

std::string FakeChatEndpoint::url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1";
}

std::vector<json> FakeChatEndpoint::bodies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bodies_;
}

void FakeChatEndpoint::Handle(const httplib::Request& request,
                              httplib::Response& response) {
  const json body = json::parse(request.body);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    bodies_.push_back(body);
  }
  std::string error = ToolMessageShapeError(body["messages"]);
  json reply;
  if (error.empty()) {
    try {
      reply = reply_(body);
    } catch (const std::invalid_argument& refused) {
      error = refused.what();
    }
  }
  if (!error.empty()) {
    response.status = 400;
    response.set_content(error, "text/plain");
    return;
  }
  response.set_content(reply.dump(), "application/json");
}

}  // namespace clinrl::rollout::testing
