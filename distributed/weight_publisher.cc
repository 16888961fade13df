#include "distributed/weight_publisher.h"

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"

namespace clinrl::distributed {

struct WeightPublisher::Snapshot {
  int64_t version = -1;
  std::string header;  // lists frozen (if any), then tensors
  NamedTensors tensors;
  // Set for a module with frozen parameters: sent with `header` to a
  // subscriber without a version, left out (partial_header) otherwise.
  std::shared_ptr<const NamedTensors> frozen;
  std::string partial_header;
};

namespace {

// ZeroMQ calls this when it is done with a frame: drops that frame's
// reference to the snapshot.
void ReleaseSnapshot(void*, void* hint) {
  delete static_cast<std::shared_ptr<const void>*>(hint);
}

}  // namespace

WeightPublisher::WeightPublisher(const std::string& endpoint) {
  CheckEndpoint(endpoint, "weights endpoint");
  try {
    PrepareBind(endpoint);
    socket_ = std::make_unique<zmq::socket_t>(SharedZmqContext(),
                                              zmq::socket_type::router);
    socket_->set(zmq::sockopt::linger, 0);
    // A full queue would make ROUTER drop a version silently.
    socket_->set(zmq::sockopt::sndhwm, 0);
    SecureServerSocket(*socket_, endpoint,
                       fmt::format("weight publisher on '{}'", endpoint));
    socket_->bind(endpoint);
    endpoint_ = socket_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    ThrowZmqError(e, "binding the weight publisher to " + endpoint);
  }
  thread_ = std::thread([this] { Loop(); });
}

WeightPublisher::~WeightPublisher() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void WeightPublisher::Publish(int64_t version, NamedTensors tensors) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->version = version;
  for (auto& [name, t] : tensors) {
    if (!t.device().is_cpu() || !t.is_contiguous()) {
      t = t.to(torch::kCPU).contiguous();
    }
  }
  snapshot->header = WeightHeader(version, tensors).dump();
  snapshot->tensors = std::move(tensors);
  Install(std::move(snapshot));
}

void WeightPublisher::Publish(const torch::nn::Module& module,
                              int64_t version) {
  bool has_frozen = false;
  for (const auto& p : module.parameters()) has_frozen |= !p.requires_grad();
  if (!has_frozen) {
    Publish(version, SnapshotParameters(module));
    return;
  }
  if (!frozen_) {
    frozen_ = std::make_shared<const NamedTensors>(
        SnapshotParameters(module, ParameterSet::kFrozen));
  }
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->version = version;
  snapshot->tensors = SnapshotParameters(module, ParameterSet::kTrainable);
  snapshot->frozen = frozen_;
  NamedTensors all = *frozen_;
  all.insert(all.end(), snapshot->tensors.begin(), snapshot->tensors.end());
  snapshot->header = WeightHeader(version, all).dump();
  snapshot->partial_header =
      WeightHeader(version, snapshot->tensors, /*partial=*/true).dump();
  Install(std::move(snapshot));
}

void WeightPublisher::Install(std::shared_ptr<Snapshot> snapshot) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (current_ && snapshot->version <= current_->version) {
    throw BadRequest(fmt::format(
        "weights: published version {}, expected more than the current {}",
        snapshot->version, current_->version));
  }
  current_ = std::move(snapshot);
}

int64_t WeightPublisher::version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_ ? current_->version : -1;
}

void WeightPublisher::Loop() {
  // Polls with a short timeout so that a new version and shutdown are seen
  // within 20 ms without a second socket to wake this thread.
  while (!stopping_) {
    try {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      if (item.revents & ZMQ_POLLIN) HandleRequest();
      AnswerWaiting();
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      CLINRL_LOG_ERROR("weight publisher {}: ZeroMQ error {} (errno {})",
                       endpoint_, e.what(), e.num());
    } catch (const std::exception& e) {
      CLINRL_LOG_ERROR("weight publisher {}: {}", endpoint_, e.what());
    }
  }
}

void WeightPublisher::HandleRequest() {
  const std::vector<zmq::message_t> frames = ReceiveMultipart(*socket_);
  if (frames.size() < 2) return;  // no identity: nothing to answer
  const std::string identity = frames.front().to_string();
  int64_t have = -1;
  try {
    const nlohmann::json request =
        nlohmann::json::parse(frames.back().to_string());
    const wire::Fields f(request, "request");
    const std::string op = f.String("op");
    if (op != "get") {
      throw BadRequest(fmt::format("request.op: got '{}', expected 'get'", op));
    }
    have = f.Int("have", -1);
  } catch (const std::exception& e) {
    // A bad request gets an error reply; the publisher carries on.
    const std::string reply = wire::ErrorReply("bad_request", e.what()).dump();
    socket_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(reply), zmq::send_flags::none);
    return;
  }
  waiting_[identity] = have;
}

void WeightPublisher::AnswerWaiting() {
  std::shared_ptr<const Snapshot> snapshot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    snapshot = current_;
  }
  if (!snapshot) return;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second < snapshot->version) {
      Send(it->first, it->second, snapshot);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
}

void WeightPublisher::Send(const std::string& identity, int64_t have,
                           const std::shared_ptr<const Snapshot>& snapshot) {
  // A subscriber that holds some version has the frozen parameters already.
  const bool with_frozen = snapshot->frozen && have < 0;
  std::vector<const torch::Tensor*> tensors;
  if (with_frozen) {
    for (const auto& [name, t] : *snapshot->frozen) tensors.push_back(&t);
  }
  for (const auto& [name, t] : snapshot->tensors) tensors.push_back(&t);
  const std::string& header = snapshot->frozen && !with_frozen
                                  ? snapshot->partial_header
                                  : snapshot->header;
  socket_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
  socket_->send(zmq::buffer(header), tensors.empty()
                                         ? zmq::send_flags::none
                                         : zmq::send_flags::sndmore);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const torch::Tensor& t = *tensors[i];
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    zmq::message_t frame;
    if (bytes > 0) {
      frame = zmq::message_t(t.data_ptr(), bytes, &ReleaseSnapshot,
                             new std::shared_ptr<const void>(snapshot));
    }
    socket_->send(frame, i + 1 < tensors.size() ? zmq::send_flags::sndmore
                                                : zmq::send_flags::none);
    bytes_sent_ += static_cast<int64_t>(bytes);
  }
  ++sends_;
}

}  // namespace clinrl::distributed
