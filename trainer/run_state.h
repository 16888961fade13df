// What the stages of a `clinrl train` run share: the config, the policy and
// its tokenizer, the env client, the reward scorer, the run's writers and the
// progress a checkpoint saves. OpenRun builds it; the SFT and GRPO stages
// (sft_stage.h, grpo_stage.h), checkpointing (run_checkpoint.h) and
// evaluation (run_evaluation.h) work on it; TrainingRun::Run strings them
// together.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/clinrl_config.h"
#include "core/jsonl.h"
#include "core/run_dir.h"
#include "envs/env_client.h"
#include "envs/env_pool.h"
#include "policy/tokenizer.h"
#include "policy/transformer.h"
#include "rewards/trajectory_scorer.h"
#include "trainer/episode_source.h"
#include "trainer/learner_group.h"
#include "trainer/metrics_logger.h"
#include "trainer/policy_trainer.h"
#include "trainer/tfevents_writer.h"
#include "trainer/training_run.h"

namespace clinrl::trainer {

// Where the run is; saved in every checkpoint, restored on resume.
struct RunProgress {
  size_t stage_index = 0;
  int64_t stage_step = 0;  // steps done in the current stage
  int64_t global_step = 0;
  int64_t policy_version = 0;                      // GRPO updates so far
  nlohmann::json evals = nlohmann::json::array();  // EvalResult rows so far
  // The SFT stage keeps its best validation weights (and their accuracy).
  double best_sft_accuracy = -1;
  std::map<std::string, torch::Tensor> best_sft_weights;
};

struct RunState {
  ClinrlConfig config;
  TrainingRunOptions options;
  RunDir run_dir;
  std::unique_ptr<policy::Tokenizer> tokenizer;
  policy::Transformer model{nullptr};
  // The frozen KL anchor of the GRPO stage (null without trainer.kl_coef).
  policy::Transformer reference{nullptr};

  // The envs: an in-process pool (its registry, when it plays envs served
  // elsewhere), or a remote env server.
  std::unique_ptr<envs::EnvRegistry> env_registry;
  std::unique_ptr<envs::EnvPool> env_pool;
  std::unique_ptr<envs::EnvClient> remote_env;
  envs::EnvClient* env = nullptr;
  // Every env of the run, in config order: one, or a mixture (envs with
  // weights). The first is the one SFT demonstrations and the scripted
  // baselines play (env_name, env_endpoint, env_options, train_tasks,
  // validation_split are its).
  struct MixtureEnv {
    std::string name;
    double weight = 1.0;
    int64_t train_tasks = 0;
    std::string validation_split = "validation";
    // The spec's tools, rendered into the env's training sequences.
    nlohmann::json tools = nlohmann::json::array();
  };
  std::vector<MixtureEnv> mixture;
  // Each mixture env's tools by name, for rollout::EpisodeTokenizer.
  std::map<std::string, nlohmann::json> EnvTools() const;
  std::string env_name;
  std::string env_endpoint;  // "" = the in-process pool
  nlohmann::json env_options = nlohmann::json::object();
  int64_t train_tasks = 0;
  // "validation" when the env has that split; otherwise the train split
  // (never the test split, which stays held out).
  std::string validation_split = "validation";
  // In-process rewards, or a client of rewards.endpoint.
  std::unique_ptr<rewards::TrajectoryScorer> scorer;

  std::unique_ptr<MetricsLogger> metrics;
  std::unique_ptr<TfEventsWriter> events;
  std::unique_ptr<JsonlWriter> trajectories;

  // The current stage's trainer (null between stages).
  std::unique_ptr<PolicyTrainer> trainer;
  // GRPO episodes from rollout workers elsewhere; null = played here.
  std::unique_ptr<EpisodeSource> remote_episodes;
  // Several learner ranks: rank 0's command channel to the others.
  std::unique_ptr<LearnerGroup> learners;
  // One learner continuing a data-parallel run's sharded optimizer.
  std::unique_ptr<distributed::Communicator> single_rank;

  RunProgress progress;
  // The checkpoint --resume continues from, chosen once by RestoreProgress
  // ("" = a fresh run): the stages' optimizer state and the KL reference
  // must come from the same checkpoint as the weights, whatever checkpoints
  // the run writes or skips.
  std::string resume_checkpoint;

  // Where this process plays episodes, for errors: "the env server at
  // <endpoint> (role env_server)" or "the in-process env pool".
  std::string EnvService() const;
  // A seed derived from (run.seed, what, step), never from a generator that
  // advances across steps, so a resumed run replays the same draws.
  uint64_t Seed(const std::string& what, int64_t step) const;
  // Writes a finished step's metrics (metrics.jsonl, TensorBoard, console).
  void LogStep(const std::string& stage,
               const std::map<std::string, double>& metrics);
  // Runs one optimizer step of `stage`; a NonFiniteError it throws is
  // rethrown naming the stage step and the run's global step.
  std::map<std::string, double> TrainStep(
      const std::string& stage,
      const std::function<std::map<std::string, double>()>& step) const;
  // Whether the step just finished saves a checkpoint: every
  // trainer.checkpoint_every global steps, and at the end of each stage.
  bool CheckpointDue(bool stage_done) const;
  // Calls TrainingRunOptions::after_step; then true when --stop-after is
  // reached and the run stops as if killed.
  bool AfterStepStop() const;
};

// Builds the run's state from its config: run directory, policy, env, scorer,
// writers, and on --resume the progress of the newest checkpoint.
std::unique_ptr<RunState> OpenRun(ClinrlConfig config,
                                  TrainingRunOptions options);

}  // namespace clinrl::trainer
