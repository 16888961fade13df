// A rollout worker's side of weight publishing: a DEALER connected to the
// learner's WeightPublisher with one "get" always outstanding, carrying the
// version it has. The publisher answers as soon as a newer version exists,
// so Poll() returns new weights without asking again and a worker that
// starts late receives the current version first thing.
//
// One subscriber belongs to one thread (ZeroMQ sockets are not thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "distributed/weight_message.h"

namespace clinrl::distributed {

class WeightSubscriber {
 public:
  // Connects (ZeroMQ connects lazily: the publisher may start later).
  explicit WeightSubscriber(const std::string& endpoint);
  ~WeightSubscriber();
  WeightSubscriber(const WeightSubscriber&) = delete;
  WeightSubscriber& operator=(const WeightSubscriber&) = delete;

  // The newest version that arrived, waiting up to `timeout_ms` for one (0:
  // only look). nullopt when nothing newer came. Throws BadRequest for a
  // malformed message (naming the field or frame).
  std::optional<WeightUpdate> Poll(int64_t timeout_ms);
  int64_t version() const { return version_; }  // -1 before the first
  const std::string& endpoint() const { return endpoint_; }

 private:
  void Request();

  std::string endpoint_;
  std::unique_ptr<zmq::socket_t> socket_;
  int64_t version_ = -1;
};

}  // namespace clinrl::distributed
