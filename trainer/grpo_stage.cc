#include "trainer/grpo_stage.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/monotonic_clock.h"
#include "core/seeds.h"
#include "rollout/rollout_worker.h"
#include "trainer/episode_advantages.h"
#include "trainer/episode_summary.h"
#include "trainer/run_checkpoint.h"
#include "trainer/run_evaluation.h"
#include "trainer/turn_credit.h"

namespace clinrl::trainer {

using nlohmann::json;

namespace {

// `count` train tasks, a seeded draw independent of history. In an env
// mixture each task first picks its env with probability weight / total.
std::vector<rollout::TaskRef> DrawTasks(const RunState& run, uint64_t seed,
                                        int64_t count) {
  double total = 0;
  for (const RunState::MixtureEnv& e : run.mixture) total += e.weight;
  std::vector<rollout::TaskRef> tasks;
  uint64_t h = seed;
  for (int64_t i = 0; i < count; ++i) {
    h = SplitMix64(h);
    size_t env = 0;
    if (run.mixture.size() > 1) {
      // 53 random bits as a uniform draw in [0, total).
      double u = static_cast<double>(h >> 11) * 0x1.0p-53 * total;
      while (env + 1 < run.mixture.size() &&
             (run.mixture[env].weight <= 0 || u >= run.mixture[env].weight)) {
        u -= run.mixture[env].weight;
        ++env;
      }
      h = SplitMix64(h);
    }
    const RunState::MixtureEnv& e = run.mixture[env];
    const uint64_t task = h % static_cast<uint64_t>(e.train_tasks);
    tasks.push_back(
        {e.name, "train", static_cast<int64_t>(task), json::object()});
  }
  return tasks;
}

// An episode's tokens as the learner takes them: ids, which of them are
// trained, and the log-probs they were sampled with.
TrainSequence SequenceOf(const rollout::EpisodeTokens& tokens) {
  TrainSequence s;
  s.ids = tokens.ids;
  s.loss_mask = tokens.loss_mask;
  s.rollout_logprobs = tokens.logprobs;
  return s;
}

// trainer.kl_in_reward (verl's use_kl_in_reward): each episode's reward
// gains the component kl_penalty, score -(sum over its sampled tokens of
// log pi_sampling - log pi_ref), weighted by the coefficient. It is a reward
// like any other: in the total, in trajectories.jsonl, normalised on its own
// under per_component.
void PenaliseKl(RunState& run, ScoredEpisodes* round) {
  const double coef = run.config.trainer.kl_in_reward;
  if (coef <= 0) return;
  const double start = MonotonicSeconds();
  std::vector<TrainSequence> sequences;
  for (const auto& e : round->episodes) {
    sequences.push_back(SequenceOf(e.tokens));
  }
  const std::vector<double> kl = run.trainer->ReferenceKlSums(sequences);
  for (size_t i = 0; i < kl.size(); ++i) {
    RewardResult& reward = round->episodes[i].trajectory.reward;
    if (reward.components.count(kKlPenaltyComponent)) {
      throw ConfigError(fmt::format(
          "trainer.kl_in_reward: the env's reward spec already has a "
          "component named {}; rename it",
          kKlPenaltyComponent));
    }
    RewardComponent c;
    c.score = -kl[i];
    c.weight = coef;
    c.details = {{"kl_sum", kl[i]}, {"estimator", "k1"}};
    reward.components[kKlPenaltyComponent] = c;
    reward.total += coef * c.score;
  }
  round->reward_seconds += MonotonicSeconds() - start;
}

// A refill round's episodes after the earlier rounds'.
void Append(ScoredEpisodes round, ScoredEpisodes* all) {
  for (auto& e : round.episodes) all->episodes.push_back(std::move(e));
  all->stats.Add(round.stats);
  all->reward_seconds += round.reward_seconds;
  // The source's extras describe its state now: the last round's.
  for (const auto& [k, v] : round.metrics) all->metrics[k] = v;
}

// The step's episodes, group g being episodes [g * G, (g + 1) * G), and
// their advantages.
struct StepEpisodes {
  ScoredEpisodes played;
  EpisodeAdvantages advantages;
  int64_t rounds = 0;  // rounds of play: 1 + refills
};

// Advantages of `played`, leaving out the episodes of groups past `keep`
// informative ones (a refill that overshot).
EpisodeAdvantages Advantages(const RunState& run, const ScoredEpisodes& played,
                             size_t keep) {
  const TrainerConfig& tc = run.config.trainer;
  EpisodeAdvantageOptions options;
  options.mode = ParseAdvantageMode(tc.advantage);
  options.per_component = ParseRewardNormalization(tc.reward_normalization);
  options.dynamic_sampling = tc.dynamic_sampling;
  if (tc.kl_in_reward > 0) options.penalty_component = kKlPenaltyComponent;
  const auto group_size = static_cast<size_t>(run.config.rollout.group_size);
  std::vector<const RewardResult*> rewards;
  std::vector<int64_t> groups;
  for (size_t i = 0; i < played.episodes.size(); ++i) {
    rewards.push_back(&played.episodes[i].trajectory.reward);
    groups.push_back(static_cast<int64_t>(i / group_size));
  }
  EpisodeAdvantages a = ComputeEpisodeAdvantages(rewards, groups, options);
  if (a.informative_groups.size() <= keep) return a;
  const int64_t last = a.informative_groups[keep - 1];
  std::vector<const RewardResult*> kept_rewards;
  std::vector<int64_t> kept_groups;
  for (size_t i = 0; i < rewards.size(); ++i) {
    if (groups[i] > last) break;
    kept_rewards.push_back(rewards[i]);
    kept_groups.push_back(groups[i]);
  }
  const int64_t groups_played = a.groups;
  a = ComputeEpisodeAdvantages(kept_rewards, kept_groups, options);
  a.advantages.resize(rewards.size(), 0.0);
  a.groups = groups_played;
  return a;
}

// Plays rollout.tasks_per_step tasks and scores them. Under dynamic sampling
// (DAPO) groups without reward variance are left out, and more tasks are
// played (fresh seeds) until tasks_per_step groups carry signal or
// trainer.max_refill_rounds extra rounds have been played. A refill plays
// the missing groups scaled by the informative share seen so far (at most
// tasks_per_step); groups past tasks_per_step informative ones are left out.
StepEpisodes PlayStep(RunState& run, EpisodeSource& source, uint64_t seed) {
  const TrainerConfig& tc = run.config.trainer;
  const int64_t want = run.config.rollout.tasks_per_step;
  StepEpisodes step;
  int64_t drawn = 0, count = want;
  for (int64_t round = 0;; ++round) {
    const uint64_t round_seed =
        round == 0 ? seed : DeriveSeed(seed, "refill", round);
    ScoredEpisodes played =
        source.Play(DrawTasks(run, round_seed, count), round_seed,
                    run.progress.policy_version);
    PenaliseKl(run, &played);
    Append(std::move(played), &step.played);
    drawn += count;
    step.rounds = round + 1;
    step.advantages = Advantages(run, step.played, static_cast<size_t>(want));
    const auto informative =
        static_cast<int64_t>(step.advantages.informative_groups.size());
    if (!tc.dynamic_sampling || informative >= want ||
        round >= tc.max_refill_rounds) {
      return step;
    }
    const int64_t missing = want - informative;
    count = std::min(want,
                     (missing * drawn + std::max<int64_t>(informative, 1) - 1) /
                         std::max<int64_t>(informative, 1));
  }
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

// The update's sequences: the kept episodes' tokens, each with the version
// that sampled it (older than the learner's when a rollout worker lagged,
// which the truncated importance weights of the loss correct) and its
// advantage, or under trainer.credit turn one advantage per policy turn.
std::vector<TrainSequence> TrainingBatch(
    const RunState& run, const std::vector<rollout::RolloutEpisode>& episodes,
    const EpisodeAdvantages& a, std::map<std::string, double>* metrics) {
  const TrainerConfig& tc = run.config.trainer;
  const auto group_size = static_cast<size_t>(run.config.rollout.group_size);
  std::vector<std::vector<std::pair<size_t, size_t>>> spans;
  std::vector<std::vector<double>> turn_advantages;
  if (tc.credit == "turn") {
    std::vector<std::vector<double>> returns;
    std::vector<int64_t> groups;
    for (size_t i : a.kept) {
      const rollout::RolloutEpisode& e = episodes[i];
      spans.push_back(PolicyTurnSpans(e.trajectory, e.tokens));
      returns.push_back(ReturnsToGo(
          TurnRewards(e.trajectory, static_cast<int64_t>(spans.back().size()),
                      e.trajectory.reward.total)));
      groups.push_back(static_cast<int64_t>(i / group_size));
    }
    turn_advantages =
        TurnAdvantages(returns, groups, ParseAdvantageMode(tc.advantage));
  }
  std::vector<TrainSequence> batch;
  double sum = 0, abs_sum = 0, turn_abs = 0, turns = 0;
  for (size_t k = 0; k < a.kept.size(); ++k) {
    const size_t i = a.kept[k];
    const rollout::EpisodeTokens& tokens = episodes[i].tokens;
    TrainSequence sequence = SequenceOf(tokens);
    sequence.advantage = a.advantages[i];
    sequence.policy_version = episodes[i].trajectory.policy_version;
    if (!turn_advantages.empty()) {
      sequence.token_advantages =
          TokenAdvantages(spans[k], turn_advantages[k], tokens.ids.size());
      for (double t : turn_advantages[k]) turn_abs += std::fabs(t);
      turns += static_cast<double>(turn_advantages[k].size());
    }
    batch.push_back(std::move(sequence));
    sum += a.advantages[i];
    abs_sum += std::fabs(a.advantages[i]);
  }
  const double n = static_cast<double>(a.kept.size());
  (*metrics)["advantage/mean"] = n > 0 ? sum / n : 0.0;
  (*metrics)["advantage/abs_mean"] = n > 0 ? abs_sum / n : 0.0;
  if (tc.credit == "turn") {
    (*metrics)["advantage/turn_abs_mean"] = turns > 0 ? turn_abs / turns : 0.0;
    (*metrics)["turns/policy_mean"] = n > 0 ? turns / n : 0.0;
  }
  return batch;
}

}  // namespace

std::map<std::string, double> GrpoStep(RunState& run, EpisodeSource& source) {
  const TrainerConfig& trainer_config = run.config.trainer;
  RunProgress& progress = run.progress;
  const double step_start = MonotonicSeconds();

  // Tasks, each played group_size times, scored; advantages within each
  // group (flagged rewards and, under dynamic sampling, groups without
  // signal left out).
  const uint64_t seed = run.Seed("grpo", progress.stage_step);
  const StepEpisodes step = PlayStep(run, source, seed);
  const ScoredEpisodes& played = step.played;
  const std::vector<rollout::RolloutEpisode>& episodes = played.episodes;
  std::vector<const Trajectory*> trajectories;
  for (const auto& e : episodes) trajectories.push_back(&e.trajectory);
  StopOnEnvErrors(trajectories, trainer_config.max_env_error_fraction,
                  fmt::format("grpo step {}", progress.stage_step + 1),
                  run.remote_episodes
                      ? "the env servers of the rollout workers (role "
                        "env_server)"
                      : run.EnvService());
  std::map<std::string, double> metrics = SummarizeEpisodes(trajectories);
  AddPerEnvSummaries(trajectories, &metrics);

  std::vector<TrainSequence> batch =
      TrainingBatch(run, episodes, step.advantages, &metrics);

  // distributed.overlap: the next step's groups go to the rollout workers
  // now, played with the weights they hold while this update runs.
  if (run.config.distributed.overlap &&
      progress.stage_step + 1 < trainer_config.steps) {
    const uint64_t next = run.Seed("grpo", progress.stage_step + 1);
    source.Prefetch(DrawTasks(run, next, run.config.rollout.tasks_per_step),
                    next, progress.policy_version);
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
  const EpisodeAdvantages& a = step.advantages;
  metrics["groups/dropped_frac"] =
      a.groups > 0 ? static_cast<double>(a.dropped_groups) / a.groups : 0.0;
  metrics["groups/play_rounds"] = static_cast<double>(step.rounds);
  metrics["groups/informative"] =
      static_cast<double>(a.informative_groups.size());
  metrics["reward/flagged_frac"] =
      episodes.empty() ? 0.0 : static_cast<double>(a.flagged) / episodes.size();
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
