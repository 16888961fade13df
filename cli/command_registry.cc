#include "cli/command_registry.h"

#include <cstdio>
#include <cstdlib>

#include "core/error.h"
#include "core/log.h"

namespace clinrl::cli {

Registry<CommandAdder>& CommandRegistry() {
  static Registry<CommandAdder> registry(
      "command group",
      "command group '{name}' is not registered; registered: {known}");
  return registry;
}

int RunCommand(const std::function<void()>& body) {
  try {
    body();
    return 0;
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const BadRequest& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

void AddConfigArgs(CLI::App* command, ConfigArgs* args) {
  command->add_option("config", args->path, "config JSON file")->required();
  command
      ->add_option("--set", args->overrides,
                   "override a key: --set trainer.lr=3e-6 (repeatable)")
      ->take_all()
      ->allow_extra_args(false);
}

}  // namespace clinrl::cli
