#include "distributed/role_map.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace clinrl::distributed {
namespace {

ClinrlConfig Roles(int64_t learners, int64_t rollouts, int64_t envs,
                   int64_t rewards) {
  ClinrlConfig c;
  c.distributed.learner_ranks = learners;
  c.distributed.rollout_ranks = rollouts;
  c.distributed.env_server_ranks = envs;
  c.distributed.reward_server_ranks = rewards;
  return c;
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(RoleMapTest, AssignsLearnersFirstThenServersThenWorkers) {
  const RoleMap map = ComputeRoleMap(Roles(2, 3, 1, 1), 7, {}, "/tmp/run");
  ASSERT_EQ(map.ranks.size(), 7u);
  const Role expected[] = {
      Role::kLearner, Role::kLearner, Role::kEnvServer, Role::kRewardServer,
      Role::kRollout, Role::kRollout, Role::kRollout};
  for (int r = 0; r < 7; ++r) {
    EXPECT_EQ(map.ranks[r].rank, r);
    EXPECT_EQ(map.ranks[r].role, expected[r]) << "rank " << r;
  }
  EXPECT_EQ(map.ranks[1].index, 1);
  EXPECT_EQ(map.ranks[6].index, 2);
  EXPECT_EQ(map.RankOf(Role::kRollout, 0), 4);
  EXPECT_EQ(map.Count(Role::kLearner), 2);
  EXPECT_EQ(map.transport, "ipc");
  EXPECT_EQ(map.work.bind, "ipc:///tmp/run/ipc/work.sock");
  EXPECT_EQ(map.weights.connect, "ipc:///tmp/run/ipc/weights.sock");
  ASSERT_EQ(map.env_servers.size(), 1u);
  EXPECT_EQ(map.env_servers[0].bind, "ipc:///tmp/run/ipc/env-0.sock");
  EXPECT_EQ(map.reward_servers[0].connect, "ipc:///tmp/run/ipc/reward-0.sock");
  // Every worker shares the one env server and the one reward server.
  EXPECT_EQ(map.EnvEndpointFor(2), map.env_servers[0].connect);
  EXPECT_EQ(map.RewardEndpointFor(1), map.reward_servers[0].connect);
}

TEST(RoleMapTest, WorkersSpreadOverSeveralServers) {
  const RoleMap map = ComputeRoleMap(Roles(1, 4, 2, 0), 7, {}, "/r");
  EXPECT_EQ(map.EnvEndpointFor(0), "ipc:///r/ipc/env-0.sock");
  EXPECT_EQ(map.EnvEndpointFor(1), "ipc:///r/ipc/env-1.sock");
  EXPECT_EQ(map.EnvEndpointFor(2), "ipc:///r/ipc/env-0.sock");
  EXPECT_EQ(map.RewardEndpointFor(0), "");  // scored in the worker
}

TEST(RoleMapTest, SingleProcessRunHasOnlyALearner) {
  const RoleMap map = ComputeRoleMap(Roles(1, 0, 0, 0), 1, {}, "/r");
  ASSERT_EQ(map.ranks.size(), 1u);
  EXPECT_EQ(map.ranks[0].role, Role::kLearner);
  EXPECT_TRUE(map.env_servers.empty());
}

TEST(RoleMapTest, IpcDirFromTheConfig) {
  ClinrlConfig c = Roles(1, 1, 0, 0);
  c.distributed.ipc_dir = "/tmp/sockets";
  EXPECT_EQ(ComputeRoleMap(c, 2, {}, "/r").work.bind,
            "ipc:///tmp/sockets/work.sock");
}

TEST(RoleMapTest, SeveralHostsUseTcpWithOnePortBlockPerRank) {
  ClinrlConfig c = Roles(1, 2, 1, 0);
  c.distributed.base_port = 40000;
  const RoleMap map =
      ComputeRoleMap(c, 4, {"node-a", "node-a", "node-b", "node-b"}, "/r");
  EXPECT_EQ(map.transport, "tcp");
  EXPECT_EQ(map.work.bind, "tcp://*:40000");
  EXPECT_EQ(map.work.connect, "tcp://node-a:40000");
  EXPECT_EQ(map.weights.connect, "tcp://node-a:40001");
  // The env server is rank 1, on node-a.
  EXPECT_EQ(map.env_servers[0].connect, "tcp://node-a:40002");
  EXPECT_EQ(map.ranks[3].host, "node-b");
  EXPECT_EQ(map.ToJson()["ranks"][3]["role"], "rollout");
}

TEST(RoleMapTest, TcpOnOneNodeWhenAsked) {
  ClinrlConfig c = Roles(1, 1, 0, 0);
  c.distributed.transport = "tcp";
  EXPECT_EQ(ComputeRoleMap(c, 2, {"h", "h"}, "/r").work.connect,
            "tcp://h:29500");
}

TEST(RoleMapTest, WrongWorldSizeNamesTheRoles) {
  const std::string e =
      ErrorOf([] { ComputeRoleMap(Roles(1, 1, 1, 1), 3, {}, "/r"); });
  EXPECT_NE(e.find("the job has 3 ranks, expected 4"), std::string::npos) << e;
  EXPECT_NE(e.find("rollout_ranks 1"), std::string::npos) << e;
  EXPECT_NE(e.find("-n 4"), std::string::npos) << e;
}

TEST(RoleMapTest, ServersWithoutWorkersAreRefused) {
  const std::string e =
      ErrorOf([] { ComputeRoleMap(Roles(1, 0, 1, 0), 2, {}, "/r"); });
  EXPECT_NE(e.find("distributed.rollout_ranks: got 0"), std::string::npos) << e;
}

TEST(RoleMapTest, IpcAcrossHostsIsRefused) {
  ClinrlConfig c = Roles(1, 1, 0, 0);
  c.distributed.transport = "ipc";
  const std::string e = ErrorOf([&] {
    ComputeRoleMap(c, 2, {"a", "b"}, "/r");
  });
  EXPECT_NE(e.find("distributed.transport: got 'ipc'"), std::string::npos) << e;
}

TEST(RoleMapTest, TooLongIpcPathNamesTheField) {
  const std::string e = ErrorOf([] {
    ComputeRoleMap(Roles(1, 1, 0, 0), 2, {}, "/" + std::string(120, 'x'));
  });
  EXPECT_NE(e.find("distributed.ipc_dir"), std::string::npos) << e;
  EXPECT_NE(e.find("expected at most 107"), std::string::npos) << e;
}

TEST(RoleMapTest, PortsPastTheRangeNameBasePort) {
  ClinrlConfig c = Roles(1, 1, 0, 0);
  c.distributed.base_port = 65535;
  const std::string e = ErrorOf([&] {
    ComputeRoleMap(c, 2, {"a", "b"}, "/r");
  });
  EXPECT_NE(e.find("distributed.base_port: got 65535"), std::string::npos) << e;
}

TEST(RoleMapTest, HostListMustCoverEveryRank) {
  const std::string e =
      ErrorOf([] { ComputeRoleMap(Roles(1, 1, 0, 0), 2, {"a"}, "/r"); });
  EXPECT_NE(e.find("got 1 hostnames, expected one per rank (2)"),
            std::string::npos)
      << e;
}

TEST(RoleMapTest, RoleNamesParseAndBadOnesAreNamed) {
  EXPECT_EQ(ParseRole("env_server", "--role"), Role::kEnvServer);
  const std::string e = ErrorOf([] { ParseRole("trainer", "--role"); });
  EXPECT_NE(e.find("--role: got 'trainer', expected one of"), std::string::npos)
      << e;
  const RoleMap map = ComputeRoleMap(Roles(1, 1, 0, 0), 2, {}, "/r");
  EXPECT_NE(ErrorOf([&] { map.RankOf(Role::kRollout, 5); }).find("got 5"),
            std::string::npos);
}

}  // namespace
}  // namespace clinrl::distributed
