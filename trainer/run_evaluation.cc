#include "trainer/run_evaluation.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/log.h"
#include "envs/env_registry.h"
#include "rollout/endpoint_rollout.h"
#include "rollout/rollout_worker.h"
#include "rollout/scripted_baselines.h"
#include "trainer/episode_summary.h"
#include "trainer/run_state.h"

namespace clinrl::trainer {

using nlohmann::json;

namespace {

// At most this many evaluation episodes are played at once: it bounds the
// generation batch and the KV cache.
constexpr size_t kEvalChunk = 64;

std::vector<Trajectory*> Pointers(std::vector<Trajectory>& trajectories) {
  std::vector<Trajectory*> out;
  for (Trajectory& t : trajectories) out.push_back(&t);
  return out;
}

std::vector<const Trajectory*> ConstPointers(
    const std::vector<Trajectory>& trajectories) {
  std::vector<const Trajectory*> out;
  for (const Trajectory& t : trajectories) out.push_back(&t);
  return out;
}

// Whether the run's env has the scripted policy `policy`: registered in this
// process, or played by the env's server when it has an endpoint. A
// baseline row is a comparison, not part of the run: when it cannot be
// played the table goes without it, saying so in one line.
bool CanPlayScripted(const RunState& run, const std::string& label,
                     const std::string& policy) {
  const std::vector<std::string> policies =
      rollout::ScriptedPoliciesFor(run.env_name, run.env_endpoint);
  if (std::find(policies.begin(), policies.end(), policy) != policies.end()) {
    return true;
  }
  std::string where = run.env_endpoint.empty()
                          ? std::string("in this process")
                          : fmt::format("at {}", run.env_endpoint);
  if (run.env_endpoint.empty() &&
      !envs::EnvRegistry::Global().Has(run.env_name)) {
    where = "(the env is not registered in this process)";
  }
  CLINRL_LOG_INFO(
      "final table: no '{}' row (env '{}' {} has no scripted "
      "policy '{}')",
      label, run.env_name, where, policy);
  return false;
}

// A scripted policy's row of the test table.
EvalResult ScriptedRow(RunState& run, const std::string& label,
                       const std::string& policy, const json& policy_options) {
  rollout::ScriptedRunOptions scripted;
  scripted.env = run.env_name;
  scripted.endpoint = run.env_endpoint;
  scripted.env_options = run.env_options;
  scripted.policy = policy;
  scripted.policy_options = policy_options;
  scripted.split = "test";
  scripted.episodes = run.config.eval.test_episodes;
  scripted.seed = run.Seed("baseline", 0);
  std::vector<Trajectory> played = rollout::PlayScriptedEpisodes(scripted);
  rewards::ScoreByGroup(Pointers(played), 1, *run.scorer);
  return {label, "test", SummarizeEpisodes(ConstPointers(played))};
}

// The test rows the stages recorded, in order.
std::vector<EvalResult> RecordedTestRows(const json& evals) {
  std::vector<EvalResult> rows;
  for (const json& e : evals) {
    if (e["split"] != "test") continue;
    EvalResult r{e["label"].get<std::string>(), "test", {}};
    for (auto it = e["metrics"].begin(); it != e["metrics"].end(); ++it) {
      if (it.value().is_number()) {
        r.metrics[it.key()] = it.value().get<double>();
      }
    }
    rows.push_back(r);
  }
  return rows;
}

// The first `episodes` tasks of each env of the run; the validation split
// is each env's own (train for an env without one).
std::vector<rollout::TaskRef> EvalTasks(RunState& run, const std::string& split,
                                        int64_t episodes) {
  std::vector<rollout::TaskRef> tasks;
  for (const RunState::MixtureEnv& env : run.mixture) {
    const std::string env_split =
        split == run.validation_split ? env.validation_split : split;
    const envs::EnvSpec spec = run.env->Spec(env.name);
    const int64_t available =
        spec.splits.count(env_split) ? spec.splits.at(env_split) : 0;
    if (available <= 0) {
      throw ConfigError(
          fmt::format("env '{}' has no '{}' split", env.name, env_split));
    }
    for (int64_t i = 0; i < std::min(episodes, available); ++i) {
      tasks.push_back({env.name, env_split, i, json::object()});
    }
  }
  return tasks;
}

// The run's policy plays `samples` episodes of each task at `temperature`
// (0: greedy), in chunks of whole tasks that are each a generation batch.
std::vector<Trajectory> PlayInProcess(
    RunState& run, const std::vector<rollout::TaskRef>& tasks, int64_t samples,
    double temperature) {
  CLINRL_CHECK(run.model, "in-process evaluation without a policy loaded ({})",
               "TrainingRunOptions::load_policy is false");
  torch::NoGradGuard no_grad;
  run.model->eval();
  rollout::RolloutOptions options =
      rollout::RolloutOptionsFromConfig(run.config.rollout);
  options.group_size = samples;
  options.temperature = temperature;
  rollout::RolloutWorker worker(run.model, *run.tokenizer, *run.env, options);
  const size_t chunk = std::max<size_t>(
      1, kEvalChunk / static_cast<size_t>(std::max<int64_t>(1, samples)));
  std::vector<Trajectory> played;
  for (size_t start = 0; start < tasks.size(); start += chunk) {
    const auto first = tasks.begin() + static_cast<long>(start);
    const auto last = tasks.begin() +
                      static_cast<long>(std::min(tasks.size(), start + chunk));
    // Greedy evaluation keeps the seed it always had, so that its figures
    // are the training run's.
    const uint64_t seed =
        samples == 1 ? run.Seed("eval", 0)
                     : run.Seed("eval_samples", static_cast<int64_t>(start));
    for (auto& e :
         worker.Run({first, last}, seed, run.progress.policy_version)) {
      played.push_back(std::move(e.trajectory));
    }
  }
  run.model->train();
  return played;
}

// A chat endpoint plays them (rollout/endpoint_rollout.h) on the run's
// envs, with the run's rollout budgets and each env's tools. Each episode's
// completion tokens (the server's count) go to its timings, as its policy
// turns carry no token ids.
std::vector<Trajectory> PlayOnEndpoint(
    RunState& run, const rollout::EndpointRolloutOptions& endpoint,
    const std::vector<rollout::TaskRef>& tasks, int64_t samples,
    double temperature) {
  rollout::RolloutOptions options =
      rollout::RolloutOptionsFromConfig(run.config.rollout);
  options.group_size = samples;
  options.temperature = temperature;
  rollout::EndpointRolloutOptions where = endpoint;
  where.env_endpoint = run.env->endpoint();
  // Envs in action_mode "tools" are played with OpenAI tool calls.
  where.env_tools = run.EnvTools();
  const uint64_t seed =
      samples == 1 ? run.Seed("eval", 0) : run.Seed("eval_samples", 0);
  std::vector<Trajectory> played;
  for (auto& e : rollout::PlayEndpointEpisodes(where, options, tasks, seed)) {
    e.trajectory.timings["completion_tokens"] =
        static_cast<double>(e.completion_tokens);
    played.push_back(std::move(e.trajectory));
  }
  return played;
}

// Plays `samples` episodes of each task of EvalTasks (the run's policy, or
// `endpoint` when given), scores them by group, and writes every transcript
// to the run's trajectories file under `label`. Episodes come task by task,
// `samples` consecutive ones per task.
std::vector<Trajectory> PlayEvaluation(
    RunState& run, const std::string& label, const std::string& split,
    int64_t episodes, int64_t samples, double temperature,
    const rollout::EndpointRolloutOptions* endpoint) {
  const std::vector<rollout::TaskRef> tasks = EvalTasks(run, split, episodes);
  std::vector<Trajectory> played =
      endpoint == nullptr
          ? PlayInProcess(run, tasks, samples, temperature)
          : PlayOnEndpoint(run, *endpoint, tasks, samples, temperature);
  StopOnEnvErrors(
      ConstPointers(played), run.config.trainer.max_env_error_fraction,
      fmt::format("{} evaluation on {}", label, split), run.EnvService());
  rewards::ScoreByGroup(Pointers(played), samples, *run.scorer);
  for (const Trajectory& t : played) {
    // Every evaluation episode is kept, so that reviewers can read the
    // transcripts behind the validation and test figures.
    json line = ToJson(t);
    line["step"] = run.progress.global_step;
    line["eval"] = label;
    run.trajectories->Write(line);
  }
  return played;
}

// The summary of evaluation episodes (per env too); for an endpoint's, the
// lengths are the server's completion-token counts.
std::map<std::string, double> EvalSummary(
    const std::vector<Trajectory>& played,
    const rollout::EndpointRolloutOptions* endpoint) {
  std::map<std::string, double> metrics =
      SummarizeEpisodes(ConstPointers(played));
  AddPerEnvSummaries(ConstPointers(played), &metrics);
  if (endpoint != nullptr && !played.empty()) {
    double sum = 0, longest = 0;
    for (const Trajectory& t : played) {
      const double n = t.timings.at("completion_tokens");
      sum += n;
      longest = std::max(longest, n);
    }
    metrics["length/mean"] = sum / static_cast<double>(played.size());
    metrics["length/max"] = longest;
  }
  return metrics;
}

}  // namespace

EvalResult Evaluate(RunState& run, const std::string& label,
                    const std::string& split, int64_t episodes,
                    const rollout::EndpointRolloutOptions* endpoint) {
  const std::vector<Trajectory> played =
      PlayEvaluation(run, label, split, episodes, 1, 0.0, endpoint);
  return {label, split, EvalSummary(played, endpoint)};
}

double PassAtK(int64_t n, int64_t c, int64_t k) {
  CLINRL_CHECK(n >= 1 && c >= 0 && c <= n && k >= 1 && k <= n,
               "pass@k needs 1 <= k <= n and 0 <= c <= n, got n={} c={} k={}",
               n, c, k);
  // 1 - C(n - c, k) / C(n, k) as a product (Chen et al. 2021): no factorials
  // to overflow.
  if (n - c < k) return 1.0;
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i) {
    fail *= 1.0 - static_cast<double>(k) / static_cast<double>(i);
  }
  return 1.0 - fail;
}

