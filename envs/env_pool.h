// The embedded default: an env server on an inproc:// endpoint inside this
// process, driven through the same EnvClient as a remote one, so rollout code
// does not change between one process, one node and many nodes.
#pragma once

#include <memory>
#include <string>

#include "core/clinrl_config.h"
#include "envs/env_client.h"
#include "envs/env_registry.h"
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

// The envs of a run config, ready to play through one client. With
// `endpoint` given, or when every entry names the same endpoint, a client of
// that env server (it serves them all). Otherwise an EnvPool in this process
// serving every entry: in-process entries with their options, and each entry
// with its own endpoint (a Python env server, say) through a RemoteEnv of
// that server, so a mixture can combine both.
struct EnvConnection {
  std::unique_ptr<EnvRegistry> registry;  // the pool's, when it has remotes
  std::unique_ptr<EnvPool> pool;
  std::unique_ptr<EnvClient> remote;
  EnvClient* client = nullptr;  // the pool's client or `remote`
};

// The env entries of a run config (one env, or a mixture): at least one,
// names unique, weights summing to more than 0. Throws ConfigError naming
// `envs.<i>`.
void CheckRunEnvs(const std::vector<EnvEntry>& entries);

EnvConnection ConnectEnvs(const std::vector<EnvEntry>& entries,
                          const std::string& endpoint);

}  // namespace clinrl::envs
