#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace clinrl {

namespace fs = std::filesystem;

void SyncDirectory(const std::string& dir) {
  const int fd =
      ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  CLINRL_CHECK_ERRNO(fd >= 0, "open", "syncing folder {}", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  CLINRL_CHECK_ERRNO(rc == 0, "fsync", "syncing folder {}", dir);
}

void MakeDirectories(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    throw IoError(
        fmt::format("cannot create folder {}: {}", dir, ec.message()));
  }
}

void WriteFileAtomic(const std::string& path, std::string_view content) {
  const fs::path target(path);
  const std::string dir = target.parent_path().string();
  const std::string tmp =
      fmt::format("{}.tmp.{}", path, static_cast<long>(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  CLINRL_CHECK_ERRNO(fd >= 0, "open", "writing {}", tmp);
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n =
        ::write(fd, content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      CLINRL_CHECK_ERRNO(false, "write", "writing {}", tmp);
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    ::unlink(tmp.c_str());
    CLINRL_CHECK_ERRNO(false, "fsync", "writing {}", tmp);
  }
  CLINRL_CHECK_ERRNO(::close(fd) == 0, "close", "writing {}", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    CLINRL_CHECK_ERRNO(false, "rename", "replacing {}", path);
  }
  SyncDirectory(dir);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} for reading", path));
  std::stringstream s;
  s << in.rdbuf();
  if (in.bad()) throw IoError(fmt::format("error reading {}", path));
  return s.str();
}

}  // namespace clinrl