EvalResult EvaluateSamples(RunState& run, const std::string& label,
                           const std::string& split, int64_t episodes,
                           int64_t samples, double temperature,
                           const rollout::EndpointRolloutOptions* endpoint) {
  if (samples < 1) {
    throw BadRequest(fmt::format(
        "--samples: got {}, expected at least 1 episode per task", samples));
  }
  const std::vector<Trajectory> played = PlayEvaluation(
      run, label, split, episodes, samples, temperature, endpoint);
  std::map<std::string, double> metrics = EvalSummary(played, endpoint);
  // pass@k per task from its count of correct samples, for k = 1, 2, 4, ...
  // up to `samples` and `samples` itself; the mean over tasks.
  std::vector<int64_t> ks;
  for (int64_t k = 1; k < samples; k *= 2) ks.push_back(k);
  ks.push_back(samples);
  std::map<int64_t, double> sums;
  int64_t tasks = 0;
  for (size_t first = 0; first + static_cast<size_t>(samples) <= played.size();
       first += static_cast<size_t>(samples)) {
    int64_t correct = 0;
    bool judged = true;  // the env says correct or not of every sample
    for (int64_t j = 0; j < samples; ++j) {
      const std::optional<bool> c =
          EpisodeCorrect(played[first + static_cast<size_t>(j)]);
      judged = judged && c.has_value();
      correct += c.value_or(false) ? 1 : 0;
    }
    if (!judged) continue;
    for (const int64_t k : ks) sums[k] += PassAtK(samples, correct, k);
    ++tasks;
  }
  if (tasks == 0) {
    CLINRL_LOG_INFO("{}: no pass@k (the env reports no per-episode 'correct')",
                    label);
  }
  for (const int64_t k : ks) {
    if (tasks > 0) {
      metrics[fmt::format("pass@{}", k)] = sums[k] / static_cast<double>(tasks);
    }
  }
  metrics["samples_per_task"] = static_cast<double>(samples);
  return {label, split, metrics};
}

