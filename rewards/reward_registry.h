// Reward plug-ins by name. Built-ins register next to their code:
//   CLINRL_REGISTER_REWARD(icd10, [] { return std::make_unique<Icd10Reward>();
//   });
// and shared libraries listed in `rewards.plugins` register from their own
// static initialisers when loaded (LoadRewardPlugin).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/registry.h"
#include "rewards/reward.h"

namespace clinrl::rewards {

using RewardFactory = std::function<std::unique_ptr<Reward>()>;

class RewardRegistry : public Registry<RewardFactory> {
 public:
  RewardRegistry();
  static RewardRegistry& Global();
  // Throws NotFound listing the registered names.
  std::unique_ptr<Reward> Create(const std::string& name) const;
};

}  // namespace clinrl::rewards

// Instantiated once, in reward_registry.cc: a plug-in library compiles
// against this header but must use the executable's registry code, as it
// uses the executable's registry (rewards/plugin_loader.h).
namespace clinrl {
extern template class Registry<rewards::RewardFactory>;
}  // namespace clinrl

#define CLINRL_REGISTER_REWARD(id, factory)                            \
  static ::clinrl::StaticRegistration clinrl_reward_registration_##id( \
      [] { ::clinrl::rewards::RewardRegistry::Global().Add(#id, factory); })
