#include "rewards/reward_registry.h"

namespace clinrl::rewards {

std::vector<ScoreResult> Reward::ScoreGroup(
    const std::vector<const Trajectory*>& group, const json& params) const {
  std::vector<ScoreResult> out;
  out.reserve(group.size());
  for (const Trajectory* t : group) out.push_back(Score(*t, params));
  return out;
}

RewardRegistry::RewardRegistry()
    : Registry("reward plug-in",
               "reward plug-in '{name}' is not registered; registered: "
               "{known} (a plug-in from a shared library is loaded by "
               "listing the library in rewards.plugins)") {}

RewardRegistry& RewardRegistry::Global() {
  static RewardRegistry registry;
  return registry;
}

std::unique_ptr<Reward> RewardRegistry::Create(const std::string& name) const {
  return Get(name)();
}

}  // namespace clinrl::rewards

namespace clinrl {
template class Registry<rewards::RewardFactory>;
}  // namespace clinrl
