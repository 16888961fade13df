// Client of the reward service, with the env client's shape: Submit* queues
// a request on one DEALER socket and returns its id at once; Collect returns
// replies as they complete, so a rollout worker keeps many trajectories in
// flight; blocking Score/ScoreGroup/Health sit on top. A request unanswered
// within request_timeout_ms completes with error "timeout"; as in the env
// client, requests in flight when the server's connection drops, and those
// submitted while a server once connected is gone, complete at once with
// error "disconnected" (a blocking call throws IoError naming the server).
//
// One client belongs to one thread (ZeroMQ sockets are not thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/trajectory.h"
#include "core/zmq_util.h"

namespace clinrl::rewards {

struct RewardClientOptions {
  std::string endpoint;
  int64_t request_timeout_ms = 30000;
};

struct RewardReply {
  uint64_t request_id = 0;
  bool ok = false;
  std::string error_code;  // bad_request | not_found | timeout | internal
  std::string error_message;
  // score: one result; score_group: one per trajectory, in order.
  std::vector<RewardResult> results;
  std::vector<bool> flagged;  // a component failed (see details.error)
  nlohmann::json body;        // the whole reply
  int64_t latency_us = 0;
};

class RewardClient {
 public:
  explicit RewardClient(RewardClientOptions options);
  ~RewardClient();
  RewardClient(const RewardClient&) = delete;
  RewardClient& operator=(const RewardClient&) = delete;

  uint64_t SubmitScore(const Trajectory& trajectory);
  uint64_t SubmitScoreGroup(const std::vector<Trajectory>& group);
  uint64_t SubmitHealth();
  // Any request body (for tools and tests of the protocol itself).
  uint64_t SubmitRaw(const std::string& body);

  // Waits until `min_replies` are ready (or nothing is in flight) or
  // `wait_ms` passes, then returns everything that is ready.
  std::vector<RewardReply> Collect(size_t min_replies, int64_t wait_ms);
  // Submitted and not yet collected.
  size_t in_flight() const { return pending_.size() + ready_.size(); }

  // Blocking calls; throw the typed error of an error reply (Timeout when
  // no reply came in time).
  RewardResult Score(const Trajectory& trajectory);
  std::vector<RewardResult> ScoreGroup(const std::vector<Trajectory>& group);
  nlohmann::json Health();
  RewardReply Wait(uint64_t request_id);

  const std::string& endpoint() const { return options_.endpoint; }

 private:
  uint64_t Send(const std::string& body);
  void Drain(int64_t wait_ms);
  void ExpireTimedOut();
  // Fails what a dropped connection left unanswered.
  void FailIfDisconnected();
  RewardReply Disconnected(uint64_t id, const std::string& why) const;

  RewardClientOptions options_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<ConnectionMonitor> monitor_;  // destroyed before socket_
  uint64_t next_id_ = 1;
  // Ids grow with send time and the timeout is one value: the first entry
  // is always the next to expire.
  std::map<uint64_t, std::chrono::steady_clock::time_point> pending_;
  std::deque<RewardReply> ready_;
};

}  // namespace clinrl::rewards
