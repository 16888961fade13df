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
  nlohmann::json params = nlohmann::json::object();
  int64_t timeout_ms = -1;  // -1: the caller's default
};

struct RewardSpec {
  std::vector<ComponentSpec> components;
  std::string success;  // empty: no success component
};

// Errors name the path: "reward_spec.components[2].weight: expected a number,
// got string \"x\"". Component names must be unique and non-empty; "success"
// must name one of them.
RewardSpec ParseRewardSpec(const nlohmann::json& spec,
                           const std::string& path = "reward_spec");

}  // namespace clinrl::rewards
