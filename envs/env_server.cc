#include "envs/env_server.h"

#include <chrono>

#include "core/error.h"
#include "core/log.h"
#include "core/wire.h"
#include "envs/zmq_context.h"

namespace clinrl::envs {

namespace {
// Reclaim sweeps run at most this often (and at least every timeout/4).
constexpr int64_t kMaxSweepIntervalMs = 1000;
}  // namespace

EnvServer::EnvServer(EnvServerOptions options) : options_(std::move(options)) {
  CheckEndpoint(options_.endpoint, "--endpoint");
  if (options_.workers < 1) {
    throw BadRequest(fmt::format("--workers: got {}, expected at least 1",
                                 options_.workers));
  }
  handler_ = std::make_unique<EnvRequestHandler>(options_.service);
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
  stopping_ = false;
  running_ = true;
  for (int i = 0; i < options_.workers; ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  front_thread_ = std::thread([this] { FrontLoop(); });
  CLINRL_LOG_INFO("env server on {} ({} workers, envs: {})", bound_endpoint_,
                  options_.workers, fmt::join(handler_->env_names(), ","));
}

void EnvServer::Stop() {
  if (!running_.load()) return;
  stopping_ = true;
  jobs_ready_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();
  if (front_thread_.joinable()) front_thread_.join();
  front_.reset();
  doorbell_.reset();
  jobs_.clear();
  replies_.clear();
  queued_ = 0;
  running_ = false;
}

void EnvServer::FrontLoop() {
  const double idle_s = options_.service.idle_timeout_s;
  const int64_t sweep_ms =
      idle_s > 0 ? std::max<int64_t>(
                       1, std::min<int64_t>(kMaxSweepIntervalMs,
                                            static_cast<int64_t>(idle_s * 250)))
                 : kMaxSweepIntervalMs;
  auto next_sweep =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(sweep_ms);
  while (!stopping_.load()) {
    try {
      zmq::pollitem_t items[] = {
          {doorbell_->handle(), 0, ZMQ_POLLIN, 0},
          {front_->handle(), 0, ZMQ_POLLIN, 0},
      };
      const bool accept = queued_ < static_cast<size_t>(options_.max_queued);
      // 100 ms at most, so Stop() is noticed without a wake-up message.
      zmq::poll(items, accept ? 2 : 1, std::chrono::milliseconds(100));
      if (items[0].revents & ZMQ_POLLIN) SendReplies();
      if (accept && (items[1].revents & ZMQ_POLLIN)) DispatchFromFront();
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_sweep) {
        const int64_t n = handler_->ReclaimIdle();
        if (n > 0) {
          CLINRL_LOG_INFO("env server: reclaimed {} idle sessions", n);
        }
        next_sweep = now + std::chrono::milliseconds(sweep_ms);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      if (e.num() == ETERM) return;
      // The front keeps serving: one failed send or receive loses one message.
      CLINRL_LOG_ERROR("env server I/O: {} (errno {})", e.what(), e.num());
    } catch (const std::exception& e) {
      CLINRL_LOG_ERROR("env server I/O: {}", e.what());
    }
  }
}

void EnvServer::DispatchFromFront() {
  // Drains what has arrived, so one wake-up moves a whole burst.
  std::vector<Job> burst;
  while (queued_ + burst.size() < static_cast<size_t>(options_.max_queued)) {
    Job job;
    while (true) {
      zmq::message_t frame;
      if (!front_->recv(frame, zmq::recv_flags::dontwait)) break;
      const bool more = frame.more();
      job.frames.push_back(std::move(frame));
      if (!more) break;
    }
    if (job.frames.empty()) break;
    burst.push_back(std::move(job));
  }
  if (burst.empty()) return;
  queued_ += burst.size();
  {
    std::lock_guard<std::mutex> lock(jobs_mutex_);
    for (auto& job : burst) jobs_.push_back(std::move(job));
  }
  if (burst.size() == 1) {
    jobs_ready_.notify_one();
  } else {
    jobs_ready_.notify_all();
  }
}

void EnvServer::SendReplies() {
  // Drain the doorbell first, then the replies: a worker that queues a reply
  // after the flag is cleared rings again, so none is left behind.
  zmq::message_t ring;
  while (doorbell_->recv(ring, zmq::recv_flags::dontwait)) {
  }
  doorbell_rung_.store(false);
  std::vector<Job> ready;
  {
    std::lock_guard<std::mutex> lock(replies_mutex_);
    ready.swap(replies_);
  }
  for (Job& job : ready) {
    SendJob(job);
    --queued_;
  }
}

void EnvServer::SendJob(Job& job) {
  const size_t n = job.frames.size();
  for (size_t i = 0; i < n; ++i) {
    const auto flags =
        i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::dontwait;
    if (!front_->send(job.frames[i], flags)) {
      CLINRL_LOG_WARN("env server: reply dropped (client gone or full)");
      return;
    }
  }
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
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(jobs_mutex_);
      jobs_ready_.wait(lock,
                       [this] { return stopping_.load() || !jobs_.empty(); });
      if (stopping_.load()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    // Frames: [identity][envelope...][""][body]; an identity-only prefix
    // without the empty delimiter is a raw DEALER or a broken client.
    size_t body = job.frames.size() - 1;
    std::string reply;
    if (job.frames.size() < 2) {
      reply = wire::ErrorReply("bad_request",
                               "request: no frames after the "
                               "routing identity")
                  .dump();
    } else {
      const zmq::message_t& request = job.frames[body];
      reply = handler_->Handle(static_cast<const char*>(request.data()),
                               request.size());
    }
    job.frames[body] = zmq::message_t(reply.data(), reply.size());
    {
      std::lock_guard<std::mutex> lock(replies_mutex_);
      replies_.push_back(std::move(job));
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

}  // namespace clinrl::envs
