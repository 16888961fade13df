// The `clinrl` binary: one executable, one subcommand per task. Command
// groups register themselves from their own files in cli/.
#include <cstdlib>
#include <iostream>

#include "cli/command_registry.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{
      "clinrl: reinforcement learning for clinical LLM agents "
      "(rollout workers, env and reward services, GRPO learner)",
      "clinrl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "clinrl 0.1.0");
  std::string log_level = "info";
  app.add_option("--log-level", log_level,
                 std::string("log level: ") + clinrl::LogLevelNames())
      ->capture_default_str();

  const auto& commands = clinrl::cli::CommandRegistry();
  for (const auto& name : commands.Names()) commands.Get(name)(app);

  // Logging must be ready before any subcommand callback runs.
  app.parse_complete_callback([&] {
    const int rc =
        clinrl::cli::RunCommand([&] { clinrl::InitLogging(log_level); });
    if (rc != 0) std::exit(rc);
  });
  CLI11_PARSE(app, argc, argv);
  return 0;
}
