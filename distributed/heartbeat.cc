#include "distributed/heartbeat.h"

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "core/error.h"
#include "core/log.h"
#include "core/zmq_util.h"

namespace clinrl::distributed {

namespace {

int64_t MillisSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - t)
      .count();
}

}  // namespace

HeartbeatSender::HeartbeatSender(HeartbeatOptions options)
    : options_(std::move(options)), started_(std::chrono::steady_clock::now()) {
  CheckEndpoint(options_.endpoint, "heartbeat endpoint");
  if (options_.interval_ms < 1 || options_.misses < 1) {
    throw BadRequest(fmt::format(
        "heartbeat: got interval {} ms and {} misses, expected both >= 1",
        options_.interval_ms, options_.misses));
  }
  thread_ = std::thread([this] { Loop(); });
}

HeartbeatSender::~HeartbeatSender() {
  quit_ = true;
  if (thread_.joinable()) thread_.join();
}

bool HeartbeatSender::learner_lost() const {
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_.empty()) return true;
  }
  const int64_t now = MillisSince(started_);
  const int64_t last = last_reply_ms_.load();
  if (last < 0) return now > options_.startup_grace_ms;
  return now - last > options_.misses * options_.interval_ms;
}

std::string HeartbeatSender::LostMessage() const {
  {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (!error_.empty()) return error_;
  }
  const int64_t last = last_reply_ms_.load();
  if (last < 0) {
    return fmt::format(
        "the learner at {} never answered heartbeats within {} ms of start "
        "(is learner rank 0 running?)",
        options_.endpoint, options_.startup_grace_ms);
  }
  return fmt::format(
      "the learner at {} has not answered {} heartbeats ({} ms); it ended or "
      "died, so this {} stops",
      options_.endpoint, options_.misses, MillisSince(started_) - last,
      options_.role);
}

void HeartbeatSender::Loop() {
  try {
    zmq::socket_t socket(SharedZmqContext(), zmq::socket_type::dealer);
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(options_.endpoint);
    const std::string body = nlohmann::json{
        {"op", "heartbeat"},
        {"worker", options_.worker},
        {"role", options_.role}}.dump();
    auto next_send = std::chrono::steady_clock::now();
    while (!quit_) {
      if (std::chrono::steady_clock::now() >= next_send) {
        // dontwait: a learner that is gone must not block this thread; the
        // queue of unsent heartbeats is bounded by the high-water mark.
        (void)socket.send(zmq::buffer(body), zmq::send_flags::dontwait);
        next_send += std::chrono::milliseconds(options_.interval_ms);
      }
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t reply;
      while (socket.recv(reply, zmq::recv_flags::dontwait)) {
        last_reply_ms_ = MillisSince(started_);
        ++replies_;
        try {
          const auto j = nlohmann::json::parse(reply.to_string());
          if (j.value("stop", false)) stop_ = true;
        } catch (const nlohmann::json::exception& e) {
          CLINRL_LOG_WARN("heartbeat reply from {} is not JSON: {}",
                          options_.endpoint, e.what());
        }
      }
    }
  } catch (const zmq::error_t& e) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = fmt::format("heartbeat to {} failed: ZeroMQ {} (errno {})",
                         options_.endpoint, e.what(), e.num());
  }
}

}  // namespace clinrl::distributed
