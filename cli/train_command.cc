// `clinrl train CONFIG [--set k=v ...] [--resume] [--report-every N]
// [--skip-memory-check]`: runs the stages of the config (SFT, GRPO), prints
// the evaluation table at the end and writes report.html (refreshed every N
// steps when asked). Before anything is built it plans the run's memory
// (trainer/memory_plan.h) and refuses a run that cannot fit its device.
#include <filesystem>
#include <iostream>

#include "cli/command_registry.h"
#include "cli/curve_keys_flag.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stop_signal.h"
#include "report/report_builder.h"
#include "rewards/plugin_loader.h"
#include "trainer/memory_capacity.h"
#include "trainer/memory_fix.h"
#include "trainer/memory_plan.h"
#include "trainer/training_run.h"

namespace clinrl::cli {
namespace {

// The newest TensorBoard event file of the run (a resumed run adds one).
std::string LatestEventsFile(const std::string& root) {
  std::string latest;
  std::filesystem::file_time_type newest{};
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("events.out.tfevents.", 0) != 0) continue;
    const auto t = entry.last_write_time(ec);
    if (ec) continue;
    if (latest.empty() || t > newest) {
      latest = entry.path().string();
      newest = t;
    }
  }
  return latest;
}

// A report that cannot be written must not end a training run: the metrics
// it is made of are safe on disk either way.
void RefreshReport(const std::string& root) {
  try {
    report::ReportOptions ro;
    ro.run_dirs = {root};
    report::WriteReport(ro);
  } catch (const std::exception& e) {
    CLINRL_LOG_WARN("report.html not refreshed: {}", e.what());
  }
}

// `clinrl plan`'s check for this one process (the learner, generating its
// own episodes) on policy.device, whose memory is the GPU's or the host's
// RAM: a run that cannot fit stops here, with the largest item and an
// option that fixes it, rather than minutes later out of memory.
void CheckRunFitsMemory(const ClinrlConfig& config,
                        const std::string& config_path) {
  ClinrlConfig one_process = config;
  one_process.distributed.learner_ranks = 1;
  one_process.distributed.rollout_ranks = 0;
  one_process.distributed.env_server_ranks = 0;
  one_process.distributed.reward_server_ranks = 0;
  trainer::MemoryPlanOptions options;
  options.single_process = true;
  options.learner_ranks = 1;
  options.sharding =
      trainer::ParseSharding(config.trainer.sharding, "trainer.sharding");
  options.cluster.cpu = config.policy.device == "cpu";
  options.cluster.gpus_per_node = options.cluster.cpu ? 0 : 1;
  options.cluster.device_bytes =
      trainer::DeviceMemoryBytes(config.policy.device, "policy.device");
  const trainer::MemoryPlan plan = trainer::PlanMemoryWithFix(
      one_process, trainer::PlanModelConfig(config.policy), options);
  if (plan.fits) {
    // Debug: a run that starts says nothing more than before.
    CLINRL_LOG_DEBUG("memory: {}", trainer::MemoryVerdict(plan));
    return;
  }
  throw ConfigError(fmt::format(
      "memory: the run cannot fit on {} ({}): {}; largest item: {}; {}. "
      "`clinrl plan {}` lists every item; --skip-memory-check runs it anyway",
      config.policy.device,
      fmt::format("{:.2f} GiB",
                  static_cast<double>(options.cluster.device_bytes) /
                      static_cast<double>(int64_t{1} << 30)),
      plan.problem, plan.largest,
      plan.fix.empty() ? "nothing the planner knows makes it fit"
                       : "fix: set " + plan.fix,
      config_path));
}

