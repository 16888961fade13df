// Learner rank 0's side of weight publishing: a ZeroMQ ROUTER that answers
// each subscriber's "get" with the current policy version (weight_message.h
// framing). A subscriber asks with the version it has; the request is held
// until a newer version is published (a long poll), so new versions reach
// every worker as soon as they exist, and a worker that joins late gets the
// current version at once, which PUB/SUB alone would lose.
//
// Publish() copies the weights once; every subscriber is then sent the same
// bytes without another copy (ZeroMQ frames point into the snapshot, which
// lives until the last send completes). A module with frozen parameters (a
// LoRA policy) has them copied at its first publish only: a subscriber with
// no version yet gets them and the trainable ones, any other subscriber the
// trainable ones alone (a partial update, weight_message.h).
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "distributed/weight_message.h"

namespace clinrl::distributed {

class WeightPublisher {
 public:
  // Binds `endpoint` (tcp://*:PORT, tcp://127.0.0.1:0, ipc://, inproc://)
  // and starts serving; throws IoError naming the endpoint when it cannot.
  explicit WeightPublisher(const std::string& endpoint);
  ~WeightPublisher();
  WeightPublisher(const WeightPublisher&) = delete;
  WeightPublisher& operator=(const WeightPublisher&) = delete;

  // Makes `version` the current one (versions must grow).
  void Publish(int64_t version, NamedTensors tensors);
  void Publish(const torch::nn::Module& module, int64_t version);

  int64_t version() const;  // -1 before the first Publish
  // The endpoint actually bound (tcp port filled in).
  const std::string& endpoint() const { return endpoint_; }
  // Versions sent to subscribers so far (one per subscriber and version).
  int64_t sends() const { return sends_.load(); }
  // Tensor bytes sent to subscribers so far.
  int64_t bytes_sent() const { return bytes_sent_.load(); }

 private:
  struct Snapshot;
  void Install(std::shared_ptr<Snapshot> snapshot);
  void Loop();
  void HandleRequest();
  void AnswerWaiting();
  // `have`: the version the subscriber holds (-1 = none).
  void Send(const std::string& identity, int64_t have,
            const std::shared_ptr<const Snapshot>& snapshot);

  std::string endpoint_;
  std::unique_ptr<zmq::socket_t> socket_;
  mutable std::mutex mutex_;  // guards current_
  std::shared_ptr<const Snapshot> current_;
  // Subscribers waiting for a version newer than the one they have
  // (identity -> version they have). Touched only by the serving thread.
  std::map<std::string, int64_t> waiting_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> sends_{0};
  std::atomic<int64_t> bytes_sent_{0};
  // The frozen parameters' copy, taken at the first publish of a module
  // that has some; shared by every later snapshot.
  std::shared_ptr<const NamedTensors> frozen_;
  std::thread thread_;
};

}  // namespace clinrl::distributed
