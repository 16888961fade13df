// `clinrl env ...`: serve envs over ZeroMQ, list them, and evaluate or record
// scripted policies on them (docs/envs.md).
//   env serve --env NAME[,NAME] --endpoint E [--workers N] [--idle-timeout-s S]
//   env list
//   env spec --env NAME
//   env eval --env NAME --policy NAME --split S [--n N] [--seed S] [--options
//   J] env demos --env NAME --split S --n N --out FILE.jsonl [--policy oracle]
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <sstream>

#include "cli/command_registry.h"
#include "cli/curve_keys_flag.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/log.h"
#include "core/zmq_util.h"
#include "envs/env_registry.h"
#include "envs/env_server.h"
#include "envs/remote_env.h"
#include "envs/scripted_episode.h"
#include "envs/scripted_policy.h"
#include "envs/wrappers/env_wrapper_registry.h"
#include "rewards/trajectory_scorer.h"

namespace clinrl::cli {
namespace {

using nlohmann::json;

json ParseJsonOption(const std::string& text, const std::string& flag) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    throw BadRequest(
        fmt::format("{}: got '{}', expected a JSON object", flag, text));
  }
  return j;
}

std::vector<std::string> SplitNames(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    if (!name.empty()) out.push_back(name);
  }
  if (out.empty()) {
    throw BadRequest(
        fmt::format("--env: got '{}', expected NAME[,NAME...]", list));
  }
  return out;
}

// Blocks SIGINT/SIGTERM in every thread (the server's inherit the mask) and
// returns when one arrives.
void WaitForStopSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal = 0;
  CLINRL_CHECK(sigwait(&set, &signal) == 0, "sigwait failed");
  CLINRL_LOG_INFO("env server: signal {}, stopping", signal);
}

void BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  const int rc = pthread_sigmask(SIG_BLOCK, &set, nullptr);
  CLINRL_CHECK(rc == 0, "pthread_sigmask failed: {}", rc);
}

struct EvalArgs {
  std::string env;
  std::string policy = "oracle";
  std::string split = "test";
  int64_t n = 0;  // 0: every task of the split
  int64_t seed = 0;
  std::string options = "{}";
  std::string policy_options = "{}";  // the scripted policy's options
  std::string endpoint;    // play a served env instead of an in-process one
  std::string curve_keys;  // the env server's CURVE key folder (tcp://)
  std::string out;         // demos only
  std::string wrappers;    // robustness wrappers, innermost first: a,b
  std::string wrapper_options = "{}";  // {"wrapper": {...}}
};

// The --wrappers list with each wrapper's --wrapper-options.
std::vector<EnvEntry::Wrapper> WrappersOf(const EvalArgs& a) {
  std::vector<EnvEntry::Wrapper> out;
  const json options = ParseJsonOption(a.wrapper_options, "--wrapper-options");
  std::stringstream in(a.wrappers);
  std::string name;
  std::string names;
  while (std::getline(in, name, ',')) {
    if (name.empty()) continue;
    EnvEntry::Wrapper w;
    w.name = name;
    if (options.contains(name)) w.options = options[name];
    names += (names.empty() ? "" : ", ") + name;
    out.push_back(std::move(w));
  }
  // Options never silently ignored: each key names a wrapper in use
  // (ParseJsonOption has refused anything but an object).
  for (const auto& [key, value] : options.items()) {
    const bool used = std::any_of(out.begin(), out.end(),
                                  [&](const auto& w) { return w.name == key; });
    if (!used) {
      throw BadRequest(fmt::format(
          "--wrapper-options: key '{}' names no wrapper of --wrappers; "
          "expected one of: {}",
          key, names.empty() ? "(none: --wrappers is empty)" : names));
    }
  }
  return out;
}

// `*remote`: the served env inside any wrappers (its server plays the
// scripted policies), or nullptr in-process.
std::unique_ptr<envs::Env> MakeEnv(const EvalArgs& a,
                                   envs::RemoteEnv** remote) {
  std::unique_ptr<envs::Env> env;
  *remote = nullptr;
  if (!a.endpoint.empty()) {
    InstallCurveKeysFrom(a.curve_keys, "--curve-keys");
    auto served = std::make_unique<envs::RemoteEnv>(a.endpoint, a.env);
    *remote = served.get();
    env = std::move(served);
  } else {
    env = envs::EnvRegistry::Global().Create(
        a.env, ParseJsonOption(a.options, "--options"));
  }
  return envs::WrapEnv(std::move(env), WrappersOf(a), "--wrappers");
}

