// Where the GRPO learner gets its scored episodes. The learner loop asks a
// source to play G episodes of each task of a step and tells it when the
// weights change; it does not know whether the episodes were played in this
// process or by rollout workers elsewhere (remote_episode_source.h).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "envs/env_client.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "rewards/trajectory_scorer.h"
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
  // Overlap (distributed.overlap): starts playing the next step's groups
  // now, with the weights workers hold, while the learner updates; the
  // next Play with the same tasks and seed collects them. A source that
  // cannot play ahead ignores it (Play then plays as usual).
  virtual void Prefetch(const std::vector<rollout::TaskRef>& tasks,
                        uint64_t seed, int64_t policy_version) {}
  // The learner's weights are now `policy_version` (called when the GRPO
  // stage starts and after every update).
  virtual void PolicyUpdated(const policy::Transformer& model,
                             int64_t policy_version) {}
  // The run failed with `reason`: a source that serves other processes
  // tells them, so each exits non-zero saying why instead of "run ended".
  virtual void RunFailed(const std::string& reason) {}
  // Each env's EnvSpec.tools by name, once the run has read the specs: a
  // source that rebuilds training sequences from trajectories renders the
  // same tools into them as the rollout did.
  virtual void SetEnvTools(std::map<std::string, nlohmann::json> env_tools) {}
};

// The single-process path: a RolloutWorker over the run's env client
// (in-process pool or env server), scored by the run's scorer (in-process
// rewards or a reward server).
class LocalEpisodeSource : public EpisodeSource {
 public:
  LocalEpisodeSource(policy::Transformer model,
                     const policy::Tokenizer& tokenizer,
                     envs::EnvClient& client, rollout::RolloutOptions options,
                     rewards::TrajectoryScorer& scorer);

  ScoredEpisodes Play(const std::vector<rollout::TaskRef>& tasks, uint64_t seed,
                      int64_t policy_version) override;

 private:
  policy::Transformer model_;
  rollout::RolloutWorker worker_;
  rewards::TrajectoryScorer& scorer_;
};

}  // namespace clinrl::trainer
