#include "trainer/remote_episode_source.h"

#include "core/curve_auth.h"
#include "core/error.h"
#include "core/log.h"
#include "core/monotonic_clock.h"
#include "core/seeds.h"
#include "core/wire.h"
#include "core/zmq_util.h"
#include "distributed/heartbeat.h"
#include "rollout/episode_tokens.h"
#include "rollout/rollout_wire.h"

namespace clinrl::trainer {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// ZeroMQ's "Peer-Address" of a message received over tcp:// (the sender's
// IP); "" over ipc://, where there is none.
std::string PeerAddress(zmq::message_t& message) {
  try {
    const char* address = message.gets("Peer-Address");
    return address != nullptr ? address : "";
  } catch (const zmq::error_t&) {
    return "";
  }
}

}  // namespace

RemoteEpisodeSource::RemoteEpisodeSource(const policy::Tokenizer& tokenizer,
                                         RemoteEpisodeSourceOptions options)
    : tokenizer_(tokenizer), options_(std::move(options)) {
  clinrl::CheckEndpoint(options_.work_endpoint, "work endpoint");
  if (options_.group_size < 1) {
    throw BadRequest(
        fmt::format("remote episodes: group_size {}, expected at least 1",
                    options_.group_size));
  }
  publisher_ =
      std::make_unique<distributed::WeightPublisher>(options_.weights_endpoint);
  try {
    clinrl::PrepareBind(options_.work_endpoint);
    socket_ = std::make_unique<zmq::socket_t>(clinrl::SharedZmqContext(),
                                              zmq::socket_type::router);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->set(zmq::sockopt::sndhwm, 0);
    socket_->set(zmq::sockopt::rcvhwm, 0);
    clinrl::SecureServerSocket(
        *socket_, options_.work_endpoint,
        fmt::format("learner work endpoint '{}'", options_.work_endpoint));
    socket_->bind(options_.work_endpoint);
    bound_work_ = socket_->get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    clinrl::ThrowZmqError(
        e, "binding the learner's work endpoint " + options_.work_endpoint);
  }
  thread_ = std::thread([this] { Loop(); });
}

RemoteEpisodeSource::~RemoteEpisodeSource() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  // Every process heartbeats once per interval: two intervals give each a
  // stop reply, unless all of them have had one already.
  const auto deadline =
      Clock::now() + std::chrono::milliseconds(2 * options_.heartbeat_ms + 100);
  while (Clock::now() < deadline) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      bool all_told = true;
      for (const auto& [name, w] : workers_) {
        all_told = all_told && (w.dead || w.told_stop);
      }
      if (all_told && !workers_.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  quit_ = true;
  if (thread_.joinable()) thread_.join();
}

void RemoteEpisodeSource::RunFailed(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mutex_);
  failure_ = reason;
}

void RemoteEpisodeSource::PolicyUpdated(const policy::Transformer& model,
                                        int64_t policy_version) {
  const double start = MonotonicSeconds();
  publisher_->Publish(*model, policy_version);
  publish_seconds_ = MonotonicSeconds() - start;
}

RemoteSourceCounters RemoteEpisodeSource::counters() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return counters_;
}

int64_t RemoteEpisodeSource::workers_alive() const {
  std::lock_guard<std::mutex> lock(mutex_);
  int64_t n = 0;
  for (const auto& [name, w] : workers_) n += w.rollout && !w.dead ? 1 : 0;
  return n;
}

void RemoteEpisodeSource::Queue(const std::vector<rollout::TaskRef>& tasks,
                                uint64_t seed) {
  ++play_id_;
  results_.clear();
  queue_.clear();
  outstanding_.clear();
  for (size_t pos = 0; pos < tasks.size(); ++pos) {
    // Each group's seed depends only on the step's seed and its place, so a
    // re-issued group samples as the lost one would have.
    queue_.push_back({fmt::format("{}-{}", play_id_, pos), pos, tasks[pos],
                      SplitMix64(seed ^ (pos + 1))});
  }
}

