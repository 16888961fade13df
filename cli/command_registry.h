// Subcommands of the `clinrl` binary register themselves here, one file per
// command group in cli/, so adding a command touches no shared file:
//
//   void AddEnvCommands(CLI::App& app) { ... }
//   CLINRL_REGISTER_COMMAND(env, AddEnvCommands);
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "core/registry.h"

namespace clinrl::cli {

using CommandAdder = std::function<void(CLI::App&)>;

// Command groups by name; main() adds them to the app in name order.
Registry<CommandAdder>& CommandRegistry();

// Wraps a command body: clinrl errors print as one line `error: ...` and
// exit with status 2 (bad input) or 1 (anything else).
int RunCommand(const std::function<void()>& body);

// Options every command that runs a config shares: CONFIG and --set.
struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
};
void AddConfigArgs(CLI::App* command, ConfigArgs* args);

}  // namespace clinrl::cli

#define CLINRL_REGISTER_COMMAND(name, adder)                 \
  static ::clinrl::StaticRegistration clinrl_command_##name( \
      [] { ::clinrl::cli::CommandRegistry().Add(#name, adder); })
