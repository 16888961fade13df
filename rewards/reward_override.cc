#include "rewards/reward_override.h"

#include <fmt/ranges.h>

#include <cmath>

#include "core/error.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_spec.h"

namespace clinrl::rewards {

using nlohmann::json;

namespace {

std::string ComponentNames(const json& components) {
  std::string names;
  for (const json& c : components) {
    names += (names.empty() ? "" : ", ") + c.value("name", std::string("?"));
  }
  return names.empty() ? "(none)" : names;
}

json* FindComponent(json& components, const std::string& name) {
  for (json& c : components) {
    if (c.is_object() && c.value("name", std::string()) == name) return &c;
  }
  return nullptr;
}

}  // namespace

json ApplyRewardOverride(const json& spec, const RewardOverride& change,
                         const std::string& path) {
  json out = spec;
  json& components = out["components"];
  if (!components.is_array()) components = json::array();
  for (const json& component : change.components) {
    const std::string name = component.value("name", std::string());
    if (json* existing = FindComponent(components, name)) {
      *existing = component;
    } else {
      components.push_back(component);
    }
  }
  for (const auto& [name, weight] : change.weights) {
    json* existing = FindComponent(components, name);
    if (existing == nullptr) {
      throw ConfigError(fmt::format(
          "{}.weights.{}: the env's reward spec has no component '{}'; its "
          "components (with the override's): {}",
          path, name, name, ComponentNames(components)));
    }
    (*existing)["weight"] = weight;
  }
  if (!change.success.empty()) {
    if (FindComponent(components, change.success) == nullptr) {
      throw ConfigError(fmt::format(
          "{}.success: got '{}', expected one of the components: {}", path,
          change.success, ComponentNames(components)));
    }
    out["success"] = change.success;
  }
  return out;
}

void CheckRewardOverrides(const std::map<std::string, RewardOverride>& all,
                          bool check_registry) {
  for (const auto& [env, change] : all) {
    const std::string path = "rewards.overrides." + env;
    for (const auto& [name, weight] : change.weights) {
      if (!std::isfinite(weight)) {
        throw ConfigError(
            fmt::format("{}.weights.{}: got {}, expected a "
                        "finite number",
                        path, name, weight));
      }
    }
    if (change.components.empty()) continue;
    // The added components alone must form a valid spec: names unique and
    // non-empty, weights numbers, params objects.
    const json added = {{"components", change.components}};
    RewardSpec parsed;
    try {
      parsed = ParseRewardSpec(added, path);
    } catch (const BadRequest& e) {
      throw ConfigError(e.what());  // a config key, checked at start
    }
    if (!check_registry) continue;
    for (size_t i = 0; i < parsed.components.size(); ++i) {
      const ComponentSpec& c = parsed.components[i];
      const std::string at = fmt::format("{}.components[{}]", path, i);
      if (!RewardRegistry::Global().Has(c.plugin)) {
        throw ConfigError(fmt::format(
            "{}.plugin: no reward plug-in '{}' (a shared library must be "
            "listed in rewards.plugins); registered: {}",
            at, c.plugin, fmt::join(RewardRegistry::Global().Names(), ", ")));
      }
      try {
        RewardRegistry::Global().Create(c.plugin)->ValidateParams(
            c.params != nullptr ? *c.params : json::object());
      } catch (const std::exception& e) {
        throw ConfigError(fmt::format("{}.params: {}", at, e.what()));
      }
    }
  }
}

}  // namespace clinrl::rewards
