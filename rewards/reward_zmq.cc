#include "rewards/reward_zmq.h"

#include <atomic>
#include <cstring>

#include "core/error.h"

namespace clinrl::rewards {

zmq::context_t& RewardZmqContext() {
  static auto* context = new zmq::context_t(1);
  return *context;
}

void ThrowZmqError(const zmq::error_t& e, const std::string& what) {
  throw IoError(fmt::format("ZeroMQ error while {}: {} (errno {})", what,
                            e.what(), e.num()));
}

void CheckRewardEndpoint(const std::string& endpoint,
                         const std::string& field) {
  for (const char* scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (endpoint.rfind(scheme, 0) == 0 &&
        endpoint.size() > std::strlen(scheme)) {
      return;
    }
  }
  throw BadRequest(fmt::format(
      "{}: expected an endpoint starting with tcp://, ipc:// or inproc://, "
      "got \"{}\"",
      field, endpoint));
}

std::string UniqueInproc(const std::string& stem) {
  static std::atomic<int64_t> counter{0};
  return fmt::format("inproc://{}-{}", stem, counter++);
}

}  // namespace clinrl::rewards
