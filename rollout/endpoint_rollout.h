// Episodes played by a policy behind an OpenAI-compatible chat-completions
// endpoint (`clinrl eval --endpoint`): a `clinrl serve`d checkpoint, vLLM,
// or a hosted model. Each policy turn sends the transcript so far as chat
// messages and sends the reply's text to the env as the action.
//
// An env that declares tools (EnvSpec.tools, action_mode "tools") is played
// as OpenAI-compatible servers expect tools to be: its tools go in the
// request's `tools`, the reply's tool_calls become the env's action text
// (Qwen <tool_call> blocks, the form the env parses; a malformed arguments
// string goes through for the env to refuse as an invalid action), and the
// conversation sent back carries the assistant's tool_calls and the env's
// answers as `tool` messages with their tool_call_id
// (core/chat_conversation.h). The trajectory records the action text, as
// the rollout worker records a model's own text.
//
// The budgets are the rollout worker's (rollout/rollout_worker.h), counted
// with the server's own token counts (`usage`): a turn asks for at most
// max_tokens_per_turn and never past max_tokens_per_episode; an episode is
// cut (the env's truncate op) after max_turns policy turns, or when its
// sequence reaches the episode budget, at the same points the rollout
// worker cuts it. So greedy play of a served checkpoint follows the
// in-process evaluation of the same weights, as long as the server formats
// the chat as the rollout does (the checkpoint's own chat template) and its
// tokenizer re-encodes each earlier reply to the ids that were sampled.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/chat_client.h"
#include "core/trajectory.h"
#include "rollout/rollout_worker.h"

namespace clinrl::rollout {

struct EndpointRolloutOptions {
  ChatEndpoint endpoint;
  std::string env_endpoint;  // the env server (or in-process pool) to play on
  int64_t concurrency = 16;  // episodes in flight, one thread each
  int64_t env_timeout_ms = 60000;
  // Each env's EnvSpec.tools by env name (RunState::EnvTools); an env not
  // listed, or with [], is played with text actions and no `tools`.
  std::map<std::string, nlohmann::json> env_tools;
};

struct EndpointEpisode {
  Trajectory trajectory;
  // Completion tokens over the episode's policy turns, from `usage` (-1
  // when the server reports none).
  int64_t completion_tokens = 0;
};

// Plays options.group_size episodes of each task (temperature, top_p and
// budgets from `options`), `concurrency` at a time. Episode ids are
// "<seed>-<task position>-<sample>" as the rollout worker's; sample g of a
// task sends seed (seed + 1000003 * position + g) so sampled evaluation is
// repeatable on servers that honour it. Throws what the endpoint throws
// (BadRequest for a request it refuses, IoError when it cannot be reached),
// naming the episode.
std::vector<EndpointEpisode> PlayEndpointEpisodes(
    const EndpointRolloutOptions& endpoint, const RolloutOptions& options,
    const std::vector<TaskRef>& tasks, uint64_t seed);

}  // namespace clinrl::rollout
