// One episode of an env played by a scripted policy, recorded as a core
// Trajectory: the transcript as turns (the policy's actions as "assistant"),
// the step rewards, the reward spec from the reset info and the last step's
// info. `clinrl env eval` and `clinrl env demos` are built on it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/trajectory.h"
#include "envs/env.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs {

struct ScriptedEpisodeRequest {
  std::string env_name;
  std::string split = "test";
  int64_t task_index = 0;
  int64_t seed = 0;  // recorded; the caller seeds the policy with it
  json options = json::object();  // per-episode reset options
};

struct ScriptedEpisodeStats {
  int64_t actions = 0;
  // info.invalid_actions of the last reply (0 when the env does not say).
  int64_t invalid_actions = 0;
  // info.metrics.correct / .cost of the final step, when the env reports them.
  std::optional<double> correct;
  double cost = 0.0;
};

// Plays until terminated or truncated, or max_turns actions (then the
// termination is max_turns). An env exception ends the episode as env_error
// with the message in info.error; it is not rethrown.
Trajectory PlayScriptedEpisode(Env& env, ScriptedPolicy& policy,
                               const ScriptedEpisodeRequest& request,
                               ScriptedEpisodeStats* stats = nullptr);

}  // namespace clinrl::envs
