// `clinrl train CONFIG [--set k=v ...] [--resume]`: runs the stages of the
// config (SFT, GRPO) and prints the evaluation table at the end.
#include <iostream>

#include "cli/command_registry.h"
#include "core/clinrl_config.h"
#include "core/config.h"
#include "core/log.h"
#include "trainer/training_run.h"

namespace clinrl::cli {
namespace {

void AddTrainCommands(CLI::App& app) {
  auto* train = app.add_subcommand(
      "train", "run the stages of a config (SFT, GRPO) with evaluation");
  auto args = std::make_shared<ConfigArgs>();
  auto options = std::make_shared<trainer::TrainingRunOptions>();
  AddConfigArgs(train, args.get());
  train->add_flag("--resume", options->resume,
                  "continue from the run directory's latest checkpoint");
  train->add_option("--stop-after", options->stop_after,
                    "stop after this many steps (for testing resume)");
  train->add_flag("!--no-baselines", options->baselines,
                  "skip the scripted random/oracle rows of the table");
  train->callback([args, options] {
    const int rc = RunCommand([&] {
      const auto config =
          config::ResolveConfig<ClinrlConfig>(args->path, args->overrides);
      trainer::TrainingRun run(config, *options);
      const std::string root = run.run_dir().root;
      std::cout << "run directory: " << root << "\n"
                << "  metrics:      " << root << "/metrics.jsonl\n"
                << "  trajectories: " << root << "/trajectories.jsonl\n"
                << "  tensorboard:  tensorboard --logdir " << root << "\n"
                << std::flush;
      const auto table = run.Run();
      if (!table.empty()) {
        std::cout << "\n"
                  << trainer::TrainingRun::FormatTable(table)
                  << "(test split, greedy decoding; written to " << root
                  << "/summary.json)\n";
      }
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(train, AddTrainCommands);

}  // namespace clinrl::cli
