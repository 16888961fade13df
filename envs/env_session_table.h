// The sessions of one env server: one Env object per open episode, looked up
// by an id that is unique across server restarts (an instance prefix drawn at
// start-up), so a client holding a session of a dead server gets not_found
// from its successor instead of someone else's episode.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "envs/env.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs {

struct EnvSession {
  std::string id;
  std::string env_name;
  // The connection that opened it (the server's routing identity; "" for
  // an in-process caller), for the per-client session cap.
  std::string client;
  std::unique_ptr<Env> env;
  // Held while a request runs on this session: one Env plays one episode
  // and is not thread-safe.
  std::mutex busy;
  std::atomic<int64_t> last_used_ns{0};
  // Both guarded by `busy`. `closed`: the session left the table (close or
  // idle reclaim) and its env may already serve another session, so a request
  // that found it just before must not touch it. `broken`: the env threw, its
  // state is unknown, and it is not recycled.
  bool closed = false;
  bool broken = false;
  // The scripted policy playing this episode (the act op), made at its first
  // act after a reset; guarded by `busy`.
  std::unique_ptr<ScriptedPolicy> policy;
  std::string policy_name;
};

class EnvSessionTable {
 public:
  EnvSessionTable();

  static int64_t NowNs() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  std::shared_ptr<EnvSession> Add(const std::string& env_name,
                                  std::unique_ptr<Env> env,
                                  const std::string& client = "");
  // Open sessions that `client` opened.
  int64_t CountOf(const std::string& client) const;
  // nullptr when there is no such session.
  std::shared_ptr<EnvSession> Find(const std::string& id) const;
  // The removed session, or nullptr when there was none.
  std::shared_ptr<EnvSession> Remove(const std::string& id);
  // Removes and returns the sessions unused for longer than `idle_ns` whose
  // env is not running a request right now.
  std::vector<std::shared_ptr<EnvSession>> TakeIdle(int64_t now_ns,
                                                    int64_t idle_ns);
  int64_t size() const;

 private:
  // Drops `session` from its client's count; called with mutex_ held.
  void Forget(const EnvSession& session);
  std::string prefix_;
  std::atomic<uint64_t> next_{1};
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<EnvSession>> sessions_;
  std::unordered_map<std::string, int64_t> per_client_;  // open sessions
};

}  // namespace clinrl::envs
