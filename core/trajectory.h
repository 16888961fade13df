// The trajectory record of docs/design.md: one episode, as written to
// trajectories.jsonl and sent to the reward service. Policy turns carry the
// exact sampled token ids and their sampling-time log-probs; the learner
// trains on those, never on re-tokenised text.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl {

struct Turn {
  std::string role;  // system | user | assistant (policy) | env roles
  std::string content;
  std::vector<int64_t> token_ids;  // policy turns only
  std::vector<float> logprobs;     // same length as token_ids

  bool operator==(const Turn& o) const {
    return role == o.role && content == o.content && token_ids == o.token_ids &&
           logprobs == o.logprobs;
  }
};

struct RewardComponent {
  double score = 0.0;
  double weight = 1.0;
  nlohmann::json details = nlohmann::json::object();

  bool operator==(const RewardComponent& o) const {
    return score == o.score && weight == o.weight && details == o.details;
  }
};

struct RewardResult {
  double total = 0.0;
  std::map<std::string, RewardComponent> components;

  bool operator==(const RewardResult& o) const {
    return total == o.total && components == o.components;
  }
};

enum class Termination { kFinished, kMaxTurns, kMaxTokens, kEnvError };

const char* TerminationName(Termination t);
// Throws BadRequest naming the value and the allowed names.
Termination ParseTermination(const std::string& name);

struct Trajectory {
  std::string episode_id;
  std::string group_id;
  std::string env;
  std::string split;
  int64_t task_index = -1;
  int64_t seed = 0;
  int64_t policy_version = 0;
  std::vector<Turn> turns;
  std::vector<double> step_rewards;
  RewardResult reward;
  Termination termination = Termination::kFinished;
  std::map<std::string, double> timings;
  // From the env's reset info: what the reward service needs to score this
  // episode (plug-ins, weights, rubric, answer key). Travels with the record
  // so the reward service keeps no per-task state.
  nlohmann::json reward_spec = nlohmann::json::object();
  // The env's last step info (invalid action counts, costs, ...).
  nlohmann::json info = nlohmann::json::object();

  bool operator==(const Trajectory& o) const;
};

nlohmann::json ToJson(const Trajectory& t);
// Validates types and required fields; errors name the field path, e.g.
// "trajectory.turns[3].logprobs: expected 12 values (one per token id), got
// 11".
Trajectory TrajectoryFromJson(const nlohmann::json& j);

}  // namespace clinrl
