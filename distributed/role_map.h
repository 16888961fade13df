// Which rank of a distributed run does what, and where each service listens
// (docs/distributed.md, "Roles and endpoints"). Ranks are assigned in a fixed
// order: learners first (so learner rank r is world rank r, and a by-slot
// placement keeps them on the first node), then env servers, reward servers
// and rollout workers. Learner rank 0 binds the work endpoint (task groups
// out, scored trajectories and heartbeats in) and the weights endpoint;
// each env and reward server binds one endpoint of its own.
//
// On one node every endpoint is ipc:// under the run directory; when the
// ranks span several hosts they are tcp://host:port with one port block per
// rank, so two ranks on one host never collide.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/clinrl_config.h"

namespace clinrl::distributed {

enum class Role { kLearner, kRollout, kEnvServer, kRewardServer };

const char* RoleName(Role role);  // learner, rollout, env_server, ...
// Throws BadRequest naming `field`, the value and the allowed names.
Role ParseRole(const std::string& name, const std::string& field);

// An endpoint as its owner binds it and as the others connect to it (they
// differ for tcp: tcp://*:port against tcp://host:port).
struct ServiceEndpoint {
  std::string bind;
  std::string connect;
};

struct RankAssignment {
  int rank = 0;
  Role role = Role::kLearner;
  int index = 0;  // position among the ranks of the same role
  std::string host;
};

struct RoleMap {
  int world_size = 0;
  std::string transport;              // "ipc" or "tcp"
  std::vector<RankAssignment> ranks;  // by world rank
  ServiceEndpoint work;     // learner rank 0: task groups and heartbeats
  ServiceEndpoint weights;  // learner rank 0: policy versions
  std::vector<ServiceEndpoint> env_servers;
  std::vector<ServiceEndpoint> reward_servers;

  int Count(Role role) const;
  // World rank of the `index`th rank of `role`; throws BadRequest when
  // there is no such rank.
  int RankOf(Role role, int index) const;
  // The env server rollout worker `index` plays against ("" = none: the
  // worker runs the config's envs itself); workers spread over the servers.
  std::string EnvEndpointFor(int rollout_index) const;
  std::string RewardEndpointFor(int rollout_index) const;
  nlohmann::json ToJson() const;
};

// Ranks the roles of `config.distributed` need.
int RequiredWorldSize(const DistributedConfig& config);

// The role map for `world_size` ranks. `hosts` holds each rank's hostname
// (empty: all on this node). `run_dir` is the run directory, home of the
// ipc sockets unless distributed.ipc_dir says otherwise. Throws ConfigError
// naming the field, the value and what was expected (world size against the
// roles, ipc paths too long for a socket address, ports out of range).
RoleMap ComputeRoleMap(const ClinrlConfig& config, int world_size,
                       const std::vector<std::string>& hosts,
                       const std::string& run_dir);

}  // namespace clinrl::distributed