// The composite score of the trajectory's reward spec; without a spec (or
// when it cannot be scored) the sum of the env's step rewards.
double ScoreEpisode(Trajectory& t, rewards::TrajectoryScorer& scorer,
                    std::string* source) {
  if (t.reward_spec.is_object() && t.reward_spec.contains("components")) {
    try {
      // A group of one: the episodes of a run are of different tasks.
      rewards::ScoreByGroup({&t}, 1, scorer);
      *source = "composite";
      return t.reward.total;
    } catch (const std::exception& e) {
      CLINRL_LOG_WARN(
          "episode {}: reward spec not scorable ({}); using the "
          "env's step rewards",
          t.episode_id, e.what());
    }
  }
  double sum = 0;
  for (double r : t.step_rewards) sum += r;
  t.reward.total = sum;
  if (source->empty()) *source = "env";
  return sum;
}

// Runs the episodes of `a`, calling `on_episode` with each trajectory.
json RunEpisodes(const EvalArgs& a, bool print_table,
                 const std::function<void(const Trajectory&)>& on_episode) {
  envs::RemoteEnv* remote = nullptr;
  auto env = MakeEnv(a, &remote);
  const envs::EnvSpec spec = env->Spec();
  auto split = spec.splits.find(a.split);
  if (split == spec.splits.end()) {
    std::string known;
    for (const auto& [name, count] : spec.splits) {
      known += (known.empty() ? "" : ", ") + name;
    }
    throw BadRequest(
        fmt::format("--split: env '{}' has no split '{}'; splits: "
                    "{}",
                    a.env, a.split, known));
  }
  if (a.n < 0) {
    throw BadRequest(fmt::format("--n: got {}, expected >= 0", a.n));
  }
  const int64_t n = a.n == 0 ? split->second : a.n;
  const json policy_options =
      ParseJsonOption(a.policy_options, "--policy-options");
  // A served env plays the policies of its server (the act op).
  auto make_policy = [&](int64_t seed) {
    return remote != nullptr
               ? remote->Policy(a.policy, static_cast<uint64_t>(seed),
                                policy_options)
               : envs::ScriptedPolicyRegistry::Global().Create(
                     a.env, a.policy, static_cast<uint64_t>(seed),
                     policy_options);
  };
  // An unknown policy (or, in this process, a bad option) fails here,
  // before any output.
  make_policy(a.seed);
  if (print_table) {
    std::cout << fmt::format("{:>4} {:>6} {:>5} {:>8} {:>7} {:>6} {:>7}  {}\n",
                             "ep", "task", "turns", "reward", "correct", "cost",
                             "invalid", "termination");
  }
  double reward_sum = 0, turns_sum = 0, cost_sum = 0, correct_sum = 0;
  int64_t correct_count = 0, actions = 0, invalid = 0;
  std::string reward_source;
  // In this process, with the default per-component deadline.
  const std::unique_ptr<rewards::TrajectoryScorer> scorer =
      rewards::MakeTrajectoryScorer(RewardsConfig{});
  for (int64_t i = 0; i < n; ++i) {
    envs::ScriptedEpisodeRequest req;
    req.env_name = a.env;
    req.split = a.split;
    req.task_index = i % split->second;
    req.seed = a.seed + i;
    auto policy = make_policy(req.seed);
    envs::ScriptedEpisodeStats stats;
    Trajectory t = envs::PlayScriptedEpisode(*env, *policy, req, &stats);
    const double reward = ScoreEpisode(t, *scorer, &reward_source);
    reward_sum += reward;
    turns_sum += static_cast<double>(stats.actions);
    cost_sum += stats.cost;
    actions += stats.actions;
    invalid += stats.invalid_actions;
    if (stats.correct) {
      correct_sum += *stats.correct;
      ++correct_count;
    }
    if (print_table) {
      std::cout << fmt::format(
          "{:>4} {:>6} {:>5} {:>8.3f} {:>7} {:>6.2f} {:>7}  {}\n", i,
          req.task_index, stats.actions, reward,
          stats.correct ? fmt::format("{:.0f}", *stats.correct) : "-",
          stats.cost, stats.invalid_actions, TerminationName(t.termination));
    }
    on_episode(t);
  }
  const double episodes = static_cast<double>(std::max<int64_t>(n, 1));
  json summary = {
      {"env", spec.name},  // "dx_dialogue+distractor" when wrapped
      {"policy", a.policy},
      {"policy_options", policy_options},
      {"split", a.split},
      {"episodes", n},
      {"accuracy",
       correct_count > 0 ? json(correct_sum / correct_count) : json(nullptr)},
      {"mean_reward", reward_sum / episodes},
      {"reward_source", reward_source},
      {"mean_turns", turns_sum / episodes},
      {"mean_cost", cost_sum / episodes},
      {"invalid_action_rate",
       actions > 0 ? static_cast<double>(invalid) / actions : 0.0}};
  return summary;
}

