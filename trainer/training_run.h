// `clinrl train CONFIG`: the stages of a run (SFT on demonstrations, then
// GRPO) in one process, with evaluation on the validation split during
// training and on the test split at the end (greedy decoding), checkpoints
// every N steps, exact resume, metrics.jsonl, trajectories.jsonl and
// TensorBoard events in the run directory.
//
// Every random choice is derived from (run.seed, stage, step), never from a
// generator that advances across steps, so a run resumed from a checkpoint
// replays exactly the steps the uninterrupted run would have taken.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/clinrl_config.h"
#include "core/run_dir.h"
#include "trainer/run_evaluation.h"

namespace clinrl::policy {
class Tokenizer;
}
namespace clinrl::distributed {
class Communicator;
}

namespace clinrl::trainer {

class EpisodeSource;
struct RunState;

struct TrainingRunOptions {
  bool resume = false;  // continue from the latest checkpoint
  // With resume: this checkpoint (a step folder of the run) instead of the
  // newest; the newer ones are moved aside (run_checkpoint.h).
  std::string resume_from;
  // Config keys (or key prefixes) a resumed run may change although they
  // change training (resume_config.h); operational keys need no listing.
  std::vector<std::string> allow_config_change;
  int64_t stop_after = -1;  // stop (as if killed) after this many global steps
  bool final_eval = true;   // test-split evaluation and the summary table
  bool baselines = true;    // scripted random/oracle rows in the table
  // False: no policy is loaded (RunState::model and tokenizer stay null),
  // for evaluation through a chat endpoint only; Run() needs one.
  bool load_policy = true;
  // Called after every training step once its metrics (and any evaluation
  // of that step) are written, with the global step: e.g. to refresh a
  // report during training.
  std::function<void(int64_t global_step)> after_step;
  // Distributed runs: builds the source of GRPO episodes (rollout workers in
  // other processes, remote_episode_source.h) once the tokenizer exists, so
  // that it serves the workers from the start of the run. Empty: episodes
  // are played in this process.
  std::function<std::unique_ptr<EpisodeSource>(const policy::Tokenizer&)>
      episode_source;
  // Several learner ranks: this is learner rank 0 of `learner_comm`; the
  // other ranks run RunLearnerFollower (learner_group.h). Not owned; null
  // or one rank = one learner.
  distributed::Communicator* learner_comm = nullptr;
};

class TrainingRun {
 public:
  TrainingRun(ClinrlConfig config, TrainingRunOptions options);
  ~TrainingRun();

  // Runs the remaining stages; returns the evaluation table rows (none when
  // --stop-after stopped the run, or without the final evaluation).
  std::vector<EvalResult> Run();

  // Greedy evaluation of the current policy (or of the policy behind
  // `endpoint`) on `episodes` tasks of `split`.
  EvalResult Evaluate(
      const std::string& label, const std::string& split, int64_t episodes,
      const rollout::EndpointRolloutOptions* endpoint = nullptr);
  // `samples` episodes per task at `temperature`, with pass@k
  // (run_evaluation.h EvaluateSamples).
  EvalResult EvaluateSamples(
      const std::string& label, const std::string& split, int64_t episodes,
      int64_t samples, double temperature,
      const rollout::EndpointRolloutOptions* endpoint = nullptr);

  const RunDir& run_dir() const;
  // The table printed at the end of a run (run_evaluation.h).
  static std::string FormatTable(const std::vector<EvalResult>& rows);

 private:
  std::vector<EvalResult> RunStages();

  std::unique_ptr<RunState> run_;
};

}  // namespace clinrl::trainer
