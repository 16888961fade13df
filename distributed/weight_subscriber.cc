#include "distributed/weight_subscriber.h"

#include <chrono>
#include <vector>

#include "core/error.h"
#include "core/zmq_util.h"

namespace clinrl::distributed {

WeightSubscriber::WeightSubscriber(const std::string& endpoint)
    : endpoint_(endpoint) {
  CheckEndpoint(endpoint, "weights endpoint");
  socket_ = ConnectDealer(endpoint,
                          "connecting the weight subscriber to " + endpoint);
  Request();
}

WeightSubscriber::~WeightSubscriber() = default;

void WeightSubscriber::Request() {
  const std::string body =
      nlohmann::json{{"op", "get"}, {"have", version_}}.dump();
  try {
    // Before the connection exists ZeroMQ queues the request; with one
    // request outstanding it never meets a high-water mark.
    if (!socket_->send(zmq::buffer(body), zmq::send_flags::dontwait)) {
      throw IoError(
          fmt::format("weights: request to {} could not be queued", endpoint_));
    }
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, "sending a weights request to " + endpoint_);
  }
}

std::optional<WeightUpdate> WeightSubscriber::Poll(int64_t timeout_ms) {
  std::optional<WeightUpdate> newest;
  int64_t wait = timeout_ms;
  while (true) {
    std::vector<zmq::message_t> frames;
    try {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(wait));
      if (!(item.revents & ZMQ_POLLIN)) return newest;
      frames = ReceiveMultipart(*socket_);
    } catch (const zmq::error_t& e) {
      ThrowZmqError(e, "receiving weights from " + endpoint_);
    }
    if (frames.empty()) return newest;
    std::vector<std::string_view> raw;
    for (size_t i = 1; i < frames.size(); ++i) {
      raw.emplace_back(static_cast<const char*>(frames[i].data()),
                       frames[i].size());
    }
    WeightUpdate update = DecodeWeights(frames[0].to_string(), raw);
    if (update.version > version_) {
      version_ = update.version;
      newest = std::move(update);
    }
    Request();
    wait = 0;  // drain whatever else is already here, then return
  }
}

}  // namespace clinrl::distributed
