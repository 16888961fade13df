// The env protocol's ops (docs/design.md: spec, reset, step, truncate, close,
// health, act) on a table of sessions: one JSON request in, one JSON reply out,
// never a throw.
// The server runs it on its worker threads; it holds no transport.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "envs/env.h"
#include "envs/env_registry.h"
#include "envs/env_session_table.h"

namespace clinrl::envs {

struct EnvServiceOptions {
  // Registered env names this service plays. Empty: every registered env.
  std::vector<std::string> envs;
  // Factory options per env name (EnvEntry.options of the run config).
  std::map<std::string, json> env_options;
  // Where each env's options came from, for errors that name a bad option.
  // Absent: `envs.<i>.options` for the i-th of `envs` (their key in a run
  // config, whose env list the trainer and the rollout service pass in
  // order), `env_options.<name>` for an env served because it is registered.
  std::map<std::string, std::string> env_options_paths;
  // The registry to create envs from; nullptr: EnvRegistry::Global().
  const EnvRegistry* registry = nullptr;
  // Sessions unused this long are closed by ReclaimIdle; <= 0: never.
  double idle_timeout_s = 600.0;
  int64_t max_sessions = 100000;
  // What one client (one connection to the server) may take, so that a
  // greedy one cannot starve the others: open sessions, and the size of one
  // request. Over either, the request gets an error reply. <= 0: no limit.
  int64_t max_sessions_per_client = 10000;
  int64_t max_request_bytes = int64_t{16} << 20;
  // Closed sessions' env objects kept per env for the next reset, so an
  // episode does not pay the factory (which may load data) every time.
  int64_t recycle_limit = 256;
};

struct EnvServiceStats {
  int64_t requests = 0;
  int64_t errors = 0;
  int64_t reclaimed = 0;
};

class EnvRequestHandler {
 public:
  // Creates one env of each name to validate the names and options and to
  // cache the specs; throws NotFound / ConfigError naming the bad one.
  explicit EnvRequestHandler(EnvServiceOptions options);

  // Parses `request` (JSON text) and returns the reply. Never throws: bad
  // JSON, unknown ops and sessions, and env exceptions become error replies.
  // `client` names the connection the request came on (the server's
  // routing identity) for the per-client limits; "" = an in-process caller,
  // to which they do not apply.
  std::string Handle(const char* data, size_t size,
                     const std::string& client = "");
  json HandleJson(const json& request, const std::string& client = "");

  // Closes sessions idle longer than the timeout; returns how many.
  int64_t ReclaimIdle();
  int64_t sessions() const { return table_.size(); }
  EnvServiceStats stats() const;
  const std::vector<std::string>& env_names() const { return names_; }
  const EnvServiceOptions& options() const { return options_; }

 private:
  json Dispatch(const json& request, const std::string& client);
  json Spec(const json& request);
  json Reset(const json& request, const std::string& client);
  json Step(const json& request);
  // Ends the session's episode as truncated: the runtime cut it.
  json Truncate(const json& request);
  json Close(const json& request);
  // A registered scripted policy picks the session's next action.
  json Act(const json& request);
  json Health();
  const std::string& EnvNameOf(const json& request) const;
  // The open session `id`; throws NotFound naming request.session.
  std::shared_ptr<EnvSession> FindSession(const std::string& id) const;
  std::unique_ptr<Env> TakeEnv(const std::string& name);
  void Recycle(std::shared_ptr<EnvSession> session);

  EnvServiceOptions options_;
  const EnvRegistry* registry_;
  std::vector<std::string> names_;
  std::map<std::string, json> spec_replies_;
  EnvSessionTable table_;
  std::mutex spare_mutex_;
  std::map<std::string, std::vector<std::unique_ptr<Env>>> spare_envs_;
  std::chrono::steady_clock::time_point started_;
  std::atomic<int64_t> requests_{0}, errors_{0}, reclaimed_{0};
};

}  // namespace clinrl::envs