void RemoteEpisodeSource::Prefetch(const std::vector<rollout::TaskRef>& tasks,
                                   uint64_t seed, int64_t policy_version) {
  std::unique_lock<std::mutex> lock(mutex_);
  Queue(tasks, seed);
  learner_version_ = policy_version;
  prefetched_ = std::make_pair(seed, tasks.size());
  progress_.notify_all();
}

ScoredEpisodes RemoteEpisodeSource::Play(
    const std::vector<rollout::TaskRef>& tasks, uint64_t seed,
    int64_t policy_version) {
  const double start = MonotonicSeconds();
  std::map<size_t, Result> results;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const bool queued =
        prefetched_ && *prefetched_ == std::make_pair(seed, tasks.size());
    prefetched_.reset();
    if (!queued) Queue(tasks, seed);
    learner_version_ = policy_version;
    auto last_progress = Clock::now();
    size_t done = 0;
    while (results_.size() < tasks.size()) {
      progress_.wait_for(lock, std::chrono::milliseconds(100));
      if (results_.size() > done) {
        done = results_.size();
        last_progress = Clock::now();
      }
      const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(
                            Clock::now() - last_progress)
                            .count();
      if (!failures_.empty()) {
        // Every rollout worker that reported a failure is gone: when none is
        // left, waiting for progress_timeout_ms cannot help.
        bool alive = false;
        for (const auto& [name, w] : workers_) alive |= w.rollout && !w.dead;
        if (!alive) {
          const auto& [name, why] = *failures_.begin();
          throw IoError(fmt::format(
              "remote rollouts: no rollout worker is left ({} of {} task "
              "groups done); rollout worker {} failed: {}",
              done, tasks.size(), name, why));
        }
      }
      if (idle > options_.progress_timeout_ms) {
        int64_t alive = 0;
        for (const auto& [name, w] : workers_) {
          alive += w.rollout && !w.dead ? 1 : 0;
        }
        throw Timeout(fmt::format(
            "remote rollouts: no task group finished for {} ms ({} of {} "
            "done, {} rollout workers alive on {})",
            idle, done, tasks.size(), alive, bound_work_));
      }
    }
    results.swap(results_);
  }

  ScoredEpisodes out;
  const rollout::EpisodeTokenizer episode_tokenizer(tokenizer_, env_tools_);
  double lag_sum = 0;
  for (auto& [pos, result] : results) {
    for (Trajectory& t : result.trajectories) {
      lag_sum += static_cast<double>(policy_version - t.policy_version);
      rollout::RolloutEpisode e;
      e.tokens = episode_tokenizer.FromTrajectory(t);
      e.trajectory = std::move(t);
      out.episodes.push_back(std::move(e));
    }
    out.stats.Add(result.stats);  // `seconds` is set below: the learner's
    out.reward_seconds += result.reward_seconds;
  }
  // The step's wall time is the learner's, not the workers' sum.
  out.stats.seconds = MonotonicSeconds() - start;
  const RemoteSourceCounters c = counters();
  out.metrics["remote/workers_alive"] = static_cast<double>(workers_alive());
  out.metrics["remote/workers_lost"] = static_cast<double>(c.workers_lost);
  out.metrics["remote/groups_reissued"] =
      static_cast<double>(c.groups_reissued);
  out.metrics["remote/groups_stale"] = static_cast<double>(c.groups_stale);
  out.metrics["remote/policy_lag_mean"] =
      out.episodes.empty() ? 0.0 : lag_sum / out.episodes.size();
  // The last publish's snapshot time, and the tensor bytes sent to workers
  // so far (a LoRA policy's frozen base once per worker, then adapters).
  out.metrics["weights/publish_seconds"] = publish_seconds_;
  out.metrics["weights/sent_bytes"] =
      static_cast<double>(publisher_->bytes_sent());
  return out;
}

