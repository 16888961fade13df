#include "envs/env_server.h"

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "core/zmq_util.h"

namespace clinrl::envs {

namespace {
// Reclaim sweeps run at most this often (and at least every timeout/4).
constexpr int64_t kMaxSweepIntervalMs = 1000;
// How long a leader blocks before it looks at the stop flag and the sweep
// clock again.
constexpr int64_t kPollMs = 100;
}  // namespace

EnvServer::EnvServer(EnvServerOptions options) : options_(std::move(options)) {
  CheckEndpoint(options_.endpoint, "--endpoint");
  if (options_.workers < 1) {
    throw BadRequest(fmt::format("--workers: got {}, expected at least 1",
                                 options_.workers));
  }
  handler_ = std::make_unique<EnvRequestHandler>(options_.service);
  const double idle_s = options_.service.idle_timeout_s;
  sweep_ms_ =
      idle_s > 0 ? std::max<int64_t>(
                       1, std::min<int64_t>(kMaxSweepIntervalMs,
                                            static_cast<int64_t>(idle_s * 250)))
                 : kMaxSweepIntervalMs;
}

EnvServer::~EnvServer() {
  try {
    Stop();
  } catch (const std::exception& e) {
    CLINRL_LOG_ERROR("env server: stopping failed: {}", e.what());
  }
}

void EnvServer::Start() {
  CLINRL_CHECK(!running_.load(), "env server started twice");
  zmq::context_t& context = SharedZmqContext();
  try {
    front_ = std::make_unique<zmq::socket_t>(context, zmq::socket_type::router);
    front_->set(zmq::sockopt::linger, 0);
    // Replies to a client that went away are dropped, not queued forever.
    front_->set(zmq::sockopt::router_mandatory, false);
    front_->set(zmq::sockopt::sndhwm, 0);
    front_->set(zmq::sockopt::rcvhwm, 0);
    SecureServerSocket(*front_, options_.endpoint,
                       fmt::format("env server on '{}'", options_.endpoint));
    front_->bind(options_.endpoint);
    bound_endpoint_ = front_->get(zmq::sockopt::last_endpoint);
    doorbell_endpoint_ = UniqueInprocEndpoint("clinrl-env-server-doorbell");
    doorbell_ =
        std::make_unique<zmq::socket_t>(context, zmq::socket_type::pull);
    doorbell_->set(zmq::sockopt::linger, 0);
    doorbell_->bind(doorbell_endpoint_);
  } catch (const zmq::error_t& e) {
    front_.reset();
    doorbell_.reset();
    ThrowZmqError(e,
                  fmt::format("binding env server to '{}'", options_.endpoint));
  }
  next_sweep_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(sweep_ms_);
  stopping_ = false;
  running_ = true;
  for (int i = 0; i < options_.workers; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  CLINRL_LOG_INFO("env server on {} ({} workers, envs: {}{})", bound_endpoint_,
                  options_.workers, fmt::join(handler_->env_names(), ","),
                  UsesCurve(options_.endpoint) ? "; CURVE" : "");
}

void EnvServer::Stop() {
  if (!running_.load()) return;
  stopping_ = true;
  for (auto& w : workers_) w.join();
  workers_.clear();
  front_.reset();
  doorbell_.reset();
  replies_.clear();
  running_ = false;
}

void EnvServer::WorkerLoop(int index) {
  zmq::socket_t bell(SharedZmqContext(), zmq::socket_type::push);
  try {
    bell.set(zmq::sockopt::linger, 0);
    bell.connect(doorbell_endpoint_);
  } catch (const zmq::error_t& e) {
    CLINRL_LOG_ERROR("env server worker {}: doorbell connect failed: {}", index,
                     e.what());
    return;
  }
  Frames request;
  while (true) {
    {
      std::unique_lock<std::mutex> io(io_mutex_);
      if (!LeadUntilRequest(&request)) return;
    }
    Answer(request);
    std::unique_lock<std::mutex> io(io_mutex_, std::try_to_lock);
    if (io.owns_lock()) {
      // Nobody leads (every other worker is busy): answer directly.
      SendFrames(request);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(replies_mutex_);
      replies_.push_back(std::move(request));
    }
    if (!doorbell_rung_.exchange(true)) {
      try {
        bell.send(zmq::message_t(), zmq::send_flags::dontwait);
      } catch (const zmq::error_t& e) {
        CLINRL_LOG_ERROR("env server worker {}: doorbell: {}", index, e.what());
      }
    }
  }
}

bool EnvServer::LeadUntilRequest(Frames* request) {
  while (!stopping_.load()) {
    try {
      SendQueuedReplies();
      // Checked on every turn, so a saturated server still reclaims.
      if (std::chrono::steady_clock::now() >= next_sweep_) SweepIdleSessions();
      *request = ReceiveMultipart(*front_);
      // ROUTER always delivers [identity][at least one frame]; anything
      // shorter is not a request and is dropped.
      if (request->size() >= 2) return true;
      zmq::pollitem_t items[] = {
          {front_->handle(), 0, ZMQ_POLLIN, 0},
          {doorbell_->handle(), 0, ZMQ_POLLIN, 0},
      };
      zmq::poll(items, 2, std::chrono::milliseconds(kPollMs));
      if (items[1].revents & ZMQ_POLLIN) {
        zmq::message_t ring;
        while (doorbell_->recv(ring, zmq::recv_flags::dontwait)) {
        }
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) return false;
      // The server keeps serving: one failed send or receive loses one
      // message, which the client reports as a timeout.
      CLINRL_LOG_ERROR("env server I/O: {} (errno {})", e.what(), e.num());
    }
  }
  return false;
}

void EnvServer::SendQueuedReplies() {
  // Clear the flag before taking the queue: a worker that queues a reply
  // after this point rings again, so no reply waits for an unrelated wake-up.
  doorbell_rung_.store(false);
  std::vector<Frames> ready;
  {
    std::lock_guard<std::mutex> lock(replies_mutex_);
    if (replies_.empty()) return;
    ready.swap(replies_);
  }
  for (Frames& frames : ready) SendFrames(frames);
}

void EnvServer::SendFrames(Frames& frames) {
  const size_t n = frames.size();
  try {
    for (size_t i = 0; i < n; ++i) {
      const auto flags =
          i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::dontwait;
      if (!front_->send(frames[i], flags)) {
        CLINRL_LOG_WARN("env server: reply dropped (client queue full)");
        return;
      }
    }
  } catch (const zmq::error_t& e) {
    CLINRL_LOG_WARN("env server: reply dropped: {}", e.what());
  }
}

void EnvServer::SweepIdleSessions() {
  const int64_t n = handler_->ReclaimIdle();
  if (n > 0) CLINRL_LOG_INFO("env server: reclaimed {} idle sessions", n);
  next_sweep_ =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(sweep_ms_);
}

void EnvServer::Answer(Frames& request) {
  // [identity][envelope...][""][body], or [identity][body] from a client
  // that sends no delimiter; the body is always the last frame.
  zmq::message_t& body = request.back();
  // The ROUTER's routing identity: one per client connection. In-process
  // callers (the run's own env pool, over inproc://) are not limited.
  const bool in_process =
      options_.endpoint.rfind("inproc://", 0) == 0 || request.size() < 2;
  const std::string client =
      in_process ? std::string() : request.front().to_string();
  if (!Admit(client)) {
    const std::string busy =
        wire::ErrorReply(
            "bad_request",
            fmt::format("request: this client already has {} requests "
                        "running, its limit (max_in_flight_per_client); wait "
                        "for their replies",
                        options_.max_in_flight_per_client))
            .dump();
    body = zmq::message_t(busy.data(), busy.size());
    return;
  }
  std::string reply;
  try {
    reply = handler_->Handle(static_cast<const char*>(body.data()), body.size(),
                             client);
  } catch (...) {
    Done(client);
    throw;
  }
  Done(client);
  body = zmq::message_t(reply.data(), reply.size());
}

bool EnvServer::Admit(const std::string& client) {
  const int64_t cap = options_.max_in_flight_per_client;
  if (client.empty() || cap <= 0) return true;
  std::lock_guard<std::mutex> lock(clients_mutex_);
  int64_t& running = in_flight_[client];
  if (running >= cap) return false;
  ++running;
  return true;
}

void EnvServer::Done(const std::string& client) {
  if (client.empty() || options_.max_in_flight_per_client <= 0) return;
  std::lock_guard<std::mutex> lock(clients_mutex_);
  auto it = in_flight_.find(client);
  if (it != in_flight_.end() && --it->second <= 0) in_flight_.erase(it);
}

}  // namespace clinrl::envs
