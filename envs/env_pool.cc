#include "envs/env_pool.h"

#include "core/error.h"
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

const EnvEntry& TheRunEnv(const std::vector<EnvEntry>& entries) {
  if (entries.empty()) {
    throw ConfigError("envs: expected one env entry (name, options), got none");
  }
  if (entries.size() > 1) {
    throw ConfigError(fmt::format(
        "envs: got {} entries, expected one: a run trains on one env (envs.1 "
        "'{}' would be ignored; env mixtures are not supported yet)",
        entries.size(), entries[1].name));
  }
  return entries.front();
}

EnvConnection ConnectEnvs(const std::vector<EnvEntry>& entries,
                          const std::string& endpoint) {
  EnvConnection out;
  if (endpoint.empty()) {
    EnvPoolOptions pool;
    for (const EnvEntry& e : entries) {
      pool.service.envs.push_back(e.name);
      pool.service.env_options[e.name] = e.options;
    }
    out.pool = std::make_unique<EnvPool>(pool);
    out.client = &out.pool->client();
  } else {
    EnvClientOptions options;
    options.endpoint = endpoint;
    out.remote = std::make_unique<EnvClient>(options);
    out.client = out.remote.get();
  }
  return out;
}

}  // namespace clinrl::envs
