#include "rewards/trajectory_scorer.h"

#include <algorithm>

#include "core/error.h"
#include "core/monotonic_clock.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_client.h"

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

std::unique_ptr<TrajectoryScorer> MakeTrajectoryScorer(
    const RewardsConfig& config) {
  if (!config.endpoint.empty()) {
    return std::make_unique<RemoteScorer>(config.endpoint);
  }
  return std::make_unique<InProcessScorer>(config.timeout_ms);
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
