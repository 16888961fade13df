// `clinrl eval CONFIG --model DIR`: evaluates a model folder (a checkpoint's
// model/, or any Hugging Face folder clinrl loads) on the envs and splits of
// a run config, as the run's own evaluation does: greedy episodes by default
// (the training run's figures, same seed), or `--samples K` episodes per
// task at `--temperature` with pass@k. `--endpoint URL --model NAME` plays
// the model behind an OpenAI-compatible chat endpoint instead
// (rollout/endpoint_rollout.h). Writes a run folder (config.json,
// trajectories.jsonl, eval.json) that `clinrl report` reads like a training
// run's.
#include <filesystem>
#include <iostream>

#include "cli/command_registry.h"
#include "cli/curve_keys_flag.h"
#include "core/atomic_file.h"
#include "core/chat_client.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/error.h"
#include "rewards/plugin_loader.h"
#include "rollout/endpoint_rollout.h"
#include "trainer/training_run.h"

namespace clinrl::cli {
namespace {

struct EvalArgs {
  ConfigArgs config;
  std::string model;
  std::string split = "test";
  int64_t episodes = -1;  // default: the config's eval.test_episodes
  int64_t samples = 1;
  double temperature = -1;  // default: the config's rollout.temperature
  std::string name;         // default: <run.name>-eval
  bool json = false;
  // --endpoint: the chat endpoint plays, `model` is its model name.
  rollout::EndpointRolloutOptions endpoint;
};

// With --endpoint, the endpoint's options (its URL checked here, so a bad
// one fails before the envs start); null otherwise.
const rollout::EndpointRolloutOptions* EndpointOf(EvalArgs& a) {
  if (a.endpoint.endpoint.url.empty()) return nullptr;
  a.endpoint.endpoint.model = a.model;
  if (a.endpoint.concurrency < 1) {
    throw BadRequest(fmt::format(
        "--concurrency: got {}, expected at least 1 episode in flight",
        a.endpoint.concurrency));
  }
  ChatClient check(a.endpoint.endpoint, "--endpoint");
  return &a.endpoint;
}

nlohmann::json RunEval(EvalArgs& a) {
  auto config =
      config::ResolveConfig<ClinrlConfig>(a.config.path, a.config.overrides);
  config.rewards.plugins =
      rewards::ResolvePluginPaths(config.rewards.plugins, a.config.path);
  if (a.samples < 1) {
    throw BadRequest(fmt::format(
        "--samples: got {}, expected at least 1 episode per task", a.samples));
  }
  // tcp env and reward endpoints of the config served with CURVE, as in
  // clinrl train.
  InstallRunCurveKeys(config, "");
  const rollout::EndpointRolloutOptions* endpoint = EndpointOf(a);
  // A checkpoint folder (checkpoints/step_N) holds its model in model/.
  if (endpoint == nullptr) {
    config.policy.model_dir =
        !std::filesystem::exists(a.model + "/config.json") &&
                std::filesystem::exists(a.model + "/model/config.json")
            ? a.model + "/model"
            : a.model;
  }
  config.run.name = a.name.empty() ? config.run.name + "-eval" : a.name;
  const int64_t episodes =
      a.episodes > 0 ? a.episodes : config.eval.test_episodes;
  const double temperature =
      a.temperature >= 0 ? a.temperature : config.rollout.temperature;
  trainer::TrainingRunOptions options;
  options.final_eval = false;
  options.load_policy = endpoint == nullptr;
  trainer::TrainingRun run(config, options);
  const trainer::EvalResult result =
      a.samples == 1 ? run.Evaluate("eval", a.split, episodes, endpoint)
                     : run.EvaluateSamples("eval", a.split, episodes, a.samples,
                                           temperature, endpoint);
  nlohmann::json out = {{"model", a.model},
                        {"split", a.split},
                        {"tasks", episodes},
                        {"samples_per_task", a.samples},
                        {"temperature", a.samples == 1 ? 0.0 : temperature},
                        {"metrics", result.metrics},
                        {"run_dir", run.run_dir().root}};
  if (endpoint != nullptr) out["endpoint"] = endpoint->endpoint.url;
  WriteFileAtomic(run.run_dir().root + "/eval.json", out.dump(2) + "\n");
  // The training run's test table format, so that `clinrl report` (and
  // --compare against another run or evaluation) reads it.
  const nlohmann::json summary = nlohmann::json::array(
      {{{"policy", "eval"}, {"split", a.split}, {"metrics", result.metrics}}});
  WriteFileAtomic(run.run_dir().root + "/summary.json", summary.dump(2) + "\n");
  std::cout << trainer::TrainingRun::FormatTable({result});
  for (const auto& [key, value] : result.metrics) {
    if (key.rfind("pass@", 0) == 0) {
      std::cout << fmt::format("{}: {:.3f}\n", key, value);
    }
  }
  return out;
}

void AddEvalCommand(CLI::App& app) {
  auto* eval = app.add_subcommand(
      "eval", "evaluate a model folder on the envs of a run config");
  auto a = std::make_shared<EvalArgs>();
  AddConfigArgs(eval, &a->config);
  eval->add_option("--model", a->model,
                   "model folder: a checkpoint (checkpoints/step_N) or its "
                   "model/, or a Hugging Face folder; with --endpoint, the "
                   "endpoint's model name")
      ->required();
  eval->add_option("--endpoint", a->endpoint.endpoint.url,
                   "an OpenAI-compatible server's base URL "
                   "(http://host:port/v1): its model plays, not a folder");
  eval->add_option("--api-key-env", a->endpoint.endpoint.api_key_env,
                   "with --endpoint: the environment variable holding the "
                   "bearer token");
  eval->add_option("--concurrency", a->endpoint.concurrency,
                   "with --endpoint: episodes in flight (default 16)");
  eval->add_option("--split", a->split, "env split (default test)");
  eval->add_option("--episodes", a->episodes,
                   "tasks of the split (default: eval.test_episodes)");
  eval->add_option("--samples", a->samples,
                   "episodes per task; above 1 they are sampled and pass@k "
                   "is reported (default 1: greedy)");
  eval->add_option("--temperature", a->temperature,
                   "with --samples: sampling temperature (default: "
                   "rollout.temperature)");
  eval->add_option("--name", a->name,
                   "run folder name under run.out_dir (default: "
                   "<run.name>-eval)");
  eval->add_flag("--json", a->json, "end with the result as one JSON line");
  eval->callback([a] {
    const int rc = RunCommand([&] {
      const nlohmann::json out = RunEval(*a);
      if (a->json) std::cout << out.dump() << std::endl;
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(eval, AddEvalCommand);

}  // namespace clinrl::cli
