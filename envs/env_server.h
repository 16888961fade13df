// The env server (DESIGN.md env protocol): a ZeroMQ ROUTER front that one I/O
// thread owns, and worker threads that run the requests. Requests go to the
// workers through one shared queue, so any idle worker takes the next request
// and a slow episode holds up only the worker running it; replies come back
// through a second queue and a doorbell socket that the I/O thread polls.
//
// Framing: everything up to the first empty frame is the routing envelope and
// is echoed back unchanged, so REQ clients ([""][body]) and pipelining DEALER
// clients ([request id][""][body]) both work. A message with no empty frame is
// answered as [identity][reply].
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "envs/env_request_handler.h"

namespace clinrl::envs {

struct EnvServerOptions {
  EnvServiceOptions service;
  // tcp://*:5555, ipc:///path, inproc://name (inproc needs SharedZmqContext).
  std::string endpoint = "tcp://*:5555";
  int64_t workers = 2;
  // Requests held while every worker is busy; beyond it the front stops
  // reading and ZeroMQ's own queues push back on the clients.
  int64_t max_queued = 65536;
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
  struct Job {
    std::vector<zmq::message_t> frames;  // envelope..., "", body
    size_t body_index = 0;               // frames[body_index] is the body
  };

  void FrontLoop();
  void WorkerLoop(int index);
  void DispatchFromFront();
  void SendReplies();
  void SendJob(Job& job);

  EnvServerOptions options_;
  std::unique_ptr<EnvRequestHandler> handler_;
  std::string bound_endpoint_;
  std::string doorbell_endpoint_;
  std::unique_ptr<zmq::socket_t> front_;
  std::unique_ptr<zmq::socket_t> doorbell_;
  std::thread front_thread_;
  std::vector<std::thread> workers_;
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};

  std::mutex jobs_mutex_;
  std::condition_variable jobs_ready_;
  std::deque<Job> jobs_;
  size_t queued_ = 0;  // front thread's view of jobs not yet replied

  std::mutex replies_mutex_;
  std::vector<Job> replies_;
  std::atomic<bool> doorbell_rung_{false};
};

}  // namespace clinrl::envs
