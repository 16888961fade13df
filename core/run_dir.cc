#include "core/run_dir.h"

#include "core/atomic_file.h"
#include "core/config_schema.h"

namespace clinrl {

RunDir CreateRunDir(const ClinrlConfig& config) {
  RunDir dir{config.run.out_dir + "/" + config.run.name};
  MakeDirectories(dir.checkpoints());
  WriteFileAtomic(dir.config_path(),
                  config::WriteConfig(config).dump(2) + "\n");
  return dir;
}

}  // namespace clinrl
