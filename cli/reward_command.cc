// `clinrl reward serve|score|plugins|check`: the reward service, offline
// scoring of a trajectories file, the list of registered plug-ins, and the
// conformance suite (rewards/reward_conformance.h) run on plug-in libraries.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "cli/command_registry.h"
#include "cli/curve_keys_flag.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/trajectory.h"
#include "core/zmq_util.h"
#include "rewards/composite_reward.h"
#include "rewards/plugin_loader.h"
#include "rewards/reward_client.h"
#include "rewards/reward_conformance.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_server.h"
#include "rewards/reward_wire.h"

namespace clinrl::cli {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

struct RewardArgs {
  std::string config;
  std::vector<std::string> overrides;
  std::string endpoint;
  int64_t workers = -1;
  int64_t timeout_ms = -1;
  std::vector<std::string> plugins;
  std::string curve_keys;  // CURVE key folder for a tcp:// endpoint
};

void AddCommonOptions(CLI::App* cmd, RewardArgs* args, bool serving) {
  cmd->add_option("--config", args->config,
                  "run config whose `rewards` section supplies the defaults");
  cmd->add_option("--set", args->overrides, "override a config key (k=v)");
  cmd->add_option("--plugin", args->plugins,
                  "shared library with more rewards (repeatable; added to "
                  "rewards.plugins)");
  AddCurveKeysOption(cmd, &args->curve_keys);
  cmd->add_option("--timeout-ms", args->timeout_ms,
                  "per-component timeout (default rewards.timeout_ms)");
  if (serving) {
    cmd->add_option("--endpoint", args->endpoint,
                    "endpoint to bind (default rewards.endpoint)");
    cmd->add_option("--workers", args->workers,
                    "scoring threads (default rewards.workers)");
  } else {
    cmd->add_option("--endpoint", args->endpoint,
                    "score through the service at this endpoint instead of "
                    "in-process");
  }
}

RewardsConfig Resolve(const RewardArgs& args) {
  RewardsConfig rewards;
  if (!args.config.empty()) {
    rewards = config::ResolveConfig<ClinrlConfig>(args.config, args.overrides)
                  .rewards;
  } else if (!args.overrides.empty()) {
    throw BadRequest("--set: needs --config");
  }
  if (!args.endpoint.empty()) rewards.endpoint = args.endpoint;
  InstallCurveKeysFrom(args.curve_keys, "--curve-keys");
  if (args.workers >= 0) rewards.workers = args.workers;
  if (args.timeout_ms >= 0) rewards.timeout_ms = args.timeout_ms;
  rewards.plugins = rewards::ResolvePluginPaths(rewards.plugins, args.config);
  for (const auto& p : rewards::ResolvePluginPaths(args.plugins, "")) {
    rewards.plugins.push_back(p);
  }
  rewards::LoadRewardPlugins(rewards.plugins);
  return rewards;
}

struct CheckArgs {
  std::vector<std::string> plugins;
  std::string name;
  std::vector<std::string> params;
  std::vector<std::string> bad_params;
};

nlohmann::json ParseJsonOption(const std::string& option,
                               const std::string& text) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw BadRequest(
        fmt::format("{}: {} is not JSON: {}", option, text, e.what()));
  }
}

rewards::ConformanceCase ParseSamples(const CheckArgs& args) {
  rewards::ConformanceCase samples;
  for (const auto& text : args.params) {
    samples.valid.push_back(ParseJsonOption("--params", text));
  }
  for (const auto& text : args.bad_params) {
    // The field never holds '=', the JSON may ("pattern": "a=b").
    const size_t split = text.rfind('=');
    if (split == std::string::npos || split + 1 == text.size()) {
      throw BadRequest(fmt::format(
          "--bad-params: expected JSON=FIELD (params the plug-in must refuse "
          "and the field its error names, e.g. '{{\"keywords\": []}}="
          "params.keywords'), got {}",
          text));
    }
    samples.malformed.push_back(
        {ParseJsonOption("--bad-params", text.substr(0, split)),
         text.substr(split + 1)});
  }
  return samples;
}

