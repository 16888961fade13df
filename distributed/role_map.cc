#include "distributed/role_map.h"

#include <fmt/format.h>
#include <sys/un.h>

#include <set>

#include "core/error.h"

namespace clinrl::distributed {

namespace {

constexpr int kPortsPerRank = 2;  // learner rank 0: work and weights

ServiceEndpoint IpcEndpoint(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name + ".sock";
  // The socket address holds at most sizeof(sun_path) - 1 characters; a
  // longer path fails only at bind time, far from the config that set it.
  constexpr size_t kMax = sizeof(sockaddr_un::sun_path) - 1;
  if (path.size() > kMax) {
    throw ConfigError(fmt::format(
        "distributed.ipc_dir: socket path '{}' is {} characters, expected at "
        "most {} (set distributed.ipc_dir to a shorter folder)",
        path, path.size(), kMax));
  }
  return {"ipc://" + path, "ipc://" + path};
}

ServiceEndpoint TcpEndpoint(const std::string& host, int64_t port) {
  // Without a host list (roles started by hand) every role is on this host
  // and connects to localhost, so nothing needs to listen beyond loopback.
  const std::string bind_host = host == "localhost" ? "127.0.0.1" : "*";
  return {fmt::format("tcp://{}:{}", bind_host, port),
          fmt::format("tcp://{}:{}", host, port)};
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kLearner:
      return "learner";
    case Role::kRollout:
      return "rollout";
    case Role::kEnvServer:
      return "env_server";
    case Role::kRewardServer:
      return "reward_server";
  }
  return "unknown";
}

Role ParseRole(const std::string& name, const std::string& field) {
  for (Role r : {Role::kLearner, Role::kRollout, Role::kEnvServer,
                 Role::kRewardServer}) {
    if (name == RoleName(r)) return r;
  }
  throw BadRequest(fmt::format(
      "{}: got '{}', expected one of: learner, rollout, env_server, "
      "reward_server",
      field, name));
}

int RoleMap::Count(Role role) const {
  int n = 0;
  for (const RankAssignment& a : ranks) n += a.role == role ? 1 : 0;
  return n;
}

int RoleMap::RankOf(Role role, int index) const {
  for (const RankAssignment& a : ranks) {
    if (a.role == role && a.index == index) return a.rank;
  }
  throw BadRequest(fmt::format("--index: got {}, expected 0..{} ({} {} ranks)",
                               index, Count(role) - 1, Count(role),
                               RoleName(role)));
}

std::string RoleMap::EnvEndpointFor(int rollout_index) const {
  if (env_servers.empty()) return "";
  return env_servers[static_cast<size_t>(rollout_index) % env_servers.size()]
      .connect;
}

std::string RoleMap::RewardEndpointFor(int rollout_index) const {
  if (reward_servers.empty()) return "";
  return reward_servers[static_cast<size_t>(rollout_index) %
                        reward_servers.size()]
      .connect;
}

nlohmann::json RoleMap::ToJson() const {
  using nlohmann::json;
  auto endpoint = [](const ServiceEndpoint& e) {
    return json{{"bind", e.bind}, {"connect", e.connect}};
  };
  json out = {{"world_size", world_size},     {"transport", transport},
              {"work", endpoint(work)},       {"weights", endpoint(weights)},
              {"env_servers", json::array()}, {"reward_servers", json::array()},
              {"ranks", json::array()}};
  for (const auto& e : env_servers) out["env_servers"].push_back(endpoint(e));
  for (const auto& e : reward_servers) {
    out["reward_servers"].push_back(endpoint(e));
  }
  for (const RankAssignment& a : ranks) {
    out["ranks"].push_back({{"rank", a.rank},
                            {"role", RoleName(a.role)},
                            {"index", a.index},
                            {"host", a.host}});
  }
  return out;
}

int RequiredWorldSize(const DistributedConfig& c) {
  return static_cast<int>(c.learner_ranks + c.rollout_ranks +
                          c.env_server_ranks + c.reward_server_ranks);
}

RoleMap ComputeRoleMap(const ClinrlConfig& config, int world_size,
                       const std::vector<std::string>& hosts,
                       const std::string& run_dir) {
  const DistributedConfig& d = config.distributed;
  const int required = RequiredWorldSize(d);
  if (world_size != required) {
    throw ConfigError(fmt::format(
        "distributed: the job has {} ranks, expected {} = learner_ranks {} + "
        "rollout_ranks {} + env_server_ranks {} + reward_server_ranks {} "
        "(launch with -n {}, or change the distributed section)",
        world_size, required, d.learner_ranks, d.rollout_ranks,
        d.env_server_ranks, d.reward_server_ranks, required));
  }
  if (d.rollout_ranks == 0 &&
      (d.env_server_ranks > 0 || d.reward_server_ranks > 0)) {
    throw ConfigError(fmt::format(
        "distributed.rollout_ranks: got 0 with env_server_ranks {} and "
        "reward_server_ranks {}, expected at least 1 (only rollout workers "
        "use env and reward server ranks)",
        d.env_server_ranks, d.reward_server_ranks));
  }
  if (!hosts.empty() && hosts.size() != static_cast<size_t>(world_size)) {
    throw BadRequest(
        fmt::format("role map: got {} hostnames, expected one per rank ({})",
                    hosts.size(), world_size));
  }

  RoleMap map;
  map.world_size = world_size;
  const std::set<std::string> distinct(hosts.begin(), hosts.end());
  if (d.transport == "auto") {
    map.transport = distinct.size() > 1 ? "tcp" : "ipc";
  } else {
    map.transport = d.transport;
  }
  if (map.transport == "ipc" && distinct.size() > 1) {
    throw ConfigError(fmt::format(
        "distributed.transport: got 'ipc' with ranks on {} hosts, expected "
        "'tcp' or 'auto' (ipc:// reaches only the same node)",
        distinct.size()));
  }
  const int64_t last_port =
      d.base_port + static_cast<int64_t>(world_size) * kPortsPerRank - 1;
  if (map.transport == "tcp" && last_port > 65535) {
    throw ConfigError(fmt::format(
        "distributed.base_port: got {}, expected at most {} ({} ranks use {} "
        "ports each)",
        d.base_port, 65535 - world_size * kPortsPerRank + 1, world_size,
        kPortsPerRank));
  }

  int rank = 0;
  auto add = [&](Role role, int64_t count) {
    for (int i = 0; i < count; ++i, ++rank) {
      RankAssignment a;
      a.rank = rank;
      a.role = role;
      a.index = i;
      a.host = hosts.empty() ? "localhost" : hosts[static_cast<size_t>(rank)];
      map.ranks.push_back(a);
    }
  };
  add(Role::kLearner, d.learner_ranks);
  add(Role::kEnvServer, d.env_server_ranks);
  add(Role::kRewardServer, d.reward_server_ranks);
  add(Role::kRollout, d.rollout_ranks);

  const std::string ipc_dir = d.ipc_dir.empty() ? run_dir + "/ipc" : d.ipc_dir;
  auto endpoint = [&](const RankAssignment& a, int slot,
                      const std::string& name) {
    if (map.transport == "ipc") return IpcEndpoint(ipc_dir, name);
    return TcpEndpoint(a.host, d.base_port + a.rank * kPortsPerRank + slot);
  };
  for (const RankAssignment& a : map.ranks) {
    if (a.role == Role::kLearner && a.index == 0) {
      map.work = endpoint(a, 0, "work");
      map.weights = endpoint(a, 1, "weights");
    } else if (a.role == Role::kEnvServer) {
      map.env_servers.push_back(endpoint(a, 0, fmt::format("env-{}", a.index)));
    } else if (a.role == Role::kRewardServer) {
      map.reward_servers.push_back(
          endpoint(a, 0, fmt::format("reward-{}", a.index)));
    }
  }
  return map;
}

}  // namespace clinrl::distributed
