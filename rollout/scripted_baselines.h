// Episodes played by an env's scripted policies (oracle, random, ...): the
// SFT demonstrations and the baselines of the evaluation table, for an env in
// this process or on an env server.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/trajectory.h"

namespace clinrl::rollout {

struct ScriptedRunOptions {
  std::string env;
  // Set: the env and its scripted policies are played on this env server
  // (the act op), the server's env options apply. Empty: in this process.
  std::string endpoint;
  nlohmann::json env_options = nlohmann::json::object();
  std::string policy = "oracle";
  nlohmann::json policy_options = nlohmann::json::object();
  std::string split = "train";
  int64_t episodes = 100;
  int64_t first_task = 0;  // task indices first_task, first_task + 1, ...
  uint64_t seed = 0;
};

// Plays `episodes` episodes; task indices wrap around the split.
std::vector<Trajectory> PlayScriptedEpisodes(const ScriptedRunOptions& options);

// The scripted policies PlayScriptedEpisodes can play for `env`: those its
// server plays when `endpoint` is set, else those registered in this process
// (none when the env itself is not registered here).
std::vector<std::string> ScriptedPoliciesFor(const std::string& env,
                                             const std::string& endpoint);

}  // namespace clinrl::rollout
