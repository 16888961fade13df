// `clinrl keys generate DIR`: the CURVE key folder for servers and clients
// started by hand (`clinrl env serve --curve-keys DIR`, `clinrl env eval
// --endpoint ... --curve-keys DIR`); `clinrl distributed run` makes its own
// in the run folder. Also the --curve-keys flag the other commands share.
#include <iostream>

#include "cli/command_registry.h"
#include "cli/curve_keys_flag.h"
#include "core/curve_auth.h"
#include "core/curve_keys.h"
#include "core/log.h"

namespace clinrl::cli {

void AddCurveKeysOption(CLI::App* command, std::string* dir) {
  command->add_option(
      "--curve-keys", *dir,
      "CURVE key folder (clinrl keys generate): tcp:// endpoints are "
      "encrypted and serve only clients with these keys");
}

void InstallCurveKeysFrom(const std::string& dir, const std::string& field) {
  if (dir.empty()) return;
  InstallCurveKeys(ReadCurveKeys(dir, field));
  CLINRL_LOG_INFO("CURVE keys from {}", dir);
}

void InstallRunCurveKeys(const ClinrlConfig& config,
                         const std::string& default_dir) {
  const std::string& configured = config.distributed.curve_keys;
  if (!configured.empty()) {
    InstallCurveKeysFrom(configured, "distributed.curve_keys");
    return;
  }
  if (default_dir.empty()) return;
  InstallCurveKeys(EnsureCurveKeys(default_dir, "distributed.curve_keys"));
  CLINRL_LOG_INFO("CURVE keys of the run: {}", default_dir);
}

namespace {

void AddKeysCommands(CLI::App& app) {
  auto* group = app.add_subcommand(
      "keys", "CURVE keys for tcp:// endpoints (docs/distributed.md)");
  group->require_subcommand(1);
  auto* generate = group->add_subcommand(
      "generate",
      "write a new key folder (server and client key pairs, mode 0600)");
  auto dir = std::make_shared<std::string>();
  generate->add_option("DIR", *dir, "folder to create (must not exist)")
      ->required();
  generate->callback([dir] {
    const int rc = RunCommand([&] {
      WriteCurveKeys(GenerateCurveKeys(), *dir);
      std::cout << "CURVE keys written to " << *dir
                << " (give the folder to servers and clients with "
                   "--curve-keys; keep it private)\n";
    });
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace

CLINRL_REGISTER_COMMAND(keys, AddKeysCommands);

}  // namespace clinrl::cli
