// Where finished trajectories get their rewards: one interface for the
// in-process composite reward and the reward server (reward_client.h), and
// the one function every caller uses to score played episodes group by group
// (the learner, the rollout service, evaluation, `clinrl env play`).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clinrl_config.h"
#include "core/trajectory.h"

namespace clinrl::rewards {

class TrajectoryScorer {
 public:
  virtual ~TrajectoryScorer() = default;
  // One result per trajectory of `group`, in order; group-level components
  // see the whole group. A malformed reward spec throws BadRequest.
  virtual std::vector<RewardResult> ScoreGroup(
      const std::vector<Trajectory>& group) = 0;

  // rewards.overrides: ScoreByGroup applies the one of each trajectory's
  // env to its reward spec, in place, so the spec a trajectory is recorded
  // with is the one it was scored by.
  void SetOverrides(std::map<std::string, RewardOverride> overrides) {
    overrides_ = std::move(overrides);
  }
  void ApplyOverride(Trajectory& trajectory) const;

 private:
  std::map<std::string, RewardOverride> overrides_;
};

// rewards.endpoint set: a client of that reward server (the request timeout
// is the server's concern). Otherwise the composite reward in this process,
// each component with rewards.timeout_ms. Either applies rewards.overrides.
std::unique_ptr<TrajectoryScorer> MakeTrajectoryScorer(
    const RewardsConfig& config);

// Scores `trajectories` as groups of `group_size` consecutive ones (1: each on
// its own). A trajectory without a reward spec (its reset failed) keeps
// reward 0 and is left out of its group. Returns the seconds spent.
double ScoreByGroup(const std::vector<Trajectory*>& trajectories,
                    int64_t group_size, TrajectoryScorer& scorer);

}  // namespace clinrl::rewards
