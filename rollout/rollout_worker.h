// The rollout worker: plays G episodes for each task of a batch (GRPO
// groups), all advanced together. Each round, every episode awaiting the
// policy gets its next turn from one batched generation call; the actions go
// to the env server asynchronously and the replies are collected as they
// complete; finished episodes leave the batch. Policy turns keep their exact
// sampled token ids and log-probs. An episode that runs out of the worker's
// own budgets (tokens per episode, policy turns) is ended by the env's
// truncate op rather than just closed, so it carries the env's final info
// and is scored like any other (docs/envs.md, "Episodes the runtime cuts").
//
// Generation runs on one GenerationEngine per batch (continuous batching
// over a paged KV cache): an episode's turns extend one engine sequence, so
// each turn computes only its new tokens, and the G episodes of a task share
// their prompt's blocks. Two schedules (rollout.schedule):
//   synchronous (default): rounds. Every episode awaiting the policy starts
//     its turn, the engine runs until all of them end, then the actions go
//     out and every reply is collected. The steps' composition, and with it
//     every sampled token, depends only on the seed: a resumed run replays
//     the same episodes.
//   continuous: an episode whose env replied starts its next turn at the
//     next engine step, and a finished turn's action goes out at once, so
//     the batch stays full and env latency overlaps generation. Each
//     episode still samples from its own stream, but a step's rounding
//     depends on which episodes share it, which depends on reply timing:
//     tokens can differ between runs of the same seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/clinrl_config.h"
#include "core/trajectory.h"
#include "envs/env_client.h"
#include "policy/sampler.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "rollout/episode_tokens.h"

namespace clinrl::rollout {

struct TaskRef {
  std::string env;
  std::string split = "train";
  int64_t task_index = 0;
  nlohmann::json options = nlohmann::json::object();  // reset options
};

struct RolloutOptions {
  int64_t group_size = 8;
  int64_t max_turns = 12;  // policy turns per episode
  int64_t max_tokens_per_turn = 64;
  int64_t max_tokens_per_episode = 1024;  // whole sequence, prompt included
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  uint64_t seed = 0;
  int64_t reply_timeout_ms = 60000;
  bool continuous = false;  // rollout.schedule "continuous"
};

// The options a run config's `rollout` section sets (seed and reply timeout
// keep their defaults).
RolloutOptions RolloutOptionsFromConfig(const RolloutConfig& config);

struct RolloutEpisode {
  Trajectory trajectory;
  EpisodeTokens tokens;  // the training sequence, equal to FromTrajectory
};

struct RolloutStats {
  double seconds = 0;
  double generate_seconds = 0;
  double env_seconds = 0;
  int64_t generated_tokens = 0;
  int64_t prompt_tokens = 0;         // over every turn's prompt
  int64_t cached_prompt_tokens = 0;  // of those, reused from earlier turns
  int64_t rounds = 0;  // synchronous rounds, or engine steps when continuous
  int64_t episodes = 0;

  // Adds every field of `other` (rounds of one step, or workers' results).
  void Add(const RolloutStats& other) {
    seconds += other.seconds;
    generate_seconds += other.generate_seconds;
    env_seconds += other.env_seconds;
    generated_tokens += other.generated_tokens;
    prompt_tokens += other.prompt_tokens;
    cached_prompt_tokens += other.cached_prompt_tokens;
    rounds += other.rounds;
    episodes += other.episodes;
  }
};

class RolloutWorker {
 public:
  RolloutWorker(policy::Transformer model, const policy::Tokenizer& tokenizer,
                envs::EnvClient& client, RolloutOptions options);

  // Plays group_size episodes of each task. `batch_seed` makes the sampling
  // of this batch reproducible (e.g. derived from the run seed and step).
  // Group ids are "<batch_seed>-<task position>".
  std::vector<RolloutEpisode> Run(const std::vector<TaskRef>& tasks,
                                  uint64_t batch_seed, int64_t policy_version,
                                  RolloutStats* stats = nullptr);

  const RolloutOptions& options() const { return options_; }
  void set_options(const RolloutOptions& options) { options_ = options; }

 private:
  // Asks the env server for the spec of each env of `tasks` not met before,
  // so that its episodes are rendered with its tools (EnvSpec.tools).
  void LearnEnvTools(const std::vector<TaskRef>& tasks);

  policy::Transformer model_;
  const policy::Tokenizer& tokenizer_;
  EpisodeTokenizer episode_tokenizer_;
  envs::EnvClient& client_;
  RolloutOptions options_;
};

}  // namespace clinrl::rollout