void RecordEval(RunState& run, const EvalResult& result) {
  const int64_t step = run.progress.global_step;
  run.progress.evals.push_back({{"label", result.label},
                                {"split", result.split},
                                {"metrics", result.metrics},
                                {"step", step}});
  run.metrics->LogEval(step, result.split, result.metrics);
  std::map<std::string, double> tagged;
  for (const auto& [k, v] : result.metrics) {
    tagged["eval/" + result.split + "/" + k] = v;
  }
  run.events->AddScalars(tagged, step);
  run.events->Flush();
  CLINRL_LOG_INFO("eval {} {}: accuracy {}, reward {}", result.label,
                  result.split,
                  FormatSummaryValue(result.metrics, "accuracy", 3),
                  FormatSummaryValue(result.metrics, "reward/mean", 3));
}

std::vector<EvalResult> FinalTable(RunState& run) {
  std::vector<EvalResult> table;
  // The scripted rows play the first env alone; against a mixture's test
  // rows they would compare different tasks, so a mixture goes without.
  const bool baselines = run.options.baselines && run.mixture.size() == 1;
  if (run.options.baselines && !baselines) {
    CLINRL_LOG_INFO(
        "final table: no scripted rows (an env mixture; each env's figures "
        "are under env/<name>/ in summary.json)");
  }
  if (baselines && CanPlayScripted(run, "random", "random")) {
    table.push_back(ScriptedRow(run, "random", "random", json::object()));
  }
  // The demonstrator, when the SFT demonstrations were played here: what
  // SFT imitates and what GRPO is to improve on.
  const auto& stages = run.config.trainer.stages;
  const SftConfig& sft = run.config.trainer.sft;
  if (baselines &&
      std::find(stages.begin(), stages.end(), "sft") != stages.end() &&
      sft.demos.empty() && CanPlayScripted(run, "expert", sft.demo_policy)) {
    table.push_back(
        ScriptedRow(run, "expert", sft.demo_policy, sft.demo_policy_options));
  }
  for (EvalResult& row : RecordedTestRows(run.progress.evals)) {
    table.push_back(std::move(row));
  }
  if (baselines && CanPlayScripted(run, "oracle", "oracle")) {
    table.push_back(ScriptedRow(run, "oracle", "oracle", json::object()));
  }
  json summary = json::array();
  for (const EvalResult& r : table) {
    summary.push_back(
        {{"policy", r.label}, {"split", r.split}, {"metrics", r.metrics}});
  }
  WriteFileAtomic(run.run_dir.root + "/summary.json", summary.dump(2) + "\n");
  run.events->Flush();
  return table;
}

