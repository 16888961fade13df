// From a step's scored episodes to the advantages the update trains on:
// episodes with a flagged reward are left out, each group's rewards become
// advantages (trainer.advantage), per reward component when asked
// (trainer.reward_normalization), and dynamic sampling (DAPO) leaves out the
// groups whose rewards are all equal.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/trajectory.h"
#include "trainer/group_advantages.h"

namespace clinrl::trainer {

struct EpisodeAdvantageOptions {
  AdvantageMode mode = AdvantageMode::kGrpo;
  // Each reward component's scores become advantages within the group on
  // their own, and the episode's advantage is their weighted sum
  // (multi-objective GRPO): a small, noisy cost term cannot drown a rare
  // large component. Off: the advantage of the weighted total.
  bool per_component = false;
  // Leave out the groups whose kept rewards are all equal (no signal).
  bool dynamic_sampling = false;
  // A component that counts in the advantages but not in that test: a
  // penalty that varies in every group (the KL in the reward) would make
  // every group look informative.
  std::string penalty_component;
};

// The component trainer.kl_in_reward adds to each reward.
inline constexpr const char* kKlPenaltyComponent = "kl_penalty";

struct EpisodeAdvantages {
  std::vector<double> advantages;  // one per episode; 0 where left out
  std::vector<size_t> kept;        // the episodes to train on, in order
  std::vector<int64_t> informative_groups;  // groups with reward variance
  int64_t flagged = 0;         // episodes left out for a flagged reward
  int64_t groups = 0;          // distinct groups
  int64_t dropped_groups = 0;  // left out by dynamic sampling
};

// A reward some component of which failed (timed out, threw, returned a bad
// result): the reward service records it as details.error. Its total is not
// a measurement, so the update must not train on it as if it were.
bool RewardFlagged(const RewardResult& reward);

// rewards[i] belongs to group group_ids[i]. Flagged rewards are left out of
// their group's statistics as well as the update. Per-component: every
// reward must have the same component names (the same task's spec); an
// episode of another shape is a BadRequest naming it.
EpisodeAdvantages ComputeEpisodeAdvantages(
    const std::vector<const RewardResult*>& rewards,
    const std::vector<int64_t>& group_ids,
    const EpisodeAdvantageOptions& options);

// trainer.reward_normalization: "total" or "per_component".
bool ParseRewardNormalization(const std::string& name);

}  // namespace clinrl::trainer
