#include "rewards/trajectory_scorer.h"

#include <algorithm>

#include "core/error.h"
#include "core/monotonic_clock.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_client.h"
#include "rewards/reward_override.h"

namespace clinrl::rewards {
namespace {

class InProcessScorer : public TrajectoryScorer {
 public:
  explicit InProcessScorer(int64_t timeout_ms) : options_{timeout_ms} {}
  std::vector<RewardResult> ScoreGroup(
      const std::vector<Trajectory>& group) override {
    return rewards::ScoreGroup(group, options_);
  }

 private:
  ScoreOptions options_;
};

class RemoteScorer : public TrajectoryScorer {
 public:
  explicit RemoteScorer(const std::string& endpoint)
      : client_(RewardClientOptions{endpoint}) {}
  std::vector<RewardResult> ScoreGroup(
      const std::vector<Trajectory>& group) override {
    return client_.ScoreGroup(group);
  }

 private:
  RewardClient client_;
};

}  // namespace

void TrajectoryScorer::ApplyOverride(Trajectory& trajectory) const {
  auto it = overrides_.find(trajectory.env);
  if (it == overrides_.end()) return;
  trajectory.reward_spec = ApplyRewardOverride(
      trajectory.reward_spec, it->second, "rewards.overrides." + it->first);
}

std::unique_ptr<TrajectoryScorer> MakeTrajectoryScorer(
    const RewardsConfig& config) {
  std::unique_ptr<TrajectoryScorer> scorer;
  if (!config.endpoint.empty()) {
    scorer = std::make_unique<RemoteScorer>(config.endpoint);
  } else {
    scorer = std::make_unique<InProcessScorer>(config.timeout_ms);
  }
  scorer->SetOverrides(config.overrides);
  return scorer;
}

double ScoreByGroup(const std::vector<Trajectory*>& trajectories,
                    int64_t group_size, TrajectoryScorer& scorer) {
  if (group_size < 1) {
    throw BadRequest(
        fmt::format("group_size: expected a number >= 1, got {}", group_size));
  }
  const double start = MonotonicSeconds();
  const size_t size = static_cast<size_t>(group_size);
  for (size_t first = 0; first < trajectories.size(); first += size) {
    std::vector<Trajectory*> members;
    std::vector<Trajectory> group;
    const size_t end = std::min(trajectories.size(), first + size);
    for (size_t i = first; i < end; ++i) {
      // An episode whose reset failed has no reward spec: it scores 0 and
      // is reported under termination/env_error instead of failing the step.
      if (trajectories[i]->reward_spec.contains("components")) {
        scorer.ApplyOverride(*trajectories[i]);
        members.push_back(trajectories[i]);
        group.push_back(*trajectories[i]);
      }
    }
    if (group.empty()) continue;
    const std::vector<RewardResult> scored = scorer.ScoreGroup(group);
    for (size_t k = 0; k < members.size(); ++k) {
      members[k]->reward = scored.at(k);
    }
  }
  return MonotonicSeconds() - start;
}

}  // namespace clinrl::rewards
