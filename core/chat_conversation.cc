#include "core/chat_conversation.h"

#include <fmt/format.h>

#include "core/tool_call_text.h"

namespace clinrl {

using nlohmann::json;

std::string ToolCallActionText(const ChatToolCall& call) {
  const json arguments =
      json::parse(call.arguments, nullptr, /*allow_exceptions=*/false);
  if (arguments.is_object()) return FormatToolCall({call.name, arguments});
  // Left as the model's string: the env's parser then says what is wrong
  // with it ("\"arguments\" is a string that is not valid JSON (...)").
  return "<tool_call>\n{\"name\": " + json(call.name).dump(-1, ' ', false) +
         ", \"arguments\": " + json(call.arguments).dump(-1, ' ', false) +
         "}\n</tool_call>";
}

std::string ChatConversation::AddAssistantReply(const ChatCompletion& reply) {
  ++assistant_turns_;
  unanswered_.clear();
  if (reply.tool_calls.empty()) {
    messages_.push_back({{"role", "assistant"}, {"content", reply.content}});
    return reply.content;
  }
  // Qwen2.5's template: the content, then "\n<tool_call>...</tool_call>"
  // per call.
  std::string action = reply.content;
  json calls = json::array();
  for (size_t i = 0; i < reply.tool_calls.size(); ++i) {
    const ChatToolCall& call = reply.tool_calls[i];
    // A server that sends no id still needs one for the tool messages.
    const std::string id = call.id.empty()
                               ? fmt::format("call_{}_{}", assistant_turns_, i)
                               : call.id;
    unanswered_.push_back(id);
    calls.push_back(
        {{"id", id},
         {"type", "function"},
         {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
    if (!action.empty()) action += "\n";
    action += ToolCallActionText(call);
  }
  messages_.push_back(
      {{"role", "assistant"},
       {"content", reply.content.empty() ? json() : json(reply.content)},
       {"tool_calls", std::move(calls)}});
  return action;
}

void ChatConversation::AddEnvMessages(
    const std::vector<std::pair<std::string, std::string>>& messages) {
  // The answers to the last turn's calls come first: OpenAI wants them
  // right after the assistant message.
  json others = json::array();
  size_t answered = 0;
  std::string reply_text;  // the env's reply to the turn, for unanswered calls
  for (const auto& [role, content] : messages) {
    if (!reply_text.empty()) reply_text += "\n";
    reply_text += content;
    if (role == "tool" && answered < unanswered_.size()) {
      messages_.push_back({{"role", "tool"},
                           {"tool_call_id", unanswered_[answered++]},
                           {"content", content}});
    } else {
      others.push_back(
          {{"role", role == "tool" ? "user" : role}, {"content", content}});
    }
  }
  if (answered > 0) {
    reply_text = messages_.back()["content"].get<std::string>();
  }
  for (; answered < unanswered_.size(); ++answered) {
    messages_.push_back({{"role", "tool"},
                         {"tool_call_id", unanswered_[answered]},
                         {"content", reply_text}});
  }
  unanswered_.clear();
  for (json& message : others) messages_.push_back(std::move(message));
}

}  // namespace clinrl
