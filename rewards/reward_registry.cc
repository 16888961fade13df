#include "rewards/reward_registry.h"

#include <algorithm>

#include "core/error.h"

namespace clinrl::rewards {

std::vector<ScoreResult> Reward::ScoreGroup(
    const std::vector<const Trajectory*>& group, const json& params) const {
  std::vector<ScoreResult> out;
  out.reserve(group.size());
  for (const Trajectory* t : group) out.push_back(Score(*t, params));
  return out;
}

RewardRegistry& RewardRegistry::Global() {
  static RewardRegistry registry;
  return registry;
}

void RewardRegistry::Register(const std::string& name, RewardFactory factory) {
  CLINRL_CHECK(!Has(name), "reward '{}' registered twice", name);
  factories_.emplace_back(name, std::move(factory));
}

bool RewardRegistry::Has(const std::string& name) const {
  return std::any_of(factories_.begin(), factories_.end(),
                     [&](const auto& f) { return f.first == name; });
}

std::vector<std::string> RewardRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& f : factories_) names.push_back(f.first);
  std::sort(names.begin(), names.end());
  return names;
}

std::unique_ptr<Reward> RewardRegistry::Create(const std::string& name) const {
  for (const auto& f : factories_) {
    if (f.first == name) return f.second();
  }
  std::string known;
  for (const auto& n : Names()) known += (known.empty() ? "" : ", ") + n;
  throw NotFound(
      fmt::format("reward plug-in '{}' is not registered; registered: {}", name,
                  known.empty() ? "(none)" : known));
}

}  // namespace clinrl::rewards