void AddTrainCommands(CLI::App& app) {
  auto* train = app.add_subcommand(
      "train", "run the stages of a config (SFT, GRPO) with evaluation");
  auto args = std::make_shared<ConfigArgs>();
  auto options = std::make_shared<trainer::TrainingRunOptions>();
  AddConfigArgs(train, args.get());
  train->add_flag("--resume", options->resume,
                  "continue from the run directory's latest checkpoint");
  train->add_option("--resume-from", options->resume_from,
                    "with --resume: continue from this checkpoint folder "
                    "(checkpoints/step_N) instead of the newest");
  train->add_option(
      "--allow-config-change", options->allow_config_change,
      "with --resume: a config key (or prefix) that may differ from the "
      "run's although it changes training; repeat for several");
  train->add_option("--stop-after", options->stop_after,
                    "stop after this many steps (for testing resume)");
  train->add_flag("!--no-baselines", options->baselines,
                  "skip the scripted random/oracle rows of the table");
  auto skip_memory_check = std::make_shared<bool>(false);
  train->add_flag("--skip-memory-check", *skip_memory_check,
                  "start even when `clinrl plan` says the run cannot fit");
  auto report_every = std::make_shared<int64_t>(0);
  train->add_option("--report-every", *report_every,
                    "refresh report.html every N training steps (0: only at "
                    "the end)");
  train->callback([args, options, report_every, skip_memory_check] {
    auto stopped_by = std::make_shared<int>(0);
    const int rc = RunCommand([&] {
      if (*report_every < 0) {
        throw BadRequest(fmt::format(
            "--report-every: got {}, expected 0 (report at the end only) or a "
            "number of steps",
            *report_every));
      }
      auto config =
          config::ResolveConfig<ClinrlConfig>(args->path, args->overrides);
      config.rewards.plugins =
          rewards::ResolvePluginPaths(config.rewards.plugins, args->path);
      if (!*skip_memory_check) CheckRunFitsMemory(config, args->path);
      // tcp env and reward endpoints of the config served with CURVE.
      InstallRunCurveKeys(config, "");
      trainer::TrainingRunOptions run_options = *options;
      // Known once the run has created its directory.
      auto report_root = std::make_shared<std::string>();
      if (*report_every > 0) {
        const int64_t every = *report_every;
        run_options.after_step = [report_root, every](int64_t step) {
          if (step % every == 0 && !report_root->empty()) {
            RefreshReport(*report_root);
          }
        };
      }
      // SIGTERM/SIGINT end the step in progress, save it and stop
      // (docs/training.md, faults and signals).
      InstallStopSignalHandlers();
      trainer::TrainingRun run(config, run_options);
      const std::string root = run.run_dir().root;
      *report_root = root;
      const std::string events = LatestEventsFile(root);
      std::cout << "run directory: " << root << "\n"
                << "  metrics:      " << root << "/metrics.jsonl\n"
                << "  trajectories: " << root << "/trajectories.jsonl\n"
                << "  events:       "
                << (events.empty() ? root + "/events.out.tfevents.*" : events)
                << "\n"
                << "  tensorboard:  tensorboard --logdir " << root << "\n"
                << "  report:       " << root << "/report.html"
                << (*report_every > 0
                        ? fmt::format(" (every {} steps and at the end)",
                                      *report_every)
                        : std::string(" (at the end; clinrl report " + root +
                                      " any time)"))
                << "\n"
                << std::flush;
      const auto table = run.Run();
      RefreshReport(root);
      if (StopRequested()) {
        std::cout << "stopped by signal " << StopSignal()
                  << "; the last step is checkpointed: add --resume to the "
                     "same command to continue\nreport: "
                  << root << "/report.html\n"
                  << std::flush;
        *stopped_by = StopSignal();
        return;
      }
      if (!table.empty()) {
        std::cout << "\n"
                  << trainer::TrainingRun::FormatTable(table)
                  << "(test split, greedy decoding; written to " << root
                  << "/summary.json)\n";
      }
      std::cout << "report: " << root << "/report.html\n";
    });
    if (rc != 0) std::exit(rc);
    if (*stopped_by != 0) std::exit(StopExitCode(*stopped_by));
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(train, AddTrainCommands);

}  // namespace clinrl::cli