void AddEpisodeArgs(CLI::App* cmd, EvalArgs* a) {
  cmd->add_option("--env", a->env, "registered env name")->required();
  cmd->add_option("--policy", a->policy, "scripted policy (oracle, random...)")
      ->capture_default_str();
  cmd->add_option("--split", a->split, "split to play")->capture_default_str();
  cmd->add_option("--n", a->n, "episodes (0 = every task of the split)")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "seed of episode 0 (episode i: seed+i)")
      ->capture_default_str();
  cmd->add_option("--options", a->options, "env options as a JSON object")
      ->capture_default_str();
  cmd->add_option("--policy-options", a->policy_options,
                  "the scripted policy's options as a JSON object (e.g. the "
                  "oracle's epsilon, confidence)")
      ->capture_default_str();
  cmd->add_option("--endpoint", a->endpoint,
                  "play the env on this env server instead of in-process");
  AddCurveKeysOption(cmd, &a->curve_keys);
  cmd->add_option("--wrappers", a->wrappers,
                  "robustness wrappers around the env, innermost first "
                  "(drug_name_swap,distractor,demographic_swap)");
  cmd->add_option("--wrapper-options", a->wrapper_options,
                  "options per wrapper: {\"distractor\": {\"seed\": 1}}")
      ->capture_default_str();
}

