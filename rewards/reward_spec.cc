#include "rewards/reward_spec.h"

#include <set>

#include "core/error.h"
#include "core/wire.h"

namespace clinrl::rewards {

RewardSpec ParseRewardSpec(const nlohmann::json& spec,
                           const std::string& path) {
  const wire::Fields fields(spec, path);
  const auto& components = fields.Array("components");
  if (components.empty()) {
    throw BadRequest(fmt::format(
        "{}.components: expected at least one component, got []", path));
  }
  RewardSpec out;
  std::set<std::string> names;
  for (size_t i = 0; i < components.size(); ++i) {
    const std::string at = fmt::format("{}.components[{}]", path, i);
    const wire::Fields c(components[i], at);
    ComponentSpec component;
    component.plugin = c.String("plugin");
    component.name = c.String("name", component.plugin);
    if (component.name.empty()) {
      throw BadRequest(at + ".name: expected a non-empty string, got \"\"");
    }
    if (!names.insert(component.name).second) {
      throw BadRequest(fmt::format(
          "{}.name: component name \"{}\" is used twice; names must be unique",
          at, component.name));
    }
    component.weight = c.Double("weight", 1.0);
    static const nlohmann::json kNoParams = nlohmann::json::object();
    component.params = c.Has("params") ? &c.Object("params") : &kNoParams;
    component.timeout_ms = c.Int("timeout_ms", -1);
    if (c.Has("timeout_ms") && component.timeout_ms < 0) {
      throw BadRequest(
          fmt::format("{}.timeout_ms: expected an integer >= 0, got {}", at,
                      component.timeout_ms));
    }
    out.components.push_back(std::move(component));
  }
  out.success = fields.String("success", "");
  if (!out.success.empty() && !names.count(out.success)) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    throw BadRequest(
        fmt::format("{}.success: \"{}\" is not a component; components: {}",
                    path, out.success, known));
  }
  return out;
}

}  // namespace clinrl::rewards
