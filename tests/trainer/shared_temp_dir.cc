#include "tests/trainer/shared_temp_dir.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>

namespace clinrl::trainer::testing {

std::string SharedTempDir(distributed::Communicator& comm,
                          const std::string& tag) {
  namespace fs = std::filesystem;
  std::string dir;
  if (comm.rank() == 0) {
    dir = (fs::temp_directory_path() /
           fmt::format("clinrl_{}_{}", tag, ::getpid()))
              .string();
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  comm.BroadcastBytes(dir, 0);
  return dir;
}

}  // namespace clinrl::trainer::testing
