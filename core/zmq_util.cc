#include "core/zmq_util.h"

#include <atomic>
#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"

namespace clinrl {

zmq::context_t& SharedZmqContext() {
  // Leaked on purpose: see the header.
  static zmq::context_t* context = new zmq::context_t(1);
  return *context;
}

void ThrowZmqError(const zmq::error_t& e, const std::string& what) {
  throw IoError(
      fmt::format("ZeroMQ: {} failed: {} (errno {})", what, e.what(), e.num()));
}

void CheckEndpoint(const std::string& endpoint, const std::string& field) {
  for (const char* scheme : {"tcp://", "ipc://", "inproc://"}) {
    const size_t n = std::char_traits<char>::length(scheme);
    if (endpoint.size() > n && endpoint.compare(0, n, scheme) == 0) return;
  }
  throw BadRequest(fmt::format(
      "{}: got '{}', expected tcp://HOST:PORT, ipc://PATH or inproc://NAME",
      field, endpoint));
}

std::string UniqueInprocEndpoint(const std::string& stem) {
  static std::atomic<uint64_t> counter{0};
  return fmt::format("inproc://{}-{}", stem, counter.fetch_add(1));
}

void PrepareBind(const std::string& endpoint) {
  const std::string scheme = "ipc://";
  if (endpoint.compare(0, scheme.size(), scheme) != 0) return;
  const std::filesystem::path path(endpoint.substr(scheme.size()));
  if (path.has_parent_path()) MakeDirectories(path.parent_path().string());
}

}  // namespace clinrl
