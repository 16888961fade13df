// The embedded default: an env server on an inproc:// endpoint inside this
// process, driven through the same EnvClient as a remote one, so rollout code
// does not change between one process, one node and many nodes.
#pragma once

#include <memory>
#include <string>

#include "core/clinrl_config.h"
#include "envs/env_client.h"
#include "envs/env_server.h"

namespace clinrl::envs {

struct EnvPoolOptions {
  EnvServiceOptions service;
  int64_t workers = 2;
  int64_t request_timeout_ms = 60000;
};

class EnvPool {
 public:
  explicit EnvPool(EnvPoolOptions options);
  ~EnvPool();

  // A client for the calling thread.
  EnvClient& client() { return *client_; }
  // Another client, for another thread.
  std::unique_ptr<EnvClient> NewClient() const;
  const std::string& endpoint() const { return server_->bound_endpoint(); }
  EnvServer& server() { return *server_; }

 private:
  EnvPoolOptions options_;
  std::unique_ptr<EnvServer> server_;
  std::unique_ptr<EnvClient> client_;
};

// The envs of a run config, ready to play: a client of `endpoint` when one is
// given (an env server elsewhere), else an EnvPool in this process serving
// every entry of `entries` with its options.
struct EnvConnection {
  std::unique_ptr<EnvPool> pool;
  std::unique_ptr<EnvClient> remote;
  EnvClient* client = nullptr;  // the pool's client or `remote`
};
// The one env of a run config. A run trains on one env until env mixtures
// exist: an empty list, or a second entry that would be silently ignored, is
// a ConfigError naming `envs`.
const EnvEntry& TheRunEnv(const std::vector<EnvEntry>& entries);

EnvConnection ConnectEnvs(const std::vector<EnvEntry>& entries,
                          const std::string& endpoint);

}  // namespace clinrl::envs
