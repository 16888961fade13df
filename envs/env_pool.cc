#include "envs/env_pool.h"

#include "core/error.h"
#include "core/zmq_util.h"
#include "envs/remote_env.h"

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

void CheckRunEnvs(const std::vector<EnvEntry>& entries) {
  if (entries.empty()) {
    throw ConfigError(
        "envs: expected at least one env entry (name, options), got none");
  }
  double total = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (entries[j].name == entries[i].name) {
        throw ConfigError(fmt::format(
            "envs.{}: env '{}' is already envs.{}; expected each env once "
            "(weights set its share of the tasks)",
            i, entries[i].name, j));
      }
    }
    total += entries[i].weight;
  }
  if (!(total > 0)) {
    throw ConfigError(
        "envs: the weights sum to 0; expected at least one env with weight > "
        "0");
  }
}

EnvConnection ConnectEnvs(const std::vector<EnvEntry>& entries,
                          const std::string& endpoint) {
  EnvConnection out;
  bool one_server = !entries.empty() && !entries.front().endpoint.empty();
  for (const EnvEntry& e : entries) {
    one_server = one_server && e.endpoint == entries.front().endpoint;
  }
  if (!endpoint.empty() || one_server) {
    EnvClientOptions options;
    options.endpoint = endpoint.empty() ? entries.front().endpoint : endpoint;
    out.remote = std::make_unique<EnvClient>(options);
    out.client = out.remote.get();
    return out;
  }
  EnvPoolOptions pool;
  for (size_t i = 0; i < entries.size(); ++i) {
    const EnvEntry& e = entries[i];
    pool.service.envs.push_back(e.name);
    pool.service.env_options[e.name] = e.options;
    if (e.endpoint.empty()) continue;
    if (!out.registry) {
      out.registry = std::make_unique<EnvRegistry>();
      for (const std::string& name : EnvRegistry::Global().Names()) {
        out.registry->Add(name, EnvRegistry::Global().Get(name));
      }
    }
    if (out.registry->Has(e.name)) {
      throw ConfigError(fmt::format(
          "envs.{}: env '{}' has an endpoint but is also registered in this "
          "process; serve it under another name",
          i, e.name));
    }
    // Served elsewhere: each of the pool's sessions of this env is a
    // session on that server.
    out.registry->Add(e.name, [endpoint = e.endpoint, name = e.name](
                                  const json&, const std::string&) {
      return std::unique_ptr<Env>(std::make_unique<RemoteEnv>(endpoint, name));
    });
  }
  pool.service.registry = out.registry.get();
  out.pool = std::make_unique<EnvPool>(pool);
  out.client = &out.pool->client();
  return out;
}

}  // namespace clinrl::envs
