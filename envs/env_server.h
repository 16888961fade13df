// The env server (docs/design.md env protocol): one ZeroMQ ROUTER socket and a
// pool of worker threads in a leader/follower arrangement. One worker at a
// time (the leader) owns the socket: it sends the replies that others have
// queued and receives the next request, then hands the socket to the next
// idle worker and runs the request itself. So a request is parsed, run and
// answered on one thread with no hand-off when the server is not saturated,
// any idle worker takes the next request, and a slow episode holds up only
// the worker running it. A worker that finishes while another leads queues
// its reply and rings an inproc doorbell that the leader polls.
//
// Framing: everything up to the first empty frame is the routing envelope and
// is echoed back unchanged, so REQ clients ([""][body]) and pipelining DEALER
// clients ([request id][""][body]) both work. A message with no empty frame is
// answered as [identity][reply].
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "envs/env_request_handler.h"

namespace clinrl::envs {

struct EnvServerOptions {
  EnvServiceOptions service;
  // tcp://127.0.0.1:5555, ipc:///path, inproc://name (inproc needs
  // SharedZmqContext). Loopback by default: closed to the network.
  std::string endpoint = "tcp://127.0.0.1:5555";
  // Requests run at the same time; when all are busy, requests wait in
  // ZeroMQ's queues.
  int64_t workers = 2;
  // Requests of one client connection running at once; one over it is
  // answered at once with a bad_request naming the limit, so a client
  // flooding the server cannot hold every worker. 0 = no limit.
  int64_t max_in_flight_per_client = 0;
};

class EnvServer {
 public:
  explicit EnvServer(EnvServerOptions options);
  ~EnvServer();
  EnvServer(const EnvServer&) = delete;
  EnvServer& operator=(const EnvServer&) = delete;

  // Binds (throws IoError naming the endpoint) and starts the threads.
  void Start();
  // Stops the threads and closes the socket; open sessions are dropped.
  void Stop();
  bool running() const { return running_.load(); }

  // The endpoint actually bound (tcp://...:* resolves to the chosen port).
  const std::string& bound_endpoint() const { return bound_endpoint_; }
  EnvRequestHandler& handler() { return *handler_; }

 private:
  using Frames = std::vector<zmq::message_t>;

  void WorkerLoop(int index);
  // Leads until a request arrives (true, in `request`) or the server stops.
  // Called with io_mutex_ held.
  bool LeadUntilRequest(Frames* request);
  void SendQueuedReplies();
  void SendFrames(Frames& frames);
  void SweepIdleSessions();
  // Replaces the body frame of `request` with the reply.
  void Answer(Frames& request);
  // Counts a request of `client` as running unless it is at its limit
  // (false); Done uncounts it. "" (in-process) is never limited.
  bool Admit(const std::string& client);
  void Done(const std::string& client);

  EnvServerOptions options_;
  std::unique_ptr<EnvRequestHandler> handler_;
  std::string bound_endpoint_;
  std::string doorbell_endpoint_;
  std::vector<std::thread> workers_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};

  // Held by the leader; guards the two sockets and the sweep clock.
  std::mutex io_mutex_;
  // Requests running per client connection (max_in_flight_per_client).
  std::mutex clients_mutex_;
  std::unordered_map<std::string, int64_t> in_flight_;
  std::unique_ptr<zmq::socket_t> front_;
  std::unique_ptr<zmq::socket_t> doorbell_;
  std::chrono::steady_clock::time_point next_sweep_;
  int64_t sweep_ms_ = 1000;

  std::mutex replies_mutex_;
  std::vector<Frames> replies_;
  std::atomic<bool> doorbell_rung_{false};
};

}  // namespace clinrl::envs
