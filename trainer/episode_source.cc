#include "trainer/episode_source.h"

#include "core/monotonic_clock.h"
#include "rewards/composite_reward.h"

namespace clinrl::trainer {

double ScoreGroupsInProcess(std::vector<rollout::RolloutEpisode>& episodes,
                            int64_t group_size, int64_t reward_timeout_ms) {
  const double start = MonotonicSeconds();
  const size_t g_size = static_cast<size_t>(group_size);
  // Score group by group (group-level components see their group). An
  // episode whose reset failed has no reward spec: it scores 0 and is
  // reported under termination/env_error instead of failing the step.
  for (size_t first = 0; first < episodes.size(); first += g_size) {
    std::vector<size_t> members;
    std::vector<Trajectory> group;
    for (size_t i = first; i < std::min(episodes.size(), first + g_size); ++i) {
      if (episodes[i].trajectory.reward_spec.contains("components")) {
        members.push_back(i);
        group.push_back(episodes[i].trajectory);
      }
    }
    if (group.empty()) continue;
    const auto scored = rewards::ScoreGroup(group, {reward_timeout_ms});
    for (size_t k = 0; k < members.size(); ++k) {
      episodes[members[k]].trajectory.reward = scored[k];
    }
  }
  return MonotonicSeconds() - start;
}

LocalEpisodeSource::LocalEpisodeSource(policy::Transformer model,
                                       const policy::Tokenizer& tokenizer,
                                       envs::EnvClient& client,
                                       rollout::RolloutOptions options,
                                       int64_t reward_timeout_ms)
    : model_(model),
      worker_(model, tokenizer, client, options),
      reward_timeout_ms_(reward_timeout_ms) {}

ScoredEpisodes LocalEpisodeSource::Play(
    const std::vector<rollout::TaskRef>& tasks, uint64_t seed,
    int64_t policy_version) {
  ScoredEpisodes out;
  {
    torch::NoGradGuard no_grad;
    model_->eval();
    out.episodes = worker_.Run(tasks, seed, policy_version, &out.stats);
    model_->train();
  }
  out.reward_seconds = ScoreGroupsInProcess(
      out.episodes, worker_.options().group_size, reward_timeout_ms_);
  return out;
}

}  // namespace clinrl::trainer
