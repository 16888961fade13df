// The parsed form of a task's reward spec (format in reward.h). Parsing
// checks the shape only; each plug-in checks its own params.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::rewards {

struct ComponentSpec {
  std::string name;
  std::string plugin;
  double weight = 1.0;
  // Points into the parsed spec (specs carry whole rubrics; copying them
  // per trajectory would cost more than scoring): the spec must outlive it.
  const nlohmann::json* params = nullptr;
  int64_t timeout_ms = -1;  // -1: the caller's default
};

struct RewardSpec {
  std::vector<ComponentSpec> components;
  std::string success;  // empty: no success component
};

// Errors name the path: "reward_spec.components[2].weight: expected a number,
// got string \"x\"". Component names must be unique and non-empty; "success"
// must name one of them. The result points into `spec`.
RewardSpec ParseRewardSpec(const nlohmann::json& spec,
                           const std::string& path = "reward_spec");

}  // namespace clinrl::rewards
