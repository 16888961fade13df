// Reward plug-ins by name. Built-ins register next to their code:
//   CLINRL_REGISTER_REWARD(icd10, [] { return std::make_unique<Icd10Reward>();
//   });
// and shared libraries listed in `rewards.plugins` register from their own
// static initialisers when loaded (LoadRewardPlugin).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "rewards/reward.h"

namespace clinrl::rewards {

using RewardFactory = std::function<std::unique_ptr<Reward>()>;

class RewardRegistry {
 public:
  static RewardRegistry& Global();
  void Register(const std::string& name, RewardFactory factory);
  // Throws NotFound listing the registered names.
  std::unique_ptr<Reward> Create(const std::string& name) const;
  bool Has(const std::string& name) const;
  std::vector<std::string> Names() const;  // sorted

 private:
  std::vector<std::pair<std::string, RewardFactory>> factories_;
};

struct RegisterReward {
  RegisterReward(const char* name, RewardFactory factory) {
    RewardRegistry::Global().Register(name, std::move(factory));
  }
};

}  // namespace clinrl::rewards

#define CLINRL_REGISTER_REWARD(id, factory)                                 \
  static ::clinrl::rewards::RegisterReward clinrl_reward_registration_##id( \
      #id, factory)
