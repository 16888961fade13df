// A run directory (docs/design.md): out_dir/name holding config.json (the
// resolved config, always), checkpoints/, metrics.jsonl and trajectories.jsonl.
#pragma once

#include <string>

#include "core/clinrl_config.h"

namespace clinrl {

struct RunDir {
  std::string root;
  std::string config_path() const { return root + "/config.json"; }
  std::string checkpoints() const { return root + "/checkpoints"; }
  std::string metrics_path() const { return root + "/metrics.jsonl"; }
  std::string trajectories_path() const { return root + "/trajectories.jsonl"; }
};

// Creates the run directory and writes the resolved config.json atomically.
RunDir CreateRunDir(const ClinrlConfig& config);

}  // namespace clinrl
