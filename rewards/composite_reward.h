// Composite rewards: the weighted sum of the named components of a task's
// reward spec (reward.h), each component reported on its own. Components run
// with a deadline on a shared executor, so a plug-in that throws or hangs
// becomes an error component and a flagged result, never a lost trajectory.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/trajectory.h"

namespace clinrl::rewards {

struct ScoreOptions {
  // Per-component deadline; a component's own "timeout_ms" in the spec
  // overrides it. 0 runs every component inline on the calling thread, with
  // no deadline (for trusted, fast plug-ins in tight loops).
  int64_t timeout_ms = 5000;
};

// Scores one trajectory against trajectory.reward_spec. A malformed spec
// (missing components, unknown plug-in, params a plug-in rejects) throws
// BadRequest naming the field; a plug-in that fails at scoring time yields a
// component with score 0 and details.error = {code, message}.
RewardResult ScoreTrajectory(const Trajectory& trajectory,
                             const ScoreOptions& options = {});
// Same, without copying the trajectory (the server already owns one).
RewardResult ScoreTrajectory(std::shared_ptr<const Trajectory> trajectory,
                             const ScoreOptions& options = {});

// Scores a GRPO group: per-trajectory components as above, group-level
// components (Reward::group_level()) once over the whole group. Every
// trajectory of the group must carry the same component list.
std::vector<RewardResult> ScoreGroup(const std::vector<Trajectory>& group,
                                     const ScoreOptions& options = {});
std::vector<RewardResult> ScoreGroup(
    std::shared_ptr<const std::vector<Trajectory>> group,
    const ScoreOptions& options = {});

// True when any component failed (details.error present): the trajectory is
// flagged and its total should not be trusted as a training signal.
bool IsFlagged(const RewardResult& result);
// The failed components as [{"component", "code", "message"}].
nlohmann::json ComponentErrors(const RewardResult& result);
// The spec's "success" component scored >= 1 (false when there is none).
bool IsSuccess(const RewardResult& result, const nlohmann::json& reward_spec);

}  // namespace clinrl::rewards
