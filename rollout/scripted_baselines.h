// Episodes played by an env's scripted policies (oracle, random, ...): the
// SFT demonstrations and the baselines of the evaluation table.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trajectory.h"

namespace clinrl::rollout {

struct ScriptedRunOptions {
  std::string env;
  nlohmann::json env_options = nlohmann::json::object();
  std::string policy = "oracle";
  nlohmann::json policy_options = nlohmann::json::object();
  std::string split = "train";
  int64_t episodes = 100;
  int64_t first_task = 0;  // task indices first_task, first_task + 1, ...
  uint64_t seed = 0;
};

// Plays `episodes` episodes in-process; task indices wrap around the split.
std::vector<Trajectory> PlayScriptedEpisodes(const ScriptedRunOptions& options);

}  // namespace clinrl::rollout
