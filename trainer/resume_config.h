// A resumed run must train the run it resumes. `--resume` with a config
// whose training-relevant fields changed (seed, model, data, learning rate,
// schedule, batch sizes, ...) would silently splice two different runs into
// one directory; it is refused unless the user names each changed key with
// `--allow-config-change`. Operational fields (threads, endpoints, timeouts,
// evaluation sizes, checkpoint cadence) may change freely. Every accepted
// change is appended to config_changes.jsonl in the run directory, so the
// history survives config.json being rewritten with the new config.
#pragma once

#include <string>
#include <vector>

#include "core/clinrl_config.h"

namespace clinrl::trainer {

struct ConfigChange {
  std::string key;   // flattened, "trainer.lr", "envs.0.options.noise"
  std::string from;  // JSON text; "(absent)" when the key is new
  std::string to;
};

// The keys of `before` and `after` (resolved configs as JSON) whose values
// differ, flattened with dots; arrays of scalars compare as one value.
std::vector<ConfigChange> DiffConfigs(const nlohmann::json& before,
                                      const nlohmann::json& after);

// Whether a change of `key` leaves the course of training as it was.
bool IsOperationalKey(const std::string& key);

// Compares `config` with `run_root`/config.json (the config the run last
// started with; nothing to compare when absent). Throws ConfigError naming
// every changed key that is neither operational nor matched by `allowed`
// (a key or a key prefix: "trainer.lr", "trainer.sft"); otherwise appends
// the changes, if any, to config_changes.jsonl.
void CheckResumedConfig(const std::string& run_root, const ClinrlConfig& config,
                        const std::vector<std::string>& allowed);

}  // namespace clinrl::trainer
