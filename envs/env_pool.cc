#include "envs/env_pool.h"

#include "core/error.h"
#include "core/zmq_util.h"
#include "envs/remote_env.h"
#include "envs/wrappers/env_wrapper_registry.h"

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
    CheckEnvWrapperNames(entries[i].wrappers,
                         fmt::format("envs.{}.wrappers", i));
  }
  if (!(total > 0)) {
    throw ConfigError(
        "envs: the weights sum to 0; expected at least one env with weight > "
        "0");
  }
}

namespace {

// A copy of the global registry without the in-process envs that the run
// wraps (their wrapped factories take the names).
std::unique_ptr<EnvRegistry> RegistryForWrappedEnvs(
    const std::vector<EnvEntry>& entries) {
  auto registry = std::make_unique<EnvRegistry>();
  for (const std::string& name : EnvRegistry::Global().Names()) {
    bool wrapped_here = false;
    for (const EnvEntry& e : entries) {
      wrapped_here = wrapped_here || (e.name == name && e.endpoint.empty() &&
                                      !e.wrappers.empty());
    }
    if (!wrapped_here) registry->Add(name, EnvRegistry::Global().Get(name));
  }
  return registry;
}

// The entry's env served under its own name, so the run's tasks, reward
// overrides and scripted policies find it as before, while its spec name
// ("dx_dialogue+distractor") says it is wrapped.
void AddWrappedEnv(const EnvEntry& e, size_t i, EnvRegistry* registry) {
  const EnvFactory* inner = EnvRegistry::Global().Find(e.name);
  if (inner == nullptr) return;  // unknown: refused as usual when created
  registry->Add(e.name, [inner = *inner, wrappers = e.wrappers,
                         path = fmt::format("envs.{}.wrappers", i)](
                            const json& options, const std::string& where) {
    return WrapEnv(inner(options, where), wrappers, path);
  });
}

}  // namespace

EnvConnection ConnectEnvs(const std::vector<EnvEntry>& entries,
                          const std::string& endpoint) {
  EnvConnection out;
  bool one_server = !entries.empty() && !entries.front().endpoint.empty();
  for (const EnvEntry& e : entries) {
    one_server = one_server && e.endpoint == entries.front().endpoint;
  }
  bool wrapped = false;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].wrappers.empty()) continue;
    wrapped = true;
    // A client talking straight to a server plays that server's envs as
    // they are; wrapping happens in this process's pool.
    if (!endpoint.empty()) {
      throw ConfigError(fmt::format(
          "envs.{}.wrappers: env '{}' is played on the env server {} "
          "directly, so it cannot be wrapped here; expected no wrappers with "
          "an env endpoint override",
          i, entries[i].name, endpoint));
    }
  }
  if (!endpoint.empty() || (one_server && !wrapped)) {
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
    if (e.endpoint.empty() && e.wrappers.empty()) continue;
    if (!out.registry) out.registry = RegistryForWrappedEnvs(entries);
    if (e.endpoint.empty()) {
      AddWrappedEnv(e, i, out.registry.get());
      continue;
    }
    if (out.registry->Has(e.name)) {
      throw ConfigError(fmt::format(
          "envs.{}: env '{}' has an endpoint but is also registered in this "
          "process; serve it under another name",
          i, e.name));
    }
    // Served elsewhere: each of the pool's sessions of this env is a
    // session on that server.
    out.registry->Add(
        e.name, [endpoint = e.endpoint, name = e.name, wrappers = e.wrappers,
                 path = fmt::format("envs.{}.wrappers", i)](
                    const json&, const std::string&) {
          return WrapEnv(std::make_unique<RemoteEnv>(endpoint, name), wrappers,
                         path);
        });
  }
  pool.service.registry = out.registry.get();
  out.pool = std::make_unique<EnvPool>(pool);
  out.client = &out.pool->client();
  return out;
}

}  // namespace clinrl::envs
