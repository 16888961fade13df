// `clinrl config show CONFIG [--set k=v ...]`: prints the resolved config.
#include <iostream>

#include "cli/command_registry.h"
#include "core/clinrl_config.h"
#include "core/config.h"

namespace clinrl::cli {
namespace {

void AddConfigCommands(CLI::App& app) {
  auto* config = app.add_subcommand("config", "inspect run configs");
  config->require_subcommand(1);
  auto* show = config->add_subcommand(
      "show", "print the resolved config (defaults < file < --set) as JSON");
  auto args = std::make_shared<ConfigArgs>();
  AddConfigArgs(show, args.get());
  show->callback([args] {
    const int rc = RunCommand([&] {
      const auto resolved =
          config::ResolveConfig<ClinrlConfig>(args->path, args->overrides);
      std::cout << config::WriteConfig(resolved).dump(2) << "\n";
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(config, AddConfigCommands);

}  // namespace clinrl::cli
