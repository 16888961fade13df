#include "core/error.h"

#include <cerrno>
#include <cstring>

namespace clinrl::detail {

namespace {
const char* BaseName(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}
}  // namespace

void ThrowCheckFailure(const char* file, int line, const char* expr,
                       const std::string& message) {
  throw InternalError(fmt::format("{} (check `{}` failed at {}:{})", message,
                                  expr, BaseName(file), line));
}

void ThrowErrno(const char* file, int line, const char* call,
                const std::string& what) {
  const int err = errno;
  throw IoError(fmt::format("{}: {} failed: {} ({}:{})", what, call,
                            std::strerror(err), BaseName(file), line));
}

}  // namespace clinrl::detail