// The rewards the --plugin libraries registered, or only --name.
std::vector<std::string> RewardsToCheck(const CheckArgs& args) {
  if (args.plugins.empty() && args.name.empty()) {
    throw BadRequest(
        "--plugin: required (a reward plug-in library to check), or --name "
        "to check one registered reward");
  }
  std::vector<std::string> names;
  for (const auto& path : rewards::ResolvePluginPaths(args.plugins, "")) {
    const rewards::LoadedPlugin plugin = rewards::LoadRewardPlugin(path);
    if (plugin.rewards.empty()) {
      throw BadRequest(fmt::format(
          "--plugin {}: the library registered no rewards (a plug-in "
          "registers with CLINRL_REGISTER_REWARD; see docs/rewards.md, "
          "\"Plug-ins from shared libraries\")",
          path));
    }
    for (const auto& name : plugin.rewards) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(name);
      }
    }
  }
  if (!args.name.empty()) {
    if (!rewards::RewardRegistry::Global().Has(args.name)) {
      throw BadRequest(fmt::format(
          "--name: no reward '{}' is registered; registered: {}", args.name,
          fmt::join(rewards::RewardRegistry::Global().Names(), ", ")));
    }
    names = {args.name};
  }
  if ((!args.params.empty() || !args.bad_params.empty()) && names.size() > 1) {
    throw BadRequest(fmt::format(
        "--params/--bad-params: samples fit one reward, and {} are checked "
        "({}); pick one with --name",
        names.size(), fmt::join(names, ", ")));
  }
  return names;
}

// Prints one line per check, a summary and the JSON line; returns the number
// of failed checks.
int64_t CheckRewards(const std::vector<std::string>& names,
                     const rewards::ConformanceCase& samples) {
  int64_t checks = 0;
  int64_t failures = 0;
  for (const auto& name : names) {
    bool scored = false;
    for (const auto& result : rewards::CheckRewardConformance(name, samples)) {
      ++checks;
      scored = scored || result.check == "scores_are_finite";
      if (result.passed()) {
        std::cout << "PASS " << name << " " << result.check << "\n";
      } else {
        ++failures;
        std::cout << "FAIL " << name << " " << result.check << ": "
                  << result.failure << "\n";
      }
    }
    if (!scored) {
      std::cout << "NOTE " << name
                << ": no accepted params to score with, so the scoring checks "
                   "did not run; pass --params JSON\n";
    }
  }
  std::cout << fmt::format("{} checks on {} reward{}: {} passed, {} failed\n",
                           checks, names.size(), names.size() == 1 ? "" : "s",
                           checks - failures, failures);
  std::cout << nlohmann::json{{"checked", names}, {"failures", failures}}.dump()
            << std::endl;
  return failures;
}

