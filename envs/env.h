// The Env interface (docs/design.md, env protocol). An env declares what it is
// (Spec) and how one episode goes (Reset, Step, and Truncate when the runtime
// cuts it short); threads, batching, sessions, timeouts and transport belong
// to the pool and the server. One Env object plays one episode at a time; the
// runtime makes one per session.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace clinrl::envs {

using nlohmann::json;

struct ChatMessage {
  std::string role;  // system | user | assistant | tool | patient ...
  std::string content;
  bool operator==(const ChatMessage& o) const {
    return role == o.role && content == o.content;
  }
};

// Observations are chat messages appended to the transcript.
using Observation = std::vector<ChatMessage>;

struct EnvSpec {
  std::string name;
  std::string version;
  std::string action_format;  // text for the prompt: the action grammar
  int64_t max_turns = 1;
  std::map<std::string, int64_t> splits;  // task counts per split
  // The scripted policies the env's server plays (the `act` op), sorted;
  // filled by servers, not by Env::Spec (a C++ env's are registered in
  // ScriptedPolicyRegistry).
  std::vector<std::string> policies;
  // The tools the model may call, as OpenAI function schemas (envs/
  // tool_calls.h); empty when actions are text only. The chat template shows
  // them to the model (docs/envs.md, "Tool calls").
  json tools = json::array();
};

struct ResetRequest {
  std::string split = "train";
  std::optional<int64_t> task_index;  // a fixed task of the split
  std::optional<int64_t> seed;        // or a task drawn from a seed
  json options = json::object();      // per-episode options
};

struct ResetResult {
  Observation observation;
  json info = json::object();  // includes "reward_spec"
};

struct StepResult {
  Observation observation;
  double reward = 0.0;
  bool terminated = false;  // the episode reached an end state
  bool truncated = false;   // cut off (turn budget) before an end state
  json info = json::object();
};

class Env {
 public:
  virtual ~Env() = default;
  virtual EnvSpec Spec() const = 0;
  // Starts a new episode. Throws BadRequest for an unknown split or an
  // out-of-range task index (naming the field and the allowed range).
  virtual ResetResult Reset(const ResetRequest& request) = 0;
  // An unparseable action is not an error: the observation says what was
  // wrong and info.invalid_actions counts it.
  virtual StepResult Step(const std::string& action) = 0;
  // The runtime cut the episode (the rollout's token or turn budget, not the
  // env's own): end it as if the env's turn budget had run out, so it is
  // scored like any other episode instead of lacking its final info.
  // Returns truncated = true, terminated = false and the final info the
  // env's own truncation carries (metrics with what was spent so far,
  // `correct` 0 where only an answer can be correct, the final reward_spec);
  // the observation may be empty, as no one acts on it. Throws BadRequest
  // when no episode is in progress (never reset, or already ended).
  virtual StepResult Truncate() = 0;
};

// The task a reset asks for in a split of `count` tasks: request.task_index
// (BadRequest naming reset.task_index and the range when outside it), else
// a draw from request.seed, else task 0. Same request, same task.
int64_t TaskIndexOf(const ResetRequest& request, int64_t count);

json ToJson(const ChatMessage& m);
json ToJson(const Observation& o);
json ToJson(const EnvSpec& s);
// Parsers validate and name the offending field ("reply.observation[1].role").
Observation ObservationFromJson(const json& j, const std::string& path);
EnvSpec EnvSpecFromJson(const json& j);

}  // namespace clinrl::envs
