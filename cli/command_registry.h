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

namespace clinrl::cli {

using CommandAdder = std::function<void(CLI::App&)>;

struct CommandRegistration {
  std::string name;
  CommandAdder add;
};

std::vector<CommandRegistration>& CommandRegistry();

struct RegisterCommand {
  RegisterCommand(const char* name, CommandAdder add) {
    CommandRegistry().push_back({name, std::move(add)});
  }
};

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

#define CLINRL_REGISTER_COMMAND(name, adder) \
  static ::clinrl::cli::RegisterCommand clinrl_command_##name(#name, adder)
