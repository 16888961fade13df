// Episodes from rollout workers in other processes (docs/distributed.md).
// Learner rank 0 binds a ZeroMQ ROUTER (the work endpoint) served by one
// thread, and a WeightPublisher. The work protocol, JSON, one reply per
// request (the messages are written and read by rollout/rollout_wire.h and,
// for the heartbeat, distributed/heartbeat.h):
//
//   {"op": "work", "worker": W}  -> {"op": "work", "group": {key, env, split,
//        task_index, options, seed}, "min_version": V, "version": L} once a
//        task group is queued (the request waits until then), or {"op":
//        "work", "stop": true} when the run is over. The worker plays the
//        group with weights of version >= min_version, waiting a moment for
//        the learner's current version L when it is on its way.
//   {"op": "result", "worker": W, "key": K, "episodes": [trajectory...],
//    "stats": {...}}             -> {"op": "result", "accepted": bool}
//   {"op": "heartbeat", "worker": W, "role": R} -> {"op": "heartbeat",
//        "stop": bool}
//
// Staleness: a group whose episodes were sampled more than max_policy_lag
// versions behind the learner is dropped and queued again; within the bound
// the GRPO step's truncated importance weights correct for the lag.
// Faults: a rollout worker silent for heartbeat_misses x heartbeat_ms counts
// as dead, and its outstanding groups go back to the front of the queue for
// the other workers. A malformed message gets an error reply and changes
// nothing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "core/trajectory.h"
#include "distributed/weight_publisher.h"
#include "rollout/rollout_wire.h"
#include "trainer/episode_source.h"

namespace clinrl::trainer {

struct RemoteEpisodeSourceOptions {
  std::string work_endpoint;     // bound here
  std::string weights_endpoint;  // bound here
  int64_t group_size = 8;
  int64_t max_policy_lag = 1;
  int64_t heartbeat_ms = 1000;
  int64_t heartbeat_misses = 3;
  // A step with no accepted group for this long fails with Timeout (no
  // worker alive, or all of them stuck).
  int64_t progress_timeout_ms = 600000;
};

struct RemoteSourceCounters {
  int64_t groups_accepted = 0;
  int64_t groups_reissued = 0;  // after a worker was lost
  int64_t groups_stale = 0;     // dropped for lag > max_policy_lag
  int64_t workers_lost = 0;
  int64_t bad_messages = 0;
};

class RemoteEpisodeSource : public EpisodeSource {
 public:
  // Binds both endpoints and starts serving (heartbeats are answered from
  // here on, also while an SFT stage runs). Throws IoError naming an
  // endpoint that cannot be bound.
  RemoteEpisodeSource(const policy::Tokenizer& tokenizer,
                      RemoteEpisodeSourceOptions options);
  // Tells every worker and server that the run is over (stop replies), for
  // up to two heartbeat intervals, then closes.
  ~RemoteEpisodeSource() override;
  void SetEnvTools(std::map<std::string, nlohmann::json> env_tools) override {
    env_tools_ = std::move(env_tools);
  }

  ScoredEpisodes Play(const std::vector<rollout::TaskRef>& tasks, uint64_t seed,
                      int64_t policy_version) override;
  // Queues the groups at once; rollout workers play them with the weights
  // they hold (the current version), and Play(tasks, seed) collects them.
  void Prefetch(const std::vector<rollout::TaskRef>& tasks, uint64_t seed,
                int64_t policy_version) override;
  void PolicyUpdated(const policy::Transformer& model,
                     int64_t policy_version) override;
  // Every later stop reply (work and heartbeat) carries `reason`.
  void RunFailed(const std::string& reason) override;

  RemoteSourceCounters counters() const;
  int64_t workers_alive() const;
  const std::string& work_endpoint() const { return bound_work_; }
  const std::string& weights_endpoint() const { return publisher_->endpoint(); }

 private:
  struct Job {
    std::string key;
    size_t position = 0;
    rollout::TaskRef task;
    uint64_t seed = 0;
  };
  struct Outstanding {
    Job job;
    std::string worker;
  };
  struct WorkerState {
    std::chrono::steady_clock::time_point last_seen;
    bool rollout = false;
    bool dead = false;
    std::string address;  // the peer's IP over tcp:// (for the lost message)
    bool told_stop = false;
  };
  struct Waiting {
    std::string identity;
    std::string worker;
  };
  struct Result {
    std::vector<Trajectory> trajectories;
    rollout::RolloutStats stats;
    double reward_seconds = 0;
  };

  void Loop();
  void HandleMessage(std::vector<zmq::message_t>& frames);
  // `address`: the sender's IP address over tcp://, "" otherwise.
  nlohmann::json HandleRequest(const nlohmann::json& request,
                               const std::string& identity,
                               const std::string& address);
  nlohmann::json AcceptResult(const nlohmann::json& request,
                              const std::string& worker);
  void CheckHeartbeats();
  // A new play of `tasks` replaces whatever was queued (mutex_ held).
  void Queue(const std::vector<rollout::TaskRef>& tasks, uint64_t seed);
  void Dispatch();
  void Reply(const std::string& identity, const nlohmann::json& body);
  nlohmann::json Assignment(const Job& job) const;

  const policy::Tokenizer& tokenizer_;
  std::map<std::string, nlohmann::json> env_tools_;  // SetEnvTools
  RemoteEpisodeSourceOptions options_;
  std::unique_ptr<distributed::WeightPublisher> publisher_;
  std::unique_ptr<zmq::socket_t> socket_;  // used by the serving thread
  std::string bound_work_;

  mutable std::mutex mutex_;
  std::condition_variable progress_;
  std::deque<Job> queue_;
  std::map<std::string, Outstanding> outstanding_;  // by job key
  std::map<std::string, WorkerState> workers_;      // by worker name
  std::deque<Waiting> waiting_;                     // idle work requests
  std::map<size_t, Result> results_;                // of the current Play
  uint64_t play_id_ = 0;
  // The queued play a Prefetch started: its seed and group count.
  std::optional<std::pair<uint64_t, size_t>> prefetched_;
  int64_t learner_version_ = 0;
  RemoteSourceCounters counters_;
  double publish_seconds_ = 0.0;  // the last PolicyUpdated's Publish
  bool stopping_ = false;
  std::string failure_;  // RunFailed's reason, sent with every stop
  // Why each rollout worker that reported a failure failed.
  std::map<std::string, std::string> failures_;
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace clinrl::trainer
