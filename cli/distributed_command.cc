// `clinrl distributed ...`: the processes of a distributed run
// (docs/distributed.md).
//
//   distributed roles CONFIG [--world-size N]   the role map as JSON
//   distributed run CONFIG [--role R --index I] [--resume]
//
// `run` under mpirun/srun takes its rank from the launcher (every rank runs
// the same command); started by hand or by a test it takes --role and
// --index. Either way the role map comes from the config's distributed
// section, so every process agrees on who binds which endpoint.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cli/command_registry.h"
#include "cli/curve_keys_flag.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stop_signal.h"
#include "core/zmq_util.h"
#include "distributed/communicator.h"
#include "distributed/heartbeat.h"
#include "distributed/role_map.h"
#include "envs/env_server.h"
#include "rewards/plugin_loader.h"
#include "rewards/reward_server.h"
#include "rollout/rollout_service.h"
#include "trainer/learner_group.h"
#include "trainer/remote_episode_source.h"
#include "trainer/training_run.h"

namespace clinrl::cli {
namespace {

using distributed::Role;

struct RunArgs {
  std::string role;
  int index = 0;
  bool resume = false;
  std::string resume_from;
  std::vector<std::string> allow_config_change;
  std::string curve_keys;  // overrides distributed.curve_keys
};

std::string RunDirOf(const ClinrlConfig& config) {
  return std::filesystem::absolute(config.run.out_dir + "/" + config.run.name)
      .lexically_normal()
      .string();
}

std::string Hostname() {
  char name[256] = {};
  CLINRL_CHECK_ERRNO(gethostname(name, sizeof(name) - 1) == 0, "gethostname",
                     "reading this node's hostname");
  return name;
}

// Blocks until the learner ends the run (0) or stops answering (throws).
void ServeUntilLearnerEnds(const ClinrlConfig& config,
                           const distributed::RoleMap& map, Role role,
                           int index) {
  distributed::HeartbeatOptions hb;
  hb.endpoint = map.work.connect;
  hb.worker = fmt::format("{}-{}", distributed::RoleName(role), index);
  hb.role = distributed::RoleName(role);
  hb.interval_ms = config.distributed.heartbeat_ms;
  hb.misses = config.distributed.heartbeat_misses;
  distributed::HeartbeatSender heartbeat(hb);
  while (!heartbeat.stop_requested()) {
    if (heartbeat.learner_lost()) {
      throw Timeout(fmt::format("{}: {}", hb.worker, heartbeat.LostMessage()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string failure = heartbeat.failure();
  if (!failure.empty()) {
    throw IoError(
        fmt::format("{}: the learner's run failed: {}", hb.worker, failure));
  }
  CLINRL_LOG_INFO("{}: the learner ended the run", hb.worker);
}

void RunLearner(const ClinrlConfig& config, const distributed::RoleMap& map,
                const RunArgs& args, int index,
                distributed::Communicator* learners) {
  if (config.distributed.learner_ranks > 1 && learners == nullptr) {
    throw ConfigError(fmt::format(
        "distributed.learner_ranks: got {}, expected 1 when started with "
        "--role (several learner ranks talk over MPI: use launch/mpirun)",
        config.distributed.learner_ranks));
  }
  if (index > 0) {
    // Trains its share of each batch; rank 0 does everything else.
    trainer::RunLearnerFollower(config, *learners);
    return;
  }
  trainer::TrainingRunOptions options;
  options.resume = args.resume;
  options.resume_from = args.resume_from;
  options.allow_config_change = args.allow_config_change;
  options.learner_comm = learners;
  if (config.distributed.rollout_ranks > 0) {
    trainer::RemoteEpisodeSourceOptions ro;
    ro.work_endpoint = map.work.bind;
    ro.weights_endpoint = map.weights.bind;
    ro.group_size = config.rollout.group_size;
    ro.max_policy_lag = config.distributed.max_policy_lag;
    ro.heartbeat_ms = config.distributed.heartbeat_ms;
    ro.heartbeat_misses = config.distributed.heartbeat_misses;
    ro.progress_timeout_ms = config.distributed.timeout_s * 1000;
    options.episode_source = [ro](const policy::Tokenizer& tokenizer) {
      return std::make_unique<trainer::RemoteEpisodeSource>(tokenizer, ro);
    };
  }
  trainer::TrainingRun run(config, options);
  std::cout << "learner: run directory " << run.run_dir().root << std::endl;
  const auto table = run.Run();
  if (!table.empty()) {
    std::cout << "\n" << trainer::TrainingRun::FormatTable(table);
  }
}

void RunRole(const ClinrlConfig& config, const distributed::RoleMap& map,
             Role role, int index, const RunArgs& args,
             distributed::Communicator* learners) {
  CLINRL_LOG_INFO("rank {} of {}: {} {}", map.RankOf(role, index),
                  map.world_size, distributed::RoleName(role), index);
  switch (role) {
    case Role::kLearner:
      RunLearner(config, map, args, index, learners);
      return;
    case Role::kRollout: {
      rollout::RolloutServiceOptions ro;
      ro.worker_id = fmt::format("rollout-{}", index);
      ro.work_endpoint = map.work.connect;
      ro.weights_endpoint = map.weights.connect;
      ro.env_endpoint = map.EnvEndpointFor(index);
      ro.reward_endpoint = map.RewardEndpointFor(index);
      ro.heartbeat_ms = config.distributed.heartbeat_ms;
      ro.heartbeat_misses = config.distributed.heartbeat_misses;
      rollout::RolloutService service(config, ro);
      const auto stats = service.Run();
      std::cout << nlohmann::json{{"worker", ro.worker_id},
                                  {"groups", stats.groups},
                                  {"weight_updates", stats.weight_updates}}
                       .dump()
                << std::endl;
      return;
    }
    case Role::kEnvServer: {
      envs::EnvServerOptions so;
      for (const EnvEntry& e : config.envs) {
        so.service.envs.push_back(e.name);
        so.service.env_options[e.name] = e.options;
      }
      so.endpoint = map.env_servers.at(static_cast<size_t>(index)).bind;
      clinrl::PrepareBind(so.endpoint);
      envs::EnvServer server(so);
      server.Start();
      std::cout << "env server " << index << " on " << server.bound_endpoint()
                << std::endl;
      ServeUntilLearnerEnds(config, map, role, index);
      server.Stop();
      return;
    }
    case Role::kRewardServer: {
      rewards::LoadRewardPlugins(config.rewards.plugins);
      const std::string endpoint =
          map.reward_servers.at(static_cast<size_t>(index)).bind;
      clinrl::PrepareBind(endpoint);
      rewards::RewardServer server(
          {endpoint, config.rewards.workers, config.rewards.timeout_ms});
      std::cout << "reward server " << index << " on " << server.endpoint()
                << std::endl;
      ServeUntilLearnerEnds(config, map, role, index);
      server.Stop();
      // What the run's rollout workers had scored here.
      CLINRL_LOG_INFO("reward server {}: scored {} trajectories, {} flagged",
                      index, server.stats().scored.load(),
                      server.stats().flagged.load());
      return;
    }
  }
}

void Run(const ClinrlConfig& config, const RunArgs& args) {
  const std::string run_dir = RunDirOf(config);
  // Every tcp:// endpoint of the run (and any tcp env or reward endpoint of
  // the config) uses the run's CURVE keys; the first process makes them.
  InstallRunCurveKeys(config, run_dir + "/curve");
  if (!args.role.empty()) {
    // Started by hand: every process computes the same map on its own.
    const Role role = distributed::ParseRole(args.role, "--role");
    const distributed::RoleMap map = distributed::ComputeRoleMap(
        config, distributed::RequiredWorldSize(config.distributed), {},
        run_dir);
    map.RankOf(role, args.index);  // validates --index
    RunRole(config, map, role, args.index, args, nullptr);
    return;
  }
  if (!distributed::LaunchedUnderMpi()) {
    throw BadRequest(
        "--role: expected one of learner, rollout, env_server, reward_server "
        "(with --index) when not started by mpirun or srun");
  }
  // "single" cannot span processes; under a launcher it means MPI.
  const std::string backend = config.distributed.backend == "single"
                                  ? "mpi"
                                  : config.distributed.backend;
  auto world = distributed::MakeCommunicator(
      backend, config.distributed.timeout_s * 1000);
  // Each rank learns every rank's host, so that the map can choose tcp when
  // the job spans nodes and name the host each endpoint is on.
  std::vector<std::string> hosts(static_cast<size_t>(world->size()));
  for (int r = 0; r < world->size(); ++r) {
    std::string host = world->rank() == r ? Hostname() : "";
    world->BroadcastBytes(host, r);
    hosts[static_cast<size_t>(r)] = host;
  }
  const distributed::RoleMap map =
      distributed::ComputeRoleMap(config, world->size(), hosts, run_dir);
  const distributed::RankAssignment& me =
      map.ranks.at(static_cast<size_t>(world->rank()));
  if (world->rank() == 0) {
    std::cout << "role map: " << map.ToJson().dump() << std::endl;
  }
  // Every rank takes part in the split; only the learners use theirs.
  std::unique_ptr<distributed::Communicator> learners =
      world->Split(me.role == Role::kLearner ? 0 : 1, world->rank());
  try {
    RunRole(config, map, me.role, me.index, args,
            me.role == Role::kLearner ? learners.get() : nullptr);
  } catch (const std::exception& e) {
    if (me.role == Role::kLearner) {
      // A learner that fails takes the job down (MPI_Abort) with the
      // reason, instead of leaving the other ranks to time out.
      distributed::AbortJob(
          fmt::format("learner rank {} failed: {}", me.index, e.what()));
    }
    throw;
  }
}

void AddDistributedCommands(CLI::App& app) {
  auto* group =
      app.add_subcommand("distributed",
                         "processes of a distributed run (learner, rollout "
                         "workers, env and reward servers)");
  group->require_subcommand(1);

  auto* roles = group->add_subcommand(
      "roles", "print the role map of a config as JSON (world_size first)");
  auto roles_args = std::make_shared<ConfigArgs>();
  auto world_size = std::make_shared<int>(0);
  AddConfigArgs(roles, roles_args.get());
  roles->add_option("--world-size", *world_size,
                    "ranks of the job (default: what the roles need)");
  roles->callback([roles_args, world_size] {
    const int rc = RunCommand([&] {
      const auto config = config::ResolveConfig<ClinrlConfig>(
          roles_args->path, roles_args->overrides);
      const int n = *world_size > 0
                        ? *world_size
                        : distributed::RequiredWorldSize(config.distributed);
      std::cout << distributed::ComputeRoleMap(config, n, {}, RunDirOf(config))
                       .ToJson()
                       .dump(2)
                << "\n";
    });
    if (rc != 0) std::exit(rc);
  });

  auto* run = group->add_subcommand(
      "run", "run this process's role: from mpirun/srun's rank, or --role");
  auto run_config = std::make_shared<ConfigArgs>();
  auto run_args = std::make_shared<RunArgs>();
  AddConfigArgs(run, run_config.get());
  run->add_option("--role", run_args->role,
                  "learner | rollout | env_server | reward_server (when not "
                  "under mpirun/srun)");
  run->add_option("--index", run_args->index,
                  "which rank of that role (0-based)");
  run->add_flag("--resume", run_args->resume,
                "learner: continue from the latest checkpoint");
  run->add_option("--resume-from", run_args->resume_from,
                  "learner: continue from this checkpoint folder "
                  "(checkpoints/step_N) instead of the newest");
  run->add_option("--allow-config-change", run_args->allow_config_change,
                  "learner, with --resume: a config key (or prefix) that may "
                  "differ from the run's although it changes training");
  run->add_option("--curve-keys", run_args->curve_keys,
                  "CURVE key folder of the run's tcp:// endpoints (default "
                  "distributed.curve_keys, else <run dir>/curve, made when "
                  "absent)");
  run->callback([run_config, run_args] {
    // SIGTERM/SIGINT, which mpirun and Slurm send to every rank: the learner
    // checkpoints the step in progress and ends the run; the other roles
    // keep serving until it does (docs/distributed.md).
    InstallStopSignalHandlers();
    const int rc = RunCommand([&] {
      auto config = config::ResolveConfig<ClinrlConfig>(run_config->path,
                                                        run_config->overrides);
      config.rewards.plugins =
          rewards::ResolvePluginPaths(config.rewards.plugins, run_config->path);
      if (!run_args->curve_keys.empty()) {
        config.distributed.curve_keys = run_args->curve_keys;
      }
      Run(config, *run_args);
    });
    if (rc != 0) std::exit(rc);
    if (StopRequested()) {
      std::cout << "stopped by signal " << StopSignal()
                << "; the learner checkpointed its last step: add --resume to "
                   "continue"
                << std::endl;
      std::exit(StopExitCode(StopSignal()));
    }
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(distributed, AddDistributedCommands);

}  // namespace clinrl::cli
