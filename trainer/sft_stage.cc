#include "trainer/sft_stage.h"

#include <vector>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "core/seeds.h"
#include "rollout/episode_tokens.h"
#include "rollout/scripted_baselines.h"
#include "trainer/run_checkpoint.h"
#include "trainer/run_evaluation.h"

namespace clinrl::trainer {

using nlohmann::json;

namespace {

// The demonstrations as training sequences: trainer.sft.demos, or episodes
// of sft.demo_policy on the train split.
std::vector<TrainSequence> Demonstrations(const RunState& run) {
  const SftConfig& sft = run.config.trainer.sft;
  std::vector<Trajectory> demos;
  if (!sft.demos.empty()) {
    ReadJsonl(sft.demos, [&](const json& j, int64_t line) {
      demos.push_back(TrajectoryFromJson(j));
      // Another env's transcripts would teach another action grammar.
      const std::string& env = demos.back().env;
      std::string names;
      bool ours = false;
      for (const RunState::MixtureEnv& e : run.mixture) {
        ours = ours || e.name == env;
        names += (names.empty() ? "'" : ", '") + e.name + "'";
      }
      if (!ours) {
        throw ConfigError(fmt::format(
            "trainer.sft.demos: {} line {} is an episode of env '{}', "
            "expected the run's env {}",
            sft.demos, line, env, names));
      }
    });
  } else {
    rollout::ScriptedRunOptions scripted;
    scripted.env = run.env_name;
    scripted.endpoint = run.env_endpoint;
    scripted.env_options = run.env_options;
    scripted.policy = sft.demo_policy;
    scripted.policy_options = sft.demo_policy_options;
    scripted.split = "train";
    scripted.episodes = sft.demo_episodes;
    scripted.seed = run.Seed("demos", 0);
    demos = rollout::PlayScriptedEpisodes(scripted);
  }
  if (demos.empty()) {
    throw ConfigError("trainer.sft: no demonstrations to train on");
  }
  const rollout::EpisodeTokenizer episode_tokenizer(*run.tokenizer,
                                                    run.EnvTools());
  std::vector<TrainSequence> sequences;
  for (const Trajectory& demo : demos) {
    const rollout::EpisodeTokens tokens =
        episode_tokenizer.FromDemonstration(demo);
    TrainSequence sequence;
    sequence.ids = tokens.ids;
    sequence.loss_mask = tokens.loss_mask;
    sequence.rollout_logprobs = tokens.logprobs;
    sequences.push_back(std::move(sequence));
  }
  return sequences;
}

// The batch of SFT step `step`: a seeded draw, independent of history.
std::vector<TrainSequence> DrawBatch(const RunState& run,
                                     const std::vector<TrainSequence>& demos,
                                     int64_t step) {
  uint64_t h = run.Seed("sft", step);
  std::vector<TrainSequence> batch;
  for (int64_t i = 0; i < run.config.trainer.sft.batch_size; ++i) {
    h = SplitMix64(h);
    batch.push_back(demos[h % demos.size()]);
  }
  return batch;
}

// Validation; the best weights so far become the SFT policy.
void Validate(RunState& run) {
  const EvalResult result = Evaluate(run, "sft", run.validation_split,
                                     run.config.eval.validation_episodes);
  RecordEval(run, result);
  const double accuracy = result.metrics.count("accuracy")
                              ? result.metrics.at("accuracy")
                              : result.metrics.at("reward/mean");
  RunProgress& progress = run.progress;
  if (accuracy > progress.best_sft_accuracy) {
    progress.best_sft_accuracy = accuracy;
    progress.best_sft_weights.clear();
    for (const auto& p : run.model->named_parameters()) {
      progress.best_sft_weights[p.key()] = p.value().detach().clone();
    }
  }
}

void KeepBestWeights(RunState& run) {
  RunProgress& progress = run.progress;
  if (!progress.best_sft_weights.empty()) {
    torch::NoGradGuard no_grad;
    for (auto& p : run.model->named_parameters()) {
      p.value().copy_(progress.best_sft_weights.at(p.key()));
    }
    CLINRL_LOG_INFO("SFT: kept the best validation weights (accuracy {:.3f})",
                    progress.best_sft_accuracy);
  }
  progress.best_sft_weights.clear();
}

}  // namespace

bool RunSftStage(RunState& run) {
  const SftConfig& sft = run.config.trainer.sft;
  RunProgress& progress = run.progress;
  const std::vector<TrainSequence> demos = Demonstrations(run);
  StartStage(run, "sft");
  while (progress.stage_step < sft.steps) {
    std::vector<TrainSequence> batch =
        DrawBatch(run, demos, progress.stage_step);
    if (run.learners) batch = run.learners->SendBatch("sft", batch, 0);
    const std::map<std::string, double> metrics =
        run.TrainStep("sft", [&] { return run.trainer->SftStep(batch); });
    ++progress.stage_step;
    ++progress.global_step;
    run.LogStep("sft", metrics);
    const bool stage_done = progress.stage_step == sft.steps;
    if ((sft.eval_every > 0 && progress.stage_step % sft.eval_every == 0) ||
        stage_done) {
      Validate(run);
    }
    if (run.CheckpointDue(stage_done)) SaveRunCheckpoint(run, "sft");
    if (run.AfterStepStop()) return false;
  }
  KeepBestWeights(run);
  if (run.options.final_eval) {
    RecordEval(run,
               Evaluate(run, "sft", "test", run.config.eval.test_episodes));
  }
  return true;
}

}  // namespace clinrl::trainer
