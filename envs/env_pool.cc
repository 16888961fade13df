#include "envs/env_pool.h"

#include "core/zmq_util.h"

namespace clinrl::envs {

EnvPool::EnvPool(EnvPoolOptions options) : options_(std::move(options)) {
  EnvServerOptions server;
  server.service = options_.service;
  server.endpoint = UniqueInprocEndpoint("clinrl-env-pool");
  server.workers = options_.workers;
  server_ = std::make_unique<EnvServer>(std::move(server));
  server_->Start();
  client_ = NewClient();
}

EnvPool::~EnvPool() {
  client_.reset();
  server_.reset();
}

std::unique_ptr<EnvClient> EnvPool::NewClient() const {
  return std::make_unique<EnvClient>(
      EnvClientOptions{server_->bound_endpoint(), options_.request_timeout_ms});
}

}  // namespace clinrl::envs
