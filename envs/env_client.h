// Client of the env protocol. Requests are pipelined on one DEALER socket:
// Submit* queues a request and returns its id at once, Collect returns replies
// in the order they complete, so a rollout worker drives thousands of
// sessions and the slowest episode does not stall the others. Blocking
// wrappers (Spec, Reset, Step, Truncate, Close, Health) sit on top.
//
// A request unanswered within the timeout completes with error "timeout" and
// its session is reported lost. When the connection drops (the server exited
// or restarted), every request in flight completes at once with error
// "disconnected", its session lost: none of them will be answered; so does a
// request submitted while a server once connected is gone (it is not sent).
// ZeroMQ reconnects to a restarted server on its own, and that server answers
// not_found (also "lost") for sessions of the dead one, so the caller drops
// them and starts new episodes.
//
// One client belongs to one thread (ZeroMQ sockets are not thread-safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "core/zmq_util.h"
#include "envs/env.h"

namespace clinrl::envs {

struct EnvClientOptions {
  std::string endpoint;
  int64_t request_timeout_ms = 30000;
};

enum class EnvOp { kSpec, kReset, kStep, kTruncate, kClose, kHealth, kAct };
const char* EnvOpName(EnvOp op);

struct EnvReply {
  uint64_t request_id = 0;
  EnvOp op = EnvOp::kStep;
  // step/truncate/close: the session asked about; reset: the new session
  // (when ok).
  std::string session;
  std::string env;  // spec/reset: the env asked for
  bool ok = false;
  // The session is gone (server restarted, session reclaimed, or no answer
  // within the timeout): do not send it more steps.
  bool session_lost = false;
  std::string error_code;  // bad_request | not_found | timeout | internal
  std::string error_message;
  // Filled for ok reset (observation, info), ok step and ok truncate
  // replies.
  Observation observation;
  double reward = 0.0;
  bool terminated = false;
  bool truncated = false;
  json info = json::object();
  // The whole reply (spec and health fields); for reset and step, `info` has
  // been moved out of it into `info` above.
  json body;
  int64_t latency_us = 0;
};

class EnvClient {
 public:
  explicit EnvClient(EnvClientOptions options);
  ~EnvClient();
  EnvClient(const EnvClient&) = delete;
  EnvClient& operator=(const EnvClient&) = delete;

  uint64_t SubmitSpec(const std::string& env);
  // `session` given: resets that session in place instead of opening one.
  uint64_t SubmitReset(const std::string& env, const ResetRequest& request,
                       const std::string& session = "");
  uint64_t SubmitStep(const std::string& session, const std::string& action);
  // Ends the session's episode as truncated (the caller cut it); the reply
  // is shaped like a step's, with the env's final info. The session stays
  // open, as after a final step: reset or close it.
  uint64_t SubmitTruncate(const std::string& session);
  uint64_t SubmitClose(const std::string& session);
  uint64_t SubmitHealth();
  // The server's scripted policy `policy` picks the session's next action
  // from the transcript so far and the last info; `seed` seeds the policy
  // at its first act of an episode.
  uint64_t SubmitAct(const std::string& session, const std::string& policy,
                     uint64_t seed, const json& options,
                     const Observation& transcript, const json& info);

  // Returns replies as they complete: waits until `min_replies` are ready
  // (or nothing is in flight any more) or `wait_ms` passes, whichever is
  // first, then returns everything that is ready (maybe more than asked).
  std::vector<EnvReply> Collect(size_t min_replies, int64_t wait_ms);
  // Requests submitted and not yet collected: in flight, or completed (a
  // request refused at once while the server is gone completes at submit).
  size_t in_flight() const { return pending_.size() + ready_.size(); }

  // Blocking calls: throw the typed error of an error reply (Timeout when no
  // reply came in time). Replies to other requests that arrive meanwhile are
  // kept for Collect.
  EnvSpec Spec(const std::string& env);
  // Returns the new session id and the first observation.
  std::string Reset(const std::string& env, const ResetRequest& request,
                    ResetResult* result);
  StepResult Step(const std::string& session, const std::string& action);
  StepResult Truncate(const std::string& session);
  void Close(const std::string& session);
  json Health();
  std::string Act(const std::string& session, const std::string& policy,
                  uint64_t seed, const json& options,
                  const Observation& transcript, const json& info);
  // Waits for one submitted request; throws on an error reply.
  EnvReply Wait(uint64_t request_id);

  // Drops the socket and every request in flight (each completes as lost)
  // and connects afresh.
  void Reconnect();
  const std::string& endpoint() const { return options_.endpoint; }

 private:
  struct Pending {
    EnvOp op;
    std::string session;
    std::string env;
    std::chrono::steady_clock::time_point sent;
  };

  void Connect();
  uint64_t Send(EnvOp op, const json& request, std::string session,
                std::string env);
  // Reads every reply waiting on the socket into ready_ (no blocking).
  void Drain();
  void ExpireTimedOut();
  static StepResult TakeStepResult(EnvReply reply);
  EnvReply Complete(uint64_t id, Pending pending, const char* data,
                    size_t size);

  EnvClientOptions options_;
  // Fails every request in flight as lost, with error code `code`.
  void FailInFlight(const std::string& code, const std::string& message);
  // Drain, then fail what a dropped connection left unanswered.
  void Poll(int64_t wait_ms);
  // Reads the connection's events; after a disconnect, fails every request
  // in flight.
  void CheckConnection();

  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<ConnectionMonitor> monitor_;  // destroyed before socket_
  uint64_t next_id_ = 1;
  // Request ids grow with send time and the timeout is one value, so the
  // first entry is always the next to expire.
  std::map<uint64_t, Pending> pending_;
  std::deque<EnvReply> ready_;
};

}  // namespace clinrl::envs