std::string FormatTable(const std::vector<EvalResult>& rows) {
  std::string out = fmt::format("{:<10} {:<11} {:>9} {:>12} {:>11} {:>10}\n",
                                "policy", "split", "accuracy", "mean reward",
                                "mean turns", "mean cost");
  for (const EvalResult& r : rows) {
    // A missing or non-finite figure prints as "-", never "nan".
    out += fmt::format("{:<10} {:<11} {:>9} {:>12} {:>11} {:>10}\n", r.label,
                       r.split, FormatSummaryValue(r.metrics, "accuracy", 3),
                       FormatSummaryValue(r.metrics, "reward/mean", 3),
                       FormatSummaryValue(r.metrics, "turns/mean", 2),
                       FormatSummaryValue(r.metrics, "cost/mean", 1));
  }
  // What GRPO changed over its SFT starting point, on the same test cases.
  const EvalResult* sft = nullptr;
  const EvalResult* grpo = nullptr;
  for (const EvalResult& r : rows) {
    if (r.label == "sft") sft = &r;
    if (r.label == "grpo") grpo = &r;
  }
  const auto has = [](const EvalResult* r, const char* key) {
    auto it = r->metrics.find(key);
    return it != r->metrics.end() && std::isfinite(it->second);
  };
  if (sft && grpo && has(sft, "accuracy") && has(grpo, "accuracy") &&
      has(sft, "reward/mean") && has(grpo, "reward/mean")) {
    out += fmt::format(
        "grpo - sft: accuracy {:+.1f} points, mean reward {:+.3f}\n",
        100.0 * (grpo->metrics.at("accuracy") - sft->metrics.at("accuracy")),
        grpo->metrics.at("reward/mean") - sft->metrics.at("reward/mean"));
  }
  return out;
}

}  // namespace clinrl::trainer