void AddRewardCommands(CLI::App& app) {
  auto* reward = app.add_subcommand("reward", "the reward service (rewards/)");
  reward->require_subcommand(1);

  auto* serve = reward->add_subcommand(
      "serve", "score trajectories sent over ZeroMQ until SIGINT/SIGTERM");
  auto serve_args = std::make_shared<RewardArgs>();
  auto exit_after_s = std::make_shared<double>(0.0);
  auto insecure = std::make_shared<bool>(false);
  AddCommonOptions(serve, serve_args.get(), true);
  serve->add_flag("--insecure", *insecure,
                  "allow a non-loopback tcp endpoint (no authentication: "
                  "anyone who reaches the port is served)");
  serve->add_option("--exit-after-s", *exit_after_s,
                    "stop after this many seconds (0 = run until a signal)");
  serve->callback([serve_args, exit_after_s, insecure] {
    const int rc = RunCommand([&] {
      const RewardsConfig cfg = Resolve(*serve_args);
      if (cfg.endpoint.empty()) {
        throw BadRequest(
            "--endpoint: required (or rewards.endpoint in --config), e.g. "
            "tcp://127.0.0.1:5556");
      }
      RequireLoopbackUnlessInsecure(cfg.endpoint, *insecure, "--endpoint");
      for (int sig : {SIGINT, SIGTERM}) {
        CLINRL_CHECK_ERRNO(std::signal(sig, OnSignal) != SIG_ERR, "signal",
                           "installing the handler for signal {}", sig);
      }
      rewards::RewardServer server({cfg.endpoint, cfg.workers, cfg.timeout_ms});
      // Scripts wait for this line before they connect.
      std::cout << nlohmann::json{{"serving", server.endpoint()},
                                  {"workers", cfg.workers},
                                  {"timeout_ms", cfg.timeout_ms}}
                       .dump()
                << std::endl;
      const auto start = std::chrono::steady_clock::now();
      while (!g_stop) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (*exit_after_s > 0 && std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - start)
                                         .count() >= *exit_after_s) {
          break;
        }
      }
      server.Stop();
      const auto& s = server.stats();
      std::cout << nlohmann::json{{"requests", s.requests.load()},
                                  {"scored", s.scored.load()},
                                  {"flagged", s.flagged.load()},
                                  {"errors", s.errors.load()}}
                       .dump()
                << std::endl;
    });
    if (rc != 0) std::exit(rc);
  });

  auto* score = reward->add_subcommand(
      "score",
      "score a trajectories.jsonl file; prints one JSON line per trajectory");
  auto score_args = std::make_shared<RewardArgs>();
  auto input = std::make_shared<std::string>();
  AddCommonOptions(score, score_args.get(), false);
  score->add_option("trajectories", *input, "trajectories JSONL file")
      ->required();
  score->callback([score_args, input] {
    const int rc = RunCommand([&] {
      const RewardsConfig cfg = Resolve(*score_args);
      std::unique_ptr<rewards::RewardClient> client;
      if (!score_args->endpoint.empty()) {
        client = std::make_unique<rewards::RewardClient>(
            rewards::RewardClientOptions{score_args->endpoint,
                                         cfg.timeout_ms * 4 + 1000});
      }
      rewards::ScoreOptions options;
      options.timeout_ms = cfg.timeout_ms;
      ReadJsonl(*input, [&](const nlohmann::json& row, int64_t line) {
        Trajectory t;
        try {
          t = TrajectoryFromJson(row);
        } catch (const Error& e) {
          throw BadRequest(
              fmt::format("{} line {}: {}", *input, line, e.what()));
        }
        const RewardResult r =
            client ? client->Score(t) : rewards::ScoreTrajectory(t, options);
        nlohmann::json out = rewards::RewardResultToJson(r);
        out["episode_id"] = t.episode_id;
        out["success"] = rewards::IsSuccess(r, t.reward_spec);
        std::cout << out.dump() << "\n";
      });
    });
    if (rc != 0) std::exit(rc);
  });

  auto* plugins = reward->add_subcommand(
      "plugins",
      "list the registered reward plug-ins (after loading any "
      "--plugin libraries)");
  auto plugin_args = std::make_shared<RewardArgs>();
  AddCommonOptions(plugins, plugin_args.get(), false);
  plugins->callback([plugin_args] {
    const int rc = RunCommand([&] {
      Resolve(*plugin_args);
      std::cout
          << nlohmann::json(rewards::RewardRegistry::Global().Names()).dump()
          << std::endl;
    });
    if (rc != 0) std::exit(rc);
  });

  auto* check = reward->add_subcommand(
      "check",
      "run the reward conformance suite on the rewards --plugin libraries "
      "register (or on --name); exits 1 when a check fails");
  auto check_args = std::make_shared<CheckArgs>();
  check->add_option("--plugin", check_args->plugins,
                    "reward plug-in library to check (repeatable)");
  check->add_option("--name", check_args->name,
                    "check only this registered reward");
  check->add_option("--params", check_args->params,
                    "params the reward must accept, as JSON (repeatable); "
                    "they are scored");
  check->add_option("--bad-params", check_args->bad_params,
                    "JSON=FIELD: params the reward must refuse with a "
                    "BadRequest naming FIELD (repeatable)");
  check->callback([check_args] {
    int64_t failures = 0;
    const int rc = RunCommand([&] {
      const rewards::ConformanceCase samples = ParseSamples(*check_args);
      failures = CheckRewards(RewardsToCheck(*check_args), samples);
    });
    if (rc != 0) std::exit(rc);
    if (failures > 0) std::exit(1);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(reward, AddRewardCommands);

}  // namespace clinrl::cli
