#include "trainer/run_state.h"

#include <fmt/ranges.h>

#include <algorithm>

#include "core/config_schema.h"
#include "core/log.h"
#include "core/seeds.h"
#include "core/stop_signal.h"
#include "policy/model_dir.h"
#include "rewards/plugin_loader.h"
#include "rewards/reward_override.h"
#include "rollout/scripted_baselines.h"
#include "trainer/checkpoint.h"
#include "trainer/non_finite.h"
#include "trainer/resume_config.h"
#include "trainer/run_checkpoint.h"

namespace clinrl::trainer {

namespace {

void ValidateStages(const std::vector<std::string>& stages) {
  if (stages.empty()) {
    throw ConfigError("trainer.stages: expected at least one of: sft, grpo");
  }
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i] != "sft" && stages[i] != "grpo") {
      throw ConfigError(
          fmt::format("trainer.stages.{}: got '{}', expected one of: sft, grpo",
                      i, stages[i]));
    }
  }
}

// Options that exclude each other.
void ValidateAlgorithm(const ClinrlConfig& c) {
  const TrainerConfig& tc = c.trainer;
  if (tc.credit == "turn" && tc.reward_normalization == "per_component") {
    throw ConfigError(
        "trainer.credit: 'turn' takes each turn's return from the reward "
        "total; with trainer.reward_normalization 'per_component' (episode "
        "credit only) expected credit 'episode'");
  }
  // Checkpointing recomputes each layer in backward; a dropout mask drawn
  // again there would not be the forward's, and the gradient would be wrong.
  if (c.policy.lora.rank > 0 && c.policy.lora.dropout > 0 &&
      tc.activation_checkpointing) {
    throw ConfigError(fmt::format(
        "policy.lora.dropout: got {} with trainer.activation_checkpointing on; "
        "expected 0 (the recomputed layer would draw another dropout mask)",
        c.policy.lora.dropout));
  }
  if (tc.sharding == "zero3" && c.policy.lora.rank > 0) {
    throw ConfigError(fmt::format(
        "trainer.sharding: got 'zero3' with policy.lora.rank {}; expected "
        "zero1 (ZeRO-3 shards trained parameters, and a LoRA policy trains "
        "only its small adapters)",
        c.policy.lora.rank));
  }
  const DistributedConfig& d = c.distributed;
  if (d.overlap && (d.rollout_ranks < 1 || d.max_policy_lag < 1)) {
    throw ConfigError(fmt::format(
        "distributed.overlap: needs rollout workers in their own processes "
        "(distributed.rollout_ranks >= 1, got {}) that may play one version "
        "behind (distributed.max_policy_lag >= 1, got {})",
        d.rollout_ranks, d.max_policy_lag));
  }
}

// Each env's splits: train to learn from, validation (or train) to watch.
void ReadEnvSpecs(RunState& run) {
  const std::vector<EnvEntry>& entries = run.config.envs;
  for (size_t i = 0; i < entries.size(); ++i) {
    RunState::MixtureEnv env;
    env.name = entries[i].name;
    env.weight = entries[i].weight;
    const envs::EnvSpec spec = run.env->Spec(env.name);
    auto train = spec.splits.find("train");
    if (train == spec.splits.end() || train->second <= 0) {
      throw ConfigError(
          fmt::format("envs.{}: env '{}' has no train split", i, env.name));
    }
    env.train_tasks = train->second;
    env.tools = spec.tools;
    if (!spec.splits.count("validation")) {
      CLINRL_LOG_WARN("env '{}' has no validation split; validating on train",
                      env.name);
      env.validation_split = "train";
    }
    run.mixture.push_back(env);
  }
  run.train_tasks = run.mixture.front().train_tasks;
  run.validation_split = run.mixture.front().validation_split;
}

// In-run SFT demonstrations are played by the env's scripted policy: one it
// lacks is a config error now, not after the run directory is written.
void CheckDemoPolicy(const RunState& run) {
  const auto& stages = run.config.trainer.stages;
  const SftConfig& sft = run.config.trainer.sft;
  if (std::find(stages.begin(), stages.end(), "sft") == stages.end() ||
      !sft.demos.empty()) {
    return;
  }
  const std::vector<std::string> policies =
      rollout::ScriptedPoliciesFor(run.env_name, run.env_endpoint);
  if (std::find(policies.begin(), policies.end(), sft.demo_policy) !=
      policies.end()) {
    return;
  }
  throw ConfigError(fmt::format(
      "trainer.sft.demo_policy: env '{}' has no scripted policy '{}' (its "
      "policies: {}); set trainer.sft.demos to a demonstrations JSONL or "
      "leave the sft stage out of trainer.stages",
      run.env_name, sft.demo_policy,
      policies.empty() ? "(none)"
                       : fmt::format("{}", fmt::join(policies, ", "))));
}

// rewards.overrides, before anything trains: against the registry, the run's
// env, and the reward spec of the env's first train task (a weight for a
// component the env does not have would otherwise fail mid-run).
void CheckRunRewardOverrides(RunState& run) {
  const auto& overrides = run.config.rewards.overrides;
  if (overrides.empty()) return;
  rewards::CheckRewardOverrides(overrides, run.config.rewards.endpoint.empty());
  std::vector<std::string> names;
  for (const RunState::MixtureEnv& e : run.mixture) names.push_back(e.name);
  for (const auto& [env, override_spec] : overrides) {
    if (std::find(names.begin(), names.end(), env) == names.end()) {
      throw ConfigError(fmt::format(
          "rewards.overrides.{}: '{}' is not an env of this run (envs: {})",
          env, env, fmt::join(names, ", ")));
    }
    envs::ResetRequest first;
    first.split = "train";
    first.task_index = 0;
    envs::ResetResult reset;
    const std::string session = run.env->Reset(env, first, &reset);
    run.env->Close(session);
    rewards::ApplyRewardOverride(
        reset.info.value("reward_spec", nlohmann::json::object()),
        override_spec, "rewards.overrides." + env);
  }
}

}  // namespace

