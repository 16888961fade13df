#include "core/chat_client.h"

#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl {

using nlohmann::json;

namespace {

// The message's tool_calls. Their structure is the server's to get right (a
// BadRequest naming the field); their arguments text is the model's, kept
// as written.
std::vector<ChatToolCall> ParseToolCallList(const json& message) {
  std::vector<ChatToolCall> calls;
  const auto found = message.find("tool_calls");
  if (found == message.end() || found->is_null()) return calls;
  const wire::Fields fields(message, "response.choices[0].message");
  const json& list = fields.Array("tool_calls");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string path =
        fmt::format("response.choices[0].message.tool_calls[{}]", i);
    const wire::Fields entry(list[i], path);
    const json& function_json = entry.Object("function");
    const wire::Fields function(function_json, path + ".function");
    ChatToolCall call;
    if (entry.Has("id") && !entry.Get("id").is_null()) {
      call.id = entry.String("id");
    }
    call.name = function.String("name");
    // OpenAI sends a string; some servers send the object itself.
    const auto arguments = function_json.find("arguments");
    if (arguments == function_json.end() || arguments->is_null()) {
      call.arguments = "{}";
    } else if (arguments->is_string()) {
      call.arguments = arguments->get<std::string>();
    } else {
      call.arguments = arguments->dump();
    }
    calls.push_back(std::move(call));
  }
  return calls;
}

}  // namespace

ChatCompletion ParseChatCompletion(const json& response) {
  const wire::Fields top(response, "response");
  const json& choices = top.Array("choices");
  if (choices.empty()) {
    throw BadRequest("response.choices: expected at least one choice, got []");
  }
  const wire::Fields choice(choices[0], "response.choices[0]");
  const json& message = choice.Object("message");
  ChatCompletion out;
  // A reply that is only tool calls has "content": null.
  const auto content = message.find("content");
  if (content != message.end() && !content->is_null()) {
    out.content =
        wire::Fields(message, "response.choices[0].message").String("content");
  }
  out.tool_calls = ParseToolCallList(message);
  if (choice.Has("finish_reason") && choice.Get("finish_reason").is_string()) {
    out.finish_reason = choice.String("finish_reason");
  }
  if (top.Has("usage") && top.Get("usage").is_object()) {
    const wire::Fields usage(top.Object("usage"), "response.usage");
    out.prompt_tokens = usage.Int("prompt_tokens", -1);
    out.completion_tokens = usage.Int("completion_tokens", -1);
  }
  return out;
}

ChatClient::ChatClient(ChatEndpoint endpoint, const std::string& field)
    : endpoint_(std::move(endpoint)) {
  const std::string& url = endpoint_.url;
  const size_t scheme = url.find("://");
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    throw BadRequest(
        fmt::format("{}: expected an http:// or https:// base URL, got \"{}\"",
                    field, url));
  }
  const size_t slash = url.find('/', scheme + 3);
  origin_ = slash == std::string::npos ? url : url.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  // OpenAI clients' base URLs end in /v1; accept the bare server too.
  if (prefix.size() < 3 || prefix.compare(prefix.size() - 3, 3, "/v1") != 0) {
    prefix += "/v1";
  }
  path_ = prefix + "/chat/completions";
  if (!endpoint_.api_key_env.empty()) {
    const char* key = std::getenv(endpoint_.api_key_env.c_str());
    if (key == nullptr) {
      throw ConfigError(fmt::format("{}: the API key variable {} is not set",
                                    field, endpoint_.api_key_env));
    }
    api_key_ = key;
  }
  http_ = std::make_unique<httplib::Client>(origin_);
  const auto sec = static_cast<time_t>(endpoint_.timeout_ms / 1000);
  const auto usec = static_cast<time_t>((endpoint_.timeout_ms % 1000) * 1000);
  http_->set_connection_timeout(sec, usec);
  http_->set_read_timeout(sec, usec);
  http_->set_write_timeout(sec, usec);
}

ChatClient::~ChatClient() = default;

std::string ChatClient::where() const { return origin_ + path_; }

ChatCompletion ChatClient::Complete(json body) {
  body["model"] = endpoint_.model;
  const std::string text = body.dump();
  httplib::Headers headers;
  if (!api_key_.empty()) headers.emplace("Authorization", "Bearer " + api_key_);
  std::string problem;
  for (int64_t attempt = 0; attempt <= endpoint_.max_retries; ++attempt) {
    if (attempt > 0) {
      // A server that is briefly overloaded (429) or restarting recovers.
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min<int64_t>(100 << attempt, 4000)));
    }
    const auto res = http_->Post(path_, headers, text, "application/json");
    if (!res) {
      problem = "no response: " + httplib::to_string(res.error());
      continue;
    }
    if (res->status == 429 || res->status >= 500) {
      problem =
          fmt::format("HTTP {}: {}", res->status, res->body.substr(0, 300));
      continue;
    }
    if (res->status != 200) {
      // The request itself is wrong: retrying cannot help.
      throw BadRequest(fmt::format("POST {} answered HTTP {}: {}", where(),
                                   res->status, res->body.substr(0, 300)));
    }
    const json reply = json::parse(res->body, nullptr, false);
    if (reply.is_discarded()) {
      throw BadRequest(fmt::format("POST {}: the response is not JSON: {}",
                                   where(), res->body.substr(0, 200)));
    }
    return ParseChatCompletion(reply);
  }
  throw IoError(fmt::format("POST {}: no answer after {} attempts; last: {}",
                            where(), endpoint_.max_retries + 1, problem));
}

}  // namespace clinrl
