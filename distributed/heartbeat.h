// A process's heartbeat to learner rank 0 (docs/distributed.md, "Faults").
// Rollout workers, env servers and reward servers each run one: a thread
// with its own DEALER on the learner's work endpoint sends
// {"op": "heartbeat", "worker": ID, "role": ROLE} every interval. The replies
// tell the sender two things: the learner is alive (no reply for `misses`
// intervals: it died or hung) and whether the run is over ("stop": true).
// The learner uses the same messages to notice a rollout worker that died.
//
// The heartbeat is a message of the rollout work protocol, whose other
// messages are in rollout/rollout_wire.h; it is written and read here
// because the sender is here and distributed/ sits below rollout/ (the
// layering rule of docs/design.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace clinrl::distributed {

// {"op": "heartbeat", "worker": W, "role": R}
struct HeartbeatMessage {
  std::string worker;
  std::string role;  // rollout | env_server | reward_server

  bool operator==(const HeartbeatMessage& o) const {
    return worker == o.worker && role == o.role;
  }
};
nlohmann::json HeartbeatToJson(const HeartbeatMessage& message);
// Errors name the field under `path` ("request.role: got 'x', expected one
// of: ..."); a missing role reads as "rollout", the first sender's.
HeartbeatMessage HeartbeatFromJson(const nlohmann::json& j,
                                   const std::string& path);

// {"ok": true, "op": "heartbeat", "stop": S[, "failure": F]}: S once the
// run is over; F, when the learner's run failed, says why.
struct HeartbeatReply {
  bool stop = false;
  std::string failure;
};
nlohmann::json HeartbeatReplyToJson(const HeartbeatReply& reply);
// An error reply throws its typed error (wire::CheckReply).
HeartbeatReply HeartbeatReplyFromJson(const nlohmann::json& j,
                                      const std::string& path);

struct HeartbeatOptions {
  std::string endpoint;  // the learner's work endpoint
  std::string worker;    // this process's name, e.g. "rollout-1"
  std::string role;      // rollout | env_server | reward_server
  int64_t interval_ms = 1000;
  int64_t misses = 3;
  // Before the first reply the learner may still be starting (loading the
  // model, running SFT before GRPO); it counts as lost only after this.
  int64_t startup_grace_ms = 120000;
};

class HeartbeatSender {
 public:
  explicit HeartbeatSender(HeartbeatOptions options);
  ~HeartbeatSender();
  HeartbeatSender(const HeartbeatSender&) = delete;
  HeartbeatSender& operator=(const HeartbeatSender&) = delete;

  // The learner answered "stop": the run is over.
  bool stop_requested() const { return stop_.load(); }
  // With the stop: why the learner's run failed ("" = it ended normally).
  std::string failure() const;
  // The learner has not answered for misses x interval (or, before its
  // first answer, for the startup grace).
  bool learner_lost() const;
  // Why the learner counts as lost, for the error message.
  std::string LostMessage() const;
  int64_t replies() const { return replies_.load(); }

 private:
  void Loop();

  HeartbeatOptions options_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<int64_t> last_reply_ms_{-1};  // since started_
  std::atomic<int64_t> replies_{0};
  std::atomic<bool> stop_{false};
  std::atomic<bool> quit_{false};
  mutable std::mutex error_mutex_;
  std::string error_;    // a failure of the heartbeat thread itself
  std::string failure_;  // guarded by error_mutex_
  std::thread thread_;
};

}  // namespace clinrl::distributed
