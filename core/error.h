// Typed errors and the check helpers every external call goes through
// (docs/style.md, 4): a failed check says what failed, where, and why.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace clinrl {

// Base of every error clinrl throws on purpose; `code` is the wire-level
// error code of the env and reward protocols (bad_request, not_found, ...).
class Error : public std::runtime_error {
 public:
  Error(std::string code, const std::string& message)
      : std::runtime_error(message), code_(std::move(code)) {}
  const std::string& code() const { return code_; }

 private:
  std::string code_;
};

// A config file, --set override or option that does not match the schema.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message)
      : Error("bad_request", message) {}
};

// A malformed message or an argument a caller got wrong.
class BadRequest : public Error {
 public:
  explicit BadRequest(const std::string& message)
      : Error("bad_request", message) {}
};

class NotFound : public Error {
 public:
  explicit NotFound(const std::string& message) : Error("not_found", message) {}
};

class Timeout : public Error {
 public:
  explicit Timeout(const std::string& message) : Error("timeout", message) {}
};

// A file or system call that failed (open, write, fsync, rename, mmap...).
class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error("internal", message) {}
};

// A broken invariant inside clinrl or a failed third-party call.
class InternalError : public Error {
 public:
  explicit InternalError(const std::string& message)
      : Error("internal", message) {}
};

namespace detail {
[[noreturn]] void ThrowCheckFailure(const char* file, int line,
                                    const char* expr,
                                    const std::string& message);
// errno-based failure: appends strerror(errno) to the message.
[[noreturn]] void ThrowErrno(const char* file, int line, const char* call,
                             const std::string& what);
}  // namespace detail

}  // namespace clinrl

// CLINRL_CHECK(cond, "fmt {}", args...): throws InternalError naming the
// condition, the source location and the formatted message.
#define CLINRL_CHECK(cond, ...)                                        \
  do {                                                                 \
    if (!(cond)) {                                                     \
      ::clinrl::detail::ThrowCheckFailure(__FILE__, __LINE__, #cond,   \
                                          ::fmt::format(__VA_ARGS__)); \
    }                                                                  \
  } while (0)

// CLINRL_CHECK_ERRNO(call, "what it was doing {}", ...): for POSIX calls that
// return -1 (or a null pointer) and set errno.
#define CLINRL_CHECK_ERRNO(ok, call, ...)                       \
  do {                                                          \
    if (!(ok)) {                                                \
      ::clinrl::detail::ThrowErrno(__FILE__, __LINE__, call,    \
                                   ::fmt::format(__VA_ARGS__)); \
    }                                                           \
  } while (0)
