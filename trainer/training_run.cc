#include "trainer/training_run.h"

#include <exception>

#include "core/error.h"
#include "core/log.h"
#include "trainer/grpo_stage.h"
#include "trainer/run_state.h"
#include "trainer/sft_stage.h"

namespace clinrl::trainer {

namespace {

// The other learner ranks wait for rank 0's next command: tell them when the
// run ends. (A failure instead ends the whole job: MPI_Abort.)
struct FollowersDone {
  LearnerGroup* learners;
  ~FollowersDone() {
    if (!learners || std::uncaught_exceptions() > 0) return;
    try {
      learners->Done();
    } catch (const std::exception& e) {
      CLINRL_LOG_ERROR("telling the other learner ranks to stop: {}", e.what());
    }
  }
};

}  // namespace

TrainingRun::TrainingRun(ClinrlConfig config, TrainingRunOptions options)
    : run_(OpenRun(std::move(config), std::move(options))) {}

TrainingRun::~TrainingRun() = default;

const RunDir& TrainingRun::run_dir() const { return run_->run_dir; }

std::vector<EvalResult> TrainingRun::Run() {
  try {
    return RunStages();
  } catch (const std::exception& e) {
    // The other processes of a distributed run hear why it ended.
    if (run_->remote_episodes) run_->remote_episodes->RunFailed(e.what());
    throw;
  }
}

std::vector<EvalResult> TrainingRun::RunStages() {
  RunState& run = *run_;
  CLINRL_CHECK(run.model, "training without a policy loaded ({})",
               "TrainingRunOptions::load_policy is false");
  const FollowersDone followers_done{run.learners.get()};
  const std::vector<std::string>& stages = run.config.trainer.stages;
  for (; run.progress.stage_index < stages.size(); ++run.progress.stage_index) {
    const std::string& stage = stages[run.progress.stage_index];
    const bool stage_done =
        stage == "sft" ? RunSftStage(run) : RunGrpoStage(run);
    if (!stage_done) return {};  // --stop-after
    run.progress.stage_step = 0;
    run.trainer.reset();
  }
  if (!run.options.final_eval) return {};
  return FinalTable(run);
}

EvalResult TrainingRun::Evaluate(
    const std::string& label, const std::string& split, int64_t episodes,
    const rollout::EndpointRolloutOptions* endpoint) {
  return trainer::Evaluate(*run_, label, split, episodes, endpoint);
}

EvalResult TrainingRun::EvaluateSamples(
    const std::string& label, const std::string& split, int64_t episodes,
    int64_t samples, double temperature,
    const rollout::EndpointRolloutOptions* endpoint) {
  return trainer::EvaluateSamples(*run_, label, split, episodes, samples,
                                  temperature, endpoint);
}

std::string TrainingRun::FormatTable(const std::vector<EvalResult>& rows) {
  return trainer::FormatTable(rows);
}

}  // namespace clinrl::trainer
