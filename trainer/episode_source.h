// Where the GRPO learner gets its scored episodes. The learner loop asks a
// source to play G episodes of each task of a step and tells it when the
// weights change; it does not know whether the episodes were played in this
// process or by rollout workers elsewhere (remote_episode_source.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "envs/env_client.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "rollout/rollout_worker.h"

namespace clinrl::trainer {

struct ScoredEpisodes {
  // group_size episodes per task, in task order: group g is episodes
  // [g * G, (g + 1) * G). Each trajectory carries the policy version that
  // sampled it and its reward (0 when the env gave no reward spec).
  std::vector<rollout::RolloutEpisode> episodes;
  rollout::RolloutStats stats;
  double reward_seconds = 0;
  std::map<std::string, double> metrics;  // source-specific extras
};

class EpisodeSource {
 public:
  virtual ~EpisodeSource() = default;
  // Plays and scores the episodes of one step. `seed` makes the step's
  // sampling reproducible; `policy_version` is the learner's version now.
  virtual ScoredEpisodes Play(const std::vector<rollout::TaskRef>& tasks,
                              uint64_t seed, int64_t policy_version) = 0;
  // The learner's weights are now `policy_version` (called when the GRPO
  // stage starts and after every update).
  virtual void PolicyUpdated(const policy::Transformer& model,
                             int64_t policy_version) {}
};

// Today's single-process path: a RolloutWorker over the run's env client
// (in-process pool or env server), rewards scored in this process.
class LocalEpisodeSource : public EpisodeSource {
 public:
  LocalEpisodeSource(policy::Transformer model,
                     const policy::Tokenizer& tokenizer,
                     envs::EnvClient& client, rollout::RolloutOptions options,
                     int64_t reward_timeout_ms);

  ScoredEpisodes Play(const std::vector<rollout::TaskRef>& tasks, uint64_t seed,
                      int64_t policy_version) override;

 private:
  policy::Transformer model_;
  rollout::RolloutWorker worker_;
  int64_t reward_timeout_ms_;
};

// Scores each group of `episodes` (group_size consecutive episodes) in this
// process, group-level components seeing their group. Episodes without a
// reward spec (their reset failed) keep reward 0. Returns the seconds spent.
double ScoreGroupsInProcess(std::vector<rollout::RolloutEpisode>& episodes,
                            int64_t group_size, int64_t reward_timeout_ms);

}  // namespace clinrl::trainer