std::string RunState::EnvService() const {
  if (!env_endpoint.empty()) {
    return fmt::format("the env server at {} (role env_server)", env_endpoint);
  }
  return "the in-process env pool";
}

uint64_t RunState::Seed(const std::string& what, int64_t step) const {
  return clinrl::DeriveSeed(static_cast<uint64_t>(config.run.seed), what,
                            static_cast<uint64_t>(step));
}

void RunState::LogStep(const std::string& stage,
                       const std::map<std::string, double>& step_metrics) {
  metrics->Log(progress.global_step, stage, step_metrics);
  events->AddScalars(step_metrics, progress.global_step);
  CLINRL_LOG_INFO("{}", MetricsLogger::ConsoleLine(progress.global_step, stage,
                                                   step_metrics));
}

std::map<std::string, double> RunState::TrainStep(
    const std::string& stage,
    const std::function<std::map<std::string, double>()>& step) const {
  try {
    return step();
  } catch (const NonFiniteError& e) {
    throw NonFiniteError(fmt::format("{} step {} (global step {}): {}", stage,
                                     progress.stage_step + 1,
                                     progress.global_step + 1, e.what()));
  }
}

bool RunState::CheckpointDue(bool stage_done) const {
  const int64_t every = config.trainer.checkpoint_every;
  // A stop signal: the step just finished is saved, so nothing is lost.
  return (every > 0 && progress.global_step % every == 0) || stage_done ||
         StopRequested();
}

bool RunState::AfterStepStop() const {
  if (options.after_step) options.after_step(progress.global_step);
  if (StopRequested()) {
    CLINRL_LOG_WARN(
        "stopping on signal {} after global step {}: checkpoint {}/step_{} "
        "written; continue with the same command and --resume",
        StopSignal(), progress.global_step, run_dir.checkpoints(),
        progress.global_step);
    return true;
  }
  return options.stop_after >= 0 && progress.global_step >= options.stop_after;
}

std::unique_ptr<RunState> OpenRun(ClinrlConfig config,
                                  TrainingRunOptions options) {
  auto run = std::make_unique<RunState>();
  run->config = std::move(config);
  run->options = std::move(options);
  if (!run->options.resume_from.empty()) run->options.resume = true;
  const ClinrlConfig& c = run->config;
  ValidateStages(c.trainer.stages);
  ValidateAlgorithm(c);
  envs::CheckRunEnvs(c.envs);
  const EnvEntry& env = c.envs.front();
  policy::SetComputeThreads(c.run.threads);
  // Reward plug-ins from shared libraries register before any scoring.
  rewards::LoadRewardPlugins(c.rewards.plugins);
  if (run->options.resume) {
    // Before config.json is rewritten with the new config.
    CheckResumedConfig(c.run.out_dir + "/" + c.run.name, c,
                       run->options.allow_config_change);
  }
  run->run_dir = CreateRunDir(c);
  // Nothing writes checkpoints yet: a temporary folder is a crash's leftover.
  RemoveStaleCheckpointTemps(run->run_dir.checkpoints());

  if (run->options.load_policy) {
    policy::PolicyModel policy =
        policy::LoadPolicy(c.policy, static_cast<uint64_t>(c.run.seed));
    run->model = policy.model;
    // Rollouts and evaluation sample in the training precision.
    run->model->set_precision(
        policy::ParsePrecision(c.trainer.precision, "trainer.precision"));
    run->tokenizer = std::move(policy.tokenizer);
  }
  if (run->options.episode_source) {
    run->remote_episodes = run->options.episode_source(*run->tokenizer);
  }
  if (run->options.learner_comm && run->options.learner_comm->size() > 1) {
    run->learners = std::make_unique<LearnerGroup>(*run->options.learner_comm);
  }

  envs::EnvConnection connection = envs::ConnectEnvs(c.envs, "");
  run->env_registry = std::move(connection.registry);
  run->env_pool = std::move(connection.pool);
  run->remote_env = std::move(connection.remote);
  run->env = connection.client;
  run->env_name = env.name;
  run->env_endpoint = env.endpoint;
  run->env_options = env.options;
  ReadEnvSpecs(*run);
  if (run->remote_episodes) run->remote_episodes->SetEnvTools(run->EnvTools());
  CheckRunRewardOverrides(*run);
  CheckDemoPolicy(*run);
  run->scorer = rewards::MakeTrajectoryScorer(c.rewards);

  // Before the writers open the run's files: a resume rewrites them without
  // the lines of the steps it replays.
  if (run->options.resume) RestoreProgress(*run);
  run->metrics = std::make_unique<MetricsLogger>(run->run_dir.metrics_path());
  run->trajectories =
      std::make_unique<JsonlWriter>(run->run_dir.trajectories_path());
  run->events = std::make_unique<TfEventsWriter>(run->run_dir.root);
  run->events->AddText("config", config::WriteConfig(c).dump(2), 0);
  return run;
}

std::map<std::string, nlohmann::json> RunState::EnvTools() const {
  std::map<std::string, nlohmann::json> tools;
  for (const MixtureEnv& env : mixture) tools[env.name] = env.tools;
  return tools;
}

}  // namespace clinrl::trainer
