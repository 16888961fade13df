// The reward service (`clinrl reward serve`): a ZeroMQ ROUTER at the
// configured endpoint, a proxy to `workers` threads, each scoring one
// request at a time with the composite scorer (per-component deadlines, so a
// hung plug-in holds a worker for at most its timeout). Every request gets a
// reply: malformed JSON, unknown ops and bad specs get error replies, a
// plug-in failure gets a flagged result; nothing a client sends stops it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "rewards/composite_reward.h"

namespace clinrl::rewards {

struct RewardServerOptions {
  std::string
      endpoint;  // tcp://*:5556, tcp://127.0.0.1:0, ipc://..., inproc://...
  int64_t workers = 2;
  int64_t timeout_ms = 5000;  // per component, unless the spec says otherwise
};

struct RewardServerStats {
  std::atomic<int64_t> requests{0};
  std::atomic<int64_t> scored{0};  // trajectories
  std::atomic<int64_t> flagged{0};
  std::atomic<int64_t> errors{0};  // error replies
  std::chrono::steady_clock::time_point started =
      std::chrono::steady_clock::now();
};

// One request in, one reply out, no transport: what each worker runs.
nlohmann::json HandleRewardRequest(nlohmann::json request,
                                   const ScoreOptions& options,
                                   RewardServerStats* stats);
// Same for raw bytes: unparseable text gets a bad_request reply.
std::string HandleRewardMessage(const std::string& bytes,
                                const ScoreOptions& options,
                                RewardServerStats* stats);

class RewardServer {
 public:
  // Binds at once; throws IoError naming the endpoint when it cannot.
  explicit RewardServer(RewardServerOptions options);
  ~RewardServer();  // Stop()
  RewardServer(const RewardServer&) = delete;
  RewardServer& operator=(const RewardServer&) = delete;

  // The bound endpoint, with the port filled in for tcp://...:0.
  const std::string& endpoint() const { return endpoint_; }
  const RewardServerStats& stats() const { return *stats_; }
  void Stop();

 private:
  void WorkerLoop();

  RewardServerOptions options_;
  std::string endpoint_;
  std::string backend_endpoint_;
  std::string control_endpoint_;
  std::unique_ptr<zmq::socket_t> front_;
  std::unique_ptr<zmq::socket_t> back_;
  std::unique_ptr<zmq::socket_t> control_;
  std::unique_ptr<RewardServerStats> stats_;
  std::atomic<bool> stopping_{false};
  std::thread proxy_;
  std::vector<std::thread> workers_;
};

}  // namespace clinrl::rewards
