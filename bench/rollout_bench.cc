// `clinrl bench rollout`: a GRPO step's worth of multi-turn episodes (the
// quickstart's env, rollout settings and model shape, or `--config`), played
// by the rollout worker twice in the same run, with the synchronous schedule
// and with the continuous one (docs/policy.md, "The generation engine").
// `--model DIR` plays a trained model folder (a checkpoint's model/, with its
// tokenizer) instead of random weights: a random policy rarely stops early
// or ends an episode, so it leaves continuous batching little to win.
#include <iostream>

#include "bench/bench_registry.h"
#include "bench/op_profile.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/error.h"
#include "envs/env_pool.h"
#include "policy/model_dir.h"
#include "policy/transformer.h"
#include "rollout/rollout_wire.h"
#include "rollout/rollout_worker.h"

namespace clinrl::bench {
namespace {

// The worker's stats as the rollout protocol reports them, and the rate.
nlohmann::json Figures(const rollout::RolloutStats& s) {
  nlohmann::json figures = rollout::RolloutStatsToJson(s);
  figures["tokens_per_s"] = s.generated_tokens / s.seconds;
  return figures;
}

nlohmann::json RunRolloutBench(const BenchOptions& options) {
  const bool quick = options.quick;
  const std::string config_path = StringOption(
      options, "config", std::string(CLINRL_CONFIGS_DIR) + "/quickstart.json");
  const ClinrlConfig config =
      config::ResolveConfig<ClinrlConfig>(config_path, {});
  if (config.envs.empty()) {
    throw BadRequest(
        fmt::format("--config {}: envs: no env to play", config_path));
  }
  const int64_t threads = policy::SetComputeThreads(options.threads);
  const std::string model_dir = StringOption(options, "model", "");
  policy::Transformer model{nullptr};
  std::unique_ptr<policy::Tokenizer> tokenizer;
  if (!model_dir.empty()) {
    model = policy::LoadModel(model_dir);
    tokenizer = policy::LoadModelTokenizer(model_dir);
  } else {
    tokenizer = policy::LoadTokenizer("byte");
    nlohmann::json init = config.policy.init;
    if (!init.is_object()) {
      throw BadRequest(fmt::format(
          "--config {}: policy.init: expected a config.json object for the "
          "random model, or pass --model DIR",
          config_path));
    }
    init["vocab_size"] = tokenizer->size();
    model = policy::Transformer(
        policy::ModelConfig::FromJson(init, config_path + ": policy.init"));
    model->ResetParameters(7);
  }
  model->eval();

  rollout::RolloutOptions ro =
      rollout::RolloutOptionsFromConfig(config.rollout);
  int64_t tasks = IntOption(options, "tasks", config.rollout.tasks_per_step);
  if (quick) {
    tasks = std::min<int64_t>(tasks, 4);
    ro.group_size = std::min<int64_t>(ro.group_size, 4);
    ro.max_turns = std::min<int64_t>(ro.max_turns, 3);
  }
  const EnvEntry& env = config.envs[0];
  envs::EnvPoolOptions pool_options;
  pool_options.service.envs = {env.name};
  pool_options.service.env_options[env.name] = env.options;
  envs::EnvPool pool(pool_options);
  std::vector<rollout::TaskRef> batch;
  for (int64_t t = 0; t < tasks; ++t)
    batch.push_back({env.name, "train", t, {}});
  std::cout << "model: " << model->config().ParameterCount()
            << " parameters; env " << env.name << "; " << tasks << " tasks x "
            << ro.group_size << " episodes, up to " << ro.max_turns
            << " turns of " << ro.max_tokens_per_turn << " tokens; threads "
            << threads << std::endl;

  // Warm-up: one task, both schedules' code paths.
  for (bool continuous : {false, true}) {
    ro.continuous = continuous;
    rollout::RolloutWorker warm(model, *tokenizer, pool.client(), ro);
    warm.Run({batch[0]}, 99, 0);
  }
  nlohmann::json out = {{"threads", threads},
                        {"parameters", model->config().ParameterCount()},
                        {"env", env.name},
                        {"tasks", tasks},
                        {"group_size", ro.group_size},
                        {"max_turns", ro.max_turns},
                        {"max_tokens_per_turn", ro.max_tokens_per_turn},
                        {"model", model_dir.empty() ? "random" : model_dir},
                        {"quick", quick}};
  const bool profile =
      StringOption(options, "profile", "off", {"on", "off"}) == "on";
  for (bool continuous : {false, true}) {
    ro.continuous = continuous;
    rollout::RolloutWorker worker(model, *tokenizer, pool.client(), ro);
    rollout::RolloutStats stats;
    if (profile) {
      // Profiled runs are not the timed ones.
      const OpProfile ops =
          ProfileOps([&] { worker.Run(batch, 1, 0, &stats); });
      std::cout << (continuous ? "continuous" : "synchronous")
                << ", profiled:\n"
                << ops.Table();
      out[continuous ? "profile_continuous" : "profile_synchronous"] =
          ops.ToJson();
    }
    worker.Run(batch, 1, 0, &stats);
    const char* name = continuous ? "continuous" : "synchronous";
    out[name] = Figures(stats);
    std::cout << name << ": " << stats.episodes << " episodes, "
              << stats.generated_tokens << " tokens in " << stats.seconds
              << " s (" << stats.generated_tokens / stats.seconds
              << " tokens/s; generating " << stats.generate_seconds
              << " s, waiting on the env " << stats.env_seconds << " s)"
              << std::endl;
  }
  const double sync_tps = out["synchronous"]["tokens_per_s"].get<double>();
  const double cont_tps = out["continuous"]["tokens_per_s"].get<double>();
  out["continuous_speedup_tokens_per_s"] = cont_tps / sync_tps;
  out["continuous_speedup_step_time"] =
      out["synchronous"]["seconds"].get<double>() /
      out["continuous"]["seconds"].get<double>();
  std::cout << "continuous / synchronous: " << cont_tps / sync_tps
            << "x tokens/s" << std::endl;
  return out;
}

}  // namespace

CLINRL_REGISTER_BENCH(rollout,
                      "a GRPO step of multi-turn episodes, synchronous vs "
                      "continuous batching",
                      RunRolloutBench,
                      {"config",
                       "run config (default configs/quickstart.json)"},
                      {"model",
                       "a model folder with its tokenizer (default: random "
                       "weights of the config's policy.init)"},
                      {"profile",
                       "on: also run each schedule once under LibTorch's "
                       "profiler and print its costliest ops"});

}  // namespace clinrl::bench
