#include "envs/env_pool.h"

#include <gtest/gtest.h>

#include <thread>

#include "envs/remote_env.h"
#include "tests/envs/test_envs.h"

namespace clinrl::envs {
namespace {

EnvPoolOptions EchoPool() {
  EnvPoolOptions o;
  o.service.envs = {"echo"};
  o.service.registry = &testing::TestRegistry();
  o.service.env_options["echo"] = {{"max_turns", 4}};
  return o;
}

TEST(EnvPool, ServesThroughTheSameClientApi) {
  EnvPool pool(EchoPool());
  EXPECT_EQ(pool.endpoint().rfind("inproc://", 0), 0u);
  EnvClient& client = pool.client();
  EXPECT_EQ(client.Spec("echo").max_turns, 4);
  ResetResult reset;
  ResetRequest req;
  req.task_index = 5;
  const std::string s = client.Reset("echo", req, &reset);
  EXPECT_EQ(reset.observation.at(1).content,
            "Say the word: " + EchoEnv::WordFor("train", 5));
  EXPECT_TRUE(client.Step(s, EchoEnv::WordFor("train", 5)).terminated);
  client.Close(s);
  EXPECT_EQ(client.Health()["sessions"], 0);
}

TEST(EnvPool, ClientsOnSeveralThreadsShareOnePool) {
  EnvPool pool(EchoPool());
  std::vector<std::thread> threads;
  std::atomic<int> finished{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, &finished, t] {
      auto client = pool.NewClient();
      for (int e = 0; e < 10; ++e) {
        const std::string s = client->Reset("echo", {}, nullptr);
        StepResult r;
        while (!r.terminated && !r.truncated)
          r = client->Step(s, "t" + std::to_string(t));
        client->Close(s);
        ++finished;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(finished.load(), 40);
  // Each episode: reset, 4 steps, close; plus this health request.
  EXPECT_EQ(pool.client().Health()["requests"].get<int64_t>(), 40 * 6 + 1);
}

TEST(RemoteEnv, PlaysTheEnvInterfaceOverTheProtocol) {
  EnvPool pool(EchoPool());
  RemoteEnv remote(pool.endpoint(), "echo", 5000);
  EXPECT_EQ(remote.Spec().name, "echo");
  ResetRequest req;
  req.task_index = 1;
  remote.Reset(req);
  const std::string first = remote.session();
  remote.Reset(req);
  EXPECT_EQ(remote.session(), first) << "reset reuses the session";
  EXPECT_EQ(remote.Step("x").observation.at(0).content, "x");
  EXPECT_EQ(pool.client().Health()["sessions"], 1);
}

}  // namespace
}  // namespace clinrl::envs
