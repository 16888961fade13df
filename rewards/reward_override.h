// rewards.overrides (docs/rewards.md): a run's changes to the reward spec
// the episodes of one env carry. A researcher adds a component (a
// shared-library plug-in, say) to a built-in env's reward, reweights the
// env's own, or replaces one, without touching the env.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "core/clinrl_config.h"

namespace clinrl::rewards {

// `spec` with `change` applied: a component named like one of the spec's
// replaces it in place, any other is appended; `weights` then set weights by
// name and `success`, when set, names the success component. Throws
// ConfigError naming `path` (rewards.overrides.<env>) for a weight or
// success of a component the result does not have, listing the ones it has.
nlohmann::json ApplyRewardOverride(const nlohmann::json& spec,
                                   const RewardOverride& change,
                                   const std::string& path);

// Checks what can be checked before any episode: each added component has
// the shape of a reward spec component, names a plug-in registered in this
// process (when `check_registry`: not when a reward server elsewhere scores)
// and has params that plug-in accepts; weights are finite. Throws
// ConfigError naming the field under rewards.overrides.<env>.
void CheckRewardOverrides(const std::map<std::string, RewardOverride>& all,
                          bool check_registry);

}  // namespace clinrl::rewards
