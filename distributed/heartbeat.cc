#include "distributed/heartbeat.h"

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"

namespace clinrl::distributed {

namespace {

int64_t MillisSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now() - t)
      .count();
}

void CheckOp(const wire::Fields& f, const char* expected) {
  const std::string op = f.String("op");
  if (op != expected) {
    throw BadRequest(
        fmt::format("{}.op: got '{}', expected '{}'", f.path(), op, expected));
  }
}

}  // namespace

nlohmann::json HeartbeatToJson(const HeartbeatMessage& message) {
  return {
      {"op", "heartbeat"}, {"worker", message.worker}, {"role", message.role}};
}

HeartbeatMessage HeartbeatFromJson(const nlohmann::json& j,
                                   const std::string& path) {
  const wire::Fields f(j, path);
  CheckOp(f, "heartbeat");
  HeartbeatMessage m;
  m.worker = f.String("worker");
  m.role = f.String("role", "rollout");
  if (m.role != "rollout" && m.role != "env_server" &&
      m.role != "reward_server") {
    throw BadRequest(
        fmt::format("{}.role: got '{}', expected one of: rollout, env_server, "
                    "reward_server",
                    path, m.role));
  }
  return m;
}

nlohmann::json HeartbeatReplyToJson(const HeartbeatReply& reply) {
  nlohmann::json j = {{"op", "heartbeat"}, {"stop", reply.stop}};
  if (!reply.failure.empty()) j["failure"] = reply.failure;
  return wire::OkReply(std::move(j));
}

HeartbeatReply HeartbeatReplyFromJson(const nlohmann::json& j,
                                      const std::string& path) {
  wire::CheckReply(j, path);
  const wire::Fields f(j, path);
  CheckOp(f, "heartbeat");
  HeartbeatReply r;
  r.stop = f.Bool("stop");
  r.failure = f.String("failure", "");
  return r;
}

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

std::string HeartbeatSender::failure() const {
  std::lock_guard<std::mutex> lock(error_mutex_);
  return failure_;
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
        "(is learner rank 0 running?{})",
        options_.endpoint, options_.startup_grace_ms,
        CurveHint(options_.endpoint));
  }
  return fmt::format(
      "the learner at {} has not answered {} heartbeats ({} ms); it ended or "
      "died, so this {} stops",
      options_.endpoint, options_.misses, MillisSince(started_) - last,
      options_.role);
}

void HeartbeatSender::Loop() {
  try {
    const std::unique_ptr<zmq::socket_t> socket = ConnectDealer(
        options_.endpoint, "connecting the heartbeat to " + options_.endpoint);
    const std::string body =
        HeartbeatToJson({options_.worker, options_.role}).dump();
    auto next_send = std::chrono::steady_clock::now();
    while (!quit_) {
      if (std::chrono::steady_clock::now() >= next_send) {
        // dontwait: a learner that is gone must not block this thread. The
        // unsent heartbeats queue up only until the learner counts as lost
        // (misses intervals, or the startup grace) and the owner stops.
        (void)socket->send(zmq::buffer(body), zmq::send_flags::dontwait);
        next_send += std::chrono::milliseconds(options_.interval_ms);
      }
      zmq::pollitem_t item{socket->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      zmq::message_t reply;
      while (socket->recv(reply, zmq::recv_flags::dontwait)) {
        // Any reply, even an error, shows the learner is alive.
        last_reply_ms_ = MillisSince(started_);
        ++replies_;
        try {
          const auto j = nlohmann::json::parse(reply.to_string());
          const HeartbeatReply r = HeartbeatReplyFromJson(j, "heartbeat reply");
          if (r.stop) {
            {
              std::lock_guard<std::mutex> lock(error_mutex_);
              failure_ = r.failure;
            }
            stop_ = true;
          }
        } catch (const nlohmann::json::exception& e) {
          CLINRL_LOG_WARN("heartbeat reply from {} is not JSON: {}",
                          options_.endpoint, e.what());
        } catch (const Error& e) {
          CLINRL_LOG_WARN("heartbeat reply from {}: {}", options_.endpoint,
                          e.what());
        }
      }
    }
  } catch (const zmq::error_t& e) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ = fmt::format("heartbeat to {} failed: ZeroMQ {} (errno {})",
                         options_.endpoint, e.what(), e.num());
  } catch (const Error& e) {
    // ConnectDealer's IoError: the endpoint was refused.
    std::lock_guard<std::mutex> lock(error_mutex_);
    error_ =
        fmt::format("heartbeat to {} failed: {}", options_.endpoint, e.what());
  }
}

}  // namespace clinrl::distributed