void AddEnvCommands(CLI::App& app) {
  auto* env = app.add_subcommand("env", "env servers, specs, evaluations");
  env->require_subcommand(1);

  auto* serve = env->add_subcommand("serve", "serve envs over ZeroMQ");
  auto serve_args = std::make_shared<envs::EnvServerOptions>();
  auto serve_envs = std::make_shared<std::string>();
  auto serve_options = std::make_shared<std::string>("{}");
  serve->add_option("--env", *serve_envs, "NAME[,NAME...]")->required();
  serve
      ->add_option("--endpoint", serve_args->endpoint,
                   "tcp://127.0.0.1:5555, ipc:///path or inproc://name")
      ->capture_default_str();
  auto serve_insecure = std::make_shared<bool>(false);
  serve->add_flag("--insecure", *serve_insecure,
                  "allow a non-loopback tcp endpoint (no authentication: "
                  "anyone who reaches the port is served)");
  auto serve_keys = std::make_shared<std::string>();
  AddCurveKeysOption(serve, serve_keys.get());
  serve->add_option("--workers", serve_args->workers, "worker threads")
      ->capture_default_str();
  serve
      ->add_option("--idle-timeout-s", serve_args->service.idle_timeout_s,
                   "close sessions idle this long (0 = never)")
      ->capture_default_str();
  serve
      ->add_option("--max-sessions", serve_args->service.max_sessions,
                   "most open sessions")
      ->capture_default_str();
  serve
      ->add_option("--max-sessions-per-client",
                   serve_args->service.max_sessions_per_client,
                   "most open sessions of one client connection (0 = no "
                   "limit)")
      ->capture_default_str();
  serve
      ->add_option("--max-request-bytes", serve_args->service.max_request_bytes,
                   "largest request a client may send (0 = no limit)")
      ->capture_default_str();
  serve
      ->add_option("--max-in-flight-per-client",
                   serve_args->max_in_flight_per_client,
                   "requests of one client connection running at once (0 = "
                   "no limit)")
      ->capture_default_str();
  serve->add_option("--options", *serve_options,
                    "factory options per env: {\"NAME\": {...}}");
  serve->callback(
      [serve_args, serve_envs, serve_options, serve_insecure, serve_keys] {
        const int rc = RunCommand([&] {
          InstallCurveKeysFrom(*serve_keys, "--curve-keys");
          RequireLoopbackUnlessInsecure(serve_args->endpoint, *serve_insecure,
                                        "--endpoint");
          serve_args->service.envs = SplitNames(*serve_envs);
          const json options = ParseJsonOption(*serve_options, "--options");
          for (auto it = options.begin(); it != options.end(); ++it) {
            serve_args->service.env_options[it.key()] = it.value();
            // A misspelt option is named as the user wrote it.
            serve_args->service.env_options_paths[it.key()] =
                "--options." + it.key();
          }
          BlockStopSignals();
          envs::EnvServer server(*serve_args);
          server.Start();
          std::cout << "serving " << *serve_envs << " on "
                    << server.bound_endpoint() << std::endl;
          WaitForStopSignal();
          server.Stop();
        });
        if (rc != 0) std::exit(rc);
      });

  auto* list = env->add_subcommand("list", "list the registered envs");
  list->callback([] {
    const int rc = RunCommand([] {
      std::cout << fmt::format("{:<16} {:<8} {:>9}  {:<28} {}\n", "env",
                               "version", "max_turns", "splits (tasks)",
                               "scripted policies");
      for (const auto& name : envs::EnvRegistry::Global().Names()) {
        const envs::EnvSpec s =
            envs::EnvRegistry::Global().Create(name)->Spec();
        std::string splits;
        for (const auto& [k, v] : s.splits) {
          splits += fmt::format("{}{}={}", splits.empty() ? "" : " ", k, v);
        }
        std::string policies;
        for (const auto& p :
             envs::ScriptedPolicyRegistry::Global().PoliciesFor(name)) {
          policies += (policies.empty() ? "" : ",") + p;
        }
        std::cout << fmt::format("{:<16} {:<8} {:>9}  {:<28} {}\n", name,
                                 s.version, s.max_turns, splits, policies);
      }
    });
    if (rc != 0) std::exit(rc);
  });

  auto* spec = env->add_subcommand("spec", "print an env's spec as JSON");
  auto spec_args = std::make_shared<EvalArgs>();
  spec->add_option("--env", spec_args->env, "registered env name")->required();
  spec->add_option("--options", spec_args->options, "env options (JSON)");
  spec->add_option("--endpoint", spec_args->endpoint, "ask an env server");
  AddCurveKeysOption(spec, &spec_args->curve_keys);
  spec->add_option("--wrappers", spec_args->wrappers,
                   "robustness wrappers around the env, innermost first");
  spec->callback([spec_args] {
    const int rc = RunCommand([&] {
      envs::RemoteEnv* remote = nullptr;
      std::cout << envs::ToJson(MakeEnv(*spec_args, &remote)->Spec()).dump(2)
                << "\n";
    });
    if (rc != 0) std::exit(rc);
  });

  auto* eval = env->add_subcommand(
      "eval", "play a split with a scripted policy; last line is JSON");
  auto eval_args = std::make_shared<EvalArgs>();
  AddEpisodeArgs(eval, eval_args.get());
  eval->callback([eval_args] {
    const int rc = RunCommand([&] {
      const json summary =
          RunEpisodes(*eval_args, true, [](const Trajectory&) {});
      std::cout << summary.dump() << std::endl;
    });
    if (rc != 0) std::exit(rc);
  });

  auto* demos = env->add_subcommand(
      "demos", "write scripted episodes as trajectory JSON lines (SFT data)");
  auto demo_args = std::make_shared<EvalArgs>();
  AddEpisodeArgs(demos, demo_args.get());
  demos->add_option("--out", demo_args->out, "output .jsonl file")->required();
  demos->callback([demo_args] {
    const int rc = RunCommand([&] {
      JsonlWriter writer(demo_args->out);
      json summary = RunEpisodes(*demo_args, false, [&](const Trajectory& t) {
        writer.Write(ToJson(t));
      });
      writer.Sync();
      summary["out"] = demo_args->out;
      std::cout << summary.dump() << std::endl;
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(env, AddEnvCommands);

}  // namespace clinrl::cli