void RemoteEpisodeSource::Loop() {
  while (!quit_) {
    try {
      zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(20));
      if (item.revents & ZMQ_POLLIN) {
        // Everything waiting, then the bookkeeping once.
        for (int n = 0; n < 1000; ++n) {
          std::vector<zmq::message_t> frames =
              clinrl::ReceiveMultipart(*socket_);
          if (frames.empty()) break;
          HandleMessage(frames);
        }
      }
      std::lock_guard<std::mutex> lock(mutex_);
      CheckHeartbeats();
      Dispatch();
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      CLINRL_LOG_ERROR("work endpoint {}: ZeroMQ error {} (errno {})",
                       bound_work_, e.what(), e.num());
    }
  }
}

void RemoteEpisodeSource::HandleMessage(std::vector<zmq::message_t>& frames) {
  if (frames.size() < 2) return;  // no identity: nothing to answer
  const std::string identity = frames.front().to_string();
  json reply;
  try {
    json request;
    try {
      request = json::parse(frames.back().to_string());
    } catch (const json::parse_error& e) {
      throw BadRequest(
          fmt::format("request: expected a JSON object ({})", e.what()));
    }
    std::lock_guard<std::mutex> lock(mutex_);
    reply = HandleRequest(request, identity, PeerAddress(frames.back()));
  } catch (const Error& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.bad_messages;
    CLINRL_LOG_WARN("work endpoint: bad message: {}", e.what());
    reply = wire::ErrorReply(e.code(), e.what());
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mutex_);
    ++counters_.bad_messages;
    reply = wire::ErrorReply("bad_request", e.what());
  }
  if (!reply.is_null()) Reply(identity, reply);
}

json RemoteEpisodeSource::HandleRequest(const json& request,
                                        const std::string& identity,
                                        const std::string& address) {
  if (!request.is_object()) {
    throw BadRequest(fmt::format("request: expected a JSON object, got {}",
                                 request.type_name()));
  }
  const wire::Fields f(request, "request");
  const std::string op = f.String("op");
  const std::string worker = f.String("worker");
  WorkerState& w = workers_[worker];
  // A worker that reported its failure is exiting: its last heartbeats do
  // not bring it back.
  if (failures_.count(worker)) return json();
  if (w.dead) {
    CLINRL_LOG_WARN("rollout worker {} is back after being counted lost",
                    worker);
    w.dead = false;
  }
  w.last_seen = Clock::now();
  if (!address.empty()) w.address = address;
  if (op == "heartbeat") {
    const distributed::HeartbeatMessage beat =
        distributed::HeartbeatFromJson(request, "request");
    w.rollout = beat.role == "rollout";
    if (stopping_) w.told_stop = true;
    return distributed::HeartbeatReplyToJson(
        {stopping_, stopping_ ? failure_ : std::string()});
  }
  if (op == "work") {
    const rollout::WorkRequest work =
        rollout::WorkRequestFromJson(request, "request");
    w.rollout = true;
    waiting_.push_back({identity, work.worker});
    return json();  // answered by Dispatch once there is a group (or stop)
  }
  if (op == "result") return AcceptResult(request, worker);
  if (op == "failed") {
    // The worker is exiting on an error (its env or reward server is gone,
    // say): counted lost now, its groups re-issued, and its reason kept for
    // the error when no worker is left.
    w.dead = true;
    failures_[worker] = f.String("error", "no reason given");
    CLINRL_LOG_WARN("rollout worker {} failed: {}", worker, failures_[worker]);
    for (auto it = outstanding_.begin(); it != outstanding_.end();) {
      if (it->second.worker == worker) {
        queue_.push_front(it->second.job);
        it = outstanding_.erase(it);
      } else {
        ++it;
      }
    }
    progress_.notify_all();
    return json();  // the worker does not wait for a reply
  }
  throw BadRequest(fmt::format(
      "request.op: got '{}', expected one of: work, result, heartbeat, "
      "failed",
      op));
}

