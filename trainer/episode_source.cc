#include "trainer/episode_source.h"

namespace clinrl::trainer {

LocalEpisodeSource::LocalEpisodeSource(policy::Transformer model,
                                       const policy::Tokenizer& tokenizer,
                                       envs::EnvClient& client,
                                       rollout::RolloutOptions options,
                                       rewards::TrajectoryScorer& scorer)
    : model_(model),
      worker_(model, tokenizer, client, options),
      scorer_(scorer) {}

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
  std::vector<Trajectory*> trajectories;
  for (rollout::RolloutEpisode& e : out.episodes) {
    trajectories.push_back(&e.trajectory);
  }
  out.reward_seconds = rewards::ScoreByGroup(
      trajectories, worker_.options().group_size, scorer_);
  return out;
}

}  // namespace clinrl::trainer
