#include "trainer/grpo_stage.h"

#include <cmath>
#include <vector>

#include "core/monotonic_clock.h"
#include "core/seeds.h"
#include "rollout/rollout_worker.h"
#include "trainer/episode_summary.h"
#include "trainer/group_advantages.h"
#include "trainer/run_checkpoint.h"
#include "trainer/run_evaluation.h"

namespace clinrl::trainer {

using nlohmann::json;

namespace {

// rollout.tasks_per_step train tasks, a seeded draw independent of history.
std::vector<rollout::TaskRef> DrawTasks(const RunState& run, uint64_t seed) {
  std::vector<rollout::TaskRef> tasks;
  uint64_t h = seed;
  for (int64_t i = 0; i < run.config.rollout.tasks_per_step; ++i) {
    h = SplitMix64(h);
    const uint64_t task = h % static_cast<uint64_t>(run.train_tasks);
    tasks.push_back(
        {run.env_name, "train", static_cast<int64_t>(task), json::object()});
  }
  return tasks;
}

// How fast the episodes were played, and where the step's time went.
void AddRolloutMetrics(const ScoredEpisodes& played,
                       std::map<std::string, double>* metrics) {
  const rollout::RolloutStats& stats = played.stats;
  auto& m = *metrics;
  m["throughput/rollout_tokens_per_s"] =
      stats.generate_seconds > 0
          ? stats.generated_tokens / stats.generate_seconds
          : 0.0;
  if (stats.prompt_tokens > 0) {
    // Prompt tokens whose keys and values were carried from earlier turns
    // instead of being prefilled again.
    m["rollout/cached_prompt_frac"] =
        static_cast<double>(stats.cached_prompt_tokens) /
        static_cast<double>(stats.prompt_tokens);
  }
  m["time/rollout_s"] = stats.seconds;
  m["time/reward_s"] = played.reward_seconds;
}

// Every trainer.trajectory_sample_every-th episode of global step `step`,
// for review.
void SampleTrajectories(RunState& run,
                        const std::vector<rollout::RolloutEpisode>& episodes,
                        int64_t step) {
  const int64_t every = run.config.trainer.trajectory_sample_every;
  if (every <= 0) return;
  for (size_t i = 0; i < episodes.size(); i += static_cast<size_t>(every)) {
    json line = ToJson(episodes[i].trajectory);
    line["step"] = step;
    run.trajectories->Write(line);
  }
}

}  // namespace

std::map<std::string, double> GrpoStep(RunState& run, EpisodeSource& source) {
  const TrainerConfig& trainer_config = run.config.trainer;
  RunProgress& progress = run.progress;
  const double step_start = MonotonicSeconds();

  // Tasks: each is played group_size times.
  const uint64_t seed = run.Seed("grpo", progress.stage_step);
  const std::vector<rollout::TaskRef> tasks = DrawTasks(run, seed);

  // Play and score, here or on rollout workers: group g is episodes
  // [g * G, (g + 1) * G), each with its reward and sampling version.
  const ScoredEpisodes played =
      source.Play(tasks, seed, progress.policy_version);
  const std::vector<rollout::RolloutEpisode>& episodes = played.episodes;
  const size_t group_size = static_cast<size_t>(run.config.rollout.group_size);
  std::vector<double> rewards;
  std::vector<int64_t> groups;
  std::vector<const Trajectory*> trajectories;
  for (size_t i = 0; i < episodes.size(); ++i) {
    rewards.push_back(episodes[i].trajectory.reward.total);
    groups.push_back(static_cast<int64_t>(i / group_size));
    trajectories.push_back(&episodes[i].trajectory);
  }
  StopOnEnvErrors(trajectories, trainer_config.max_env_error_fraction,
                  fmt::format("grpo step {}", progress.stage_step + 1),
                  run.remote_episodes
                      ? "the env servers of the rollout workers (role "
                        "env_server)"
                      : run.EnvService());
  std::map<std::string, double> metrics = SummarizeEpisodes(trajectories);

  // Advantages within each group. Dynamic sampling (DAPO) drops the groups
  // whose rewards are all equal: they carry no gradient.
  const std::vector<double> advantages = GroupAdvantages(
      rewards, groups, ParseAdvantageMode(trainer_config.advantage));
  std::vector<size_t> kept;
  int64_t dropped_groups = 0;
  int64_t total_groups = static_cast<int64_t>(tasks.size());
  if (trainer_config.dynamic_sampling) {
    kept =
        KeepInformativeGroups(rewards, groups, &dropped_groups, &total_groups);
  } else {
    for (size_t i = 0; i < episodes.size(); ++i) kept.push_back(i);
  }

  // The batch. Each sequence keeps the version that sampled it: older than
  // the learner's when a rollout worker lagged, which the truncated
  // importance weights of the GRPO loss correct.
  std::vector<TrainSequence> batch;
  double advantage_sum = 0, advantage_abs = 0;
  for (size_t i : kept) {
    const rollout::EpisodeTokens& tokens = episodes[i].tokens;
    TrainSequence sequence;
    sequence.ids = tokens.ids;
    sequence.loss_mask = tokens.loss_mask;
    sequence.rollout_logprobs = tokens.logprobs;
    sequence.advantage = advantages[i];
    sequence.policy_version = episodes[i].trajectory.policy_version;
    batch.push_back(std::move(sequence));
    advantage_sum += advantages[i];
    advantage_abs += std::fabs(advantages[i]);
  }

  // The update, then the new weights to whoever plays the next episodes.
  const double learn_start = MonotonicSeconds();
  if (!batch.empty()) {
    if (run.learners) {
      batch = run.learners->SendBatch("grpo", batch, progress.policy_version);
    }
    const std::map<std::string, double> learned = run.TrainStep("grpo", [&] {
      return run.trainer->GrpoStep(batch, progress.policy_version);
    });
    for (const auto& [k, v] : learned) metrics[k] = v;
    ++progress.policy_version;
    source.PolicyUpdated(run.model, progress.policy_version);
  }

  // Metrics, and a sample of the transcripts, under the step this becomes.
  SampleTrajectories(run, episodes, progress.global_step + 1);
  for (const auto& [k, v] : played.metrics) metrics[k] = v;
  const double kept_count = static_cast<double>(kept.size());
  metrics["groups/dropped_frac"] =
      total_groups > 0 ? static_cast<double>(dropped_groups) / total_groups
                       : 0.0;
  metrics["advantage/mean"] = kept.empty() ? 0.0 : advantage_sum / kept_count;
  metrics["advantage/abs_mean"] =
      kept.empty() ? 0.0 : advantage_abs / kept_count;
  AddRolloutMetrics(played, &metrics);
  metrics["time/learn_s"] = MonotonicSeconds() - learn_start;
  metrics["time/step_s"] = MonotonicSeconds() - step_start;
  return metrics;
}

bool RunGrpoStage(RunState& run) {
  const TrainerConfig& trainer_config = run.config.trainer;
  RunProgress& progress = run.progress;
  StartStage(run, "grpo");
  LocalEpisodeSource local(
      run.model, *run.tokenizer, *run.env,
      rollout::RolloutOptionsFromConfig(run.config.rollout), *run.scorer);
  EpisodeSource& source = run.remote_episodes ? *run.remote_episodes : local;
  source.PolicyUpdated(run.model, progress.policy_version);
  // The curve starts where GRPO starts (verl's val_before_train).
  if (progress.stage_step == 0 && trainer_config.eval_every > 0 &&
      trainer_config.val_before_train) {
    RecordEval(run, Evaluate(run, "grpo", run.validation_split,
                             run.config.eval.validation_episodes));
  }
  while (progress.stage_step < trainer_config.steps) {
    const std::map<std::string, double> metrics = GrpoStep(run, source);
    ++progress.stage_step;
    ++progress.global_step;
    run.LogStep("grpo", metrics);
    const bool stage_done = progress.stage_step == trainer_config.steps;
    if (trainer_config.eval_every > 0 &&
        progress.stage_step % trainer_config.eval_every == 0 && !stage_done) {
      RecordEval(run, Evaluate(run, "grpo", run.validation_split,
                               run.config.eval.validation_episodes));
    }
    if (run.CheckpointDue(stage_done)) SaveRunCheckpoint(run, "grpo");
    if (run.AfterStepStop()) return false;
  }
  if (run.options.final_eval) {
    RecordEval(run,
               Evaluate(run, "grpo", "test", run.config.eval.test_episodes));
  }
  return true;
}

}  // namespace clinrl::trainer
