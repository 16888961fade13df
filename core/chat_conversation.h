// An episode as the chat messages an OpenAI-compatible endpoint expects
// (`clinrl eval --endpoint`, rollout/endpoint_rollout.h), with tools:
// the env speaks in (role, content) messages and reads actions as text,
// while an endpoint asked with `tools` answers with structured tool calls
// and wants them back in OpenAI's conversation shape. This class translates
// both ways:
//   - an assistant reply with tool_calls becomes the env's action text, the
//     content (when any) and then one Qwen <tool_call> block per call
//     (core/tool_call_text.h), as Qwen2.5's template renders such a turn, so
//     the env parses it as it parses a model's own text; and it is sent back
//     as an assistant message carrying its tool_calls;
//   - the env's `tool` messages answer those calls in order, each sent as a
//     `tool` message with the call's tool_call_id.
// A call whose arguments text is not a JSON object is written into the
// block as that string, so the env's own parser names the problem to the
// model (an invalid action), and the episode goes on.
// OpenAI accepts no unanswered call and no unpaired tool message, while an
// env answers one reply, not each call: an env `tool` message with no call
// left to answer (the reply to a turn of plain text) is sent as a `user`
// message, and calls the env did not answer one by one (a turn of several
// calls, refused whole) get the env's reply to the turn as their result.
// Without tool calls the messages are the transcript's (role, content)
// pairs, exactly as before tools were supported.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/chat_client.h"

namespace clinrl {

class ChatConversation {
 public:
  // Messages the env sent: the reset observation, or its reply to the last
  // assistant turn. (role, content) pairs, in order.
  void AddEnvMessages(
      const std::vector<std::pair<std::string, std::string>>& messages);

  // The model's reply: appended as an assistant message; returns the action
  // text for the env (the reply's content when it has no tool calls).
  std::string AddAssistantReply(const ChatCompletion& reply);

  // The request's `messages`.
  const nlohmann::json& messages() const { return messages_; }

 private:
  nlohmann::json messages_ = nlohmann::json::array();
  std::vector<std::string> unanswered_;  // ids of the last turn's calls
  int64_t assistant_turns_ = 0;
};

// One tool call of an OpenAI reply as the env's action text: a <tool_call>
// block (FormatToolCall) when its arguments are a JSON object, otherwise a
// block whose "arguments" is the text as the model wrote it, which the env's
// parser refuses naming the problem.
std::string ToolCallActionText(const ChatToolCall& call);

}  // namespace clinrl
