// The embedded default: an env server on an inproc:// endpoint inside this
// process, driven through the same EnvClient as a remote one, so rollout code
// does not change between one process, one node and many nodes.
#pragma once

#include <memory>
#include <string>

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

}  // namespace clinrl::envs