json RemoteEpisodeSource::AcceptResult(const json& request,
                                       const std::string& worker) {
  // The key first: a result for a group nobody holds is answered as such
  // whatever else it carries.
  const std::string key = wire::Fields(request, "request").String("key");
  auto it = outstanding_.find(key);
  if (it == outstanding_.end()) {
    // Finished by another worker after a re-issue, or of an earlier step.
    return rollout::ResultReplyToJson({false, "no such outstanding group"});
  }
  Job job = it->second.job;
  rollout::ResultRequest result;
  try {
    result = rollout::ResultRequestFromJson(request, "request");
    if (result.episodes.size() != static_cast<size_t>(options_.group_size)) {
      throw BadRequest(fmt::format(
          "request.episodes: got {} episodes, expected group_size {}",
          result.episodes.size(), options_.group_size));
    }
  } catch (const Error&) {
    // The group is played again rather than lost with the bad message.
    outstanding_.erase(it);
    queue_.push_front(job);
    throw;
  }
  outstanding_.erase(it);
  const int64_t oldest = learner_version_ - options_.max_policy_lag;
  for (const Trajectory& t : result.episodes) {
    if (t.policy_version < oldest) {
      ++counters_.groups_stale;
      queue_.push_front(job);
      CLINRL_LOG_WARN(
          "rollout worker {}: group {} sampled from version {}, more than "
          "max_policy_lag {} behind {}; playing it again",
          worker, key, t.policy_version, options_.max_policy_lag,
          learner_version_);
      return rollout::ResultReplyToJson({false, "stale"});
    }
  }
  results_[job.position] = {std::move(result.episodes), result.stats,
                            result.reward_seconds};
  ++counters_.groups_accepted;
  progress_.notify_all();
  return rollout::ResultReplyToJson({true, ""});
}

void RemoteEpisodeSource::CheckHeartbeats() {
  const auto now = Clock::now();
  const auto limit = std::chrono::milliseconds(options_.heartbeat_misses *
                                               options_.heartbeat_ms);
  for (auto& [name, w] : workers_) {
    if (!w.rollout || w.dead || now - w.last_seen <= limit) continue;
    w.dead = true;
    ++counters_.workers_lost;
    int64_t reissued = 0;
    for (auto it = outstanding_.begin(); it != outstanding_.end();) {
      if (it->second.worker == name) {
        queue_.push_front(it->second.job);
        it = outstanding_.erase(it);
        ++reissued;
      } else {
        ++it;
      }
    }
    counters_.groups_reissued += reissued;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      it = it->worker == name ? waiting_.erase(it) : it + 1;
    }
    // Across nodes the host says which machine or link to look at.
    CLINRL_LOG_WARN(
        "rollout worker {} missed {} heartbeats ({} ms){}: counted lost, {} "
        "task groups re-issued to the other workers",
        name, options_.heartbeat_misses, limit.count(),
        w.address.empty() ? "" : fmt::format(" from host {}", w.address),
        reissued);
  }
}

void RemoteEpisodeSource::Dispatch() {
  if (stopping_) {
    for (const Waiting& w : waiting_) {
      workers_[w.worker].told_stop = true;
      rollout::WorkReply stop;
      stop.stop = true;
      stop.failure = failure_;
      Reply(w.identity, rollout::WorkReplyToJson(stop));
    }
    waiting_.clear();
    return;
  }
  while (!queue_.empty() && !waiting_.empty()) {
    const Waiting w = waiting_.front();
    waiting_.pop_front();
    if (workers_[w.worker].dead) continue;
    Job job = queue_.front();
    queue_.pop_front();
    Reply(w.identity, Assignment(job));
    const std::string key = job.key;
    outstanding_[key] = {std::move(job), w.worker};
  }
}

json RemoteEpisodeSource::Assignment(const Job& job) const {
  rollout::WorkReply reply;
  reply.group = {job.key, job.task, job.seed};
  reply.min_version =
      std::max<int64_t>(0, learner_version_ - options_.max_policy_lag);
  reply.version = learner_version_;
  return rollout::WorkReplyToJson(reply);
}

void RemoteEpisodeSource::Reply(const std::string& identity, const json& body) {
  const std::string text = body.dump();
  try {
    socket_->send(zmq::buffer(identity), zmq::send_flags::sndmore);
    socket_->send(zmq::buffer(text), zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    CLINRL_LOG_WARN("work endpoint: reply to a worker failed: {}", e.what());
  }
}

}  // namespace clinrl::trainer
