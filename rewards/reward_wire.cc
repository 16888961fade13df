#include "rewards/reward_wire.h"

#include "core/error.h"
#include "core/wire.h"
#include "rewards/composite_reward.h"

namespace clinrl::rewards {

nlohmann::json RewardResultToJson(const RewardResult& result) {
  nlohmann::json components = nlohmann::json::object();
  for (const auto& [name, c] : result.components) {
    components[name] = {
        {"score", c.score}, {"weight", c.weight}, {"details", c.details}};
  }
  return {{"total", result.total},
          {"components", std::move(components)},
          {"flagged", IsFlagged(result)},
          {"errors", ComponentErrors(result)}};
}

RewardResult RewardResultFromJson(const nlohmann::json& j,
                                  const std::string& path) {
  const wire::Fields f(j, path);
  RewardResult r;
  r.total = f.Double("total");
  for (const auto& [name, value] : f.Object("components").items()) {
    const wire::Fields c(value, path + ".components." + name);
    RewardComponent rc;
    rc.score = c.Double("score");
    rc.weight = c.Double("weight");
    if (c.Has("details")) rc.details = c.Get("details");
    r.components[name] = std::move(rc);
  }
  return r;
}

}  // namespace clinrl::rewards
