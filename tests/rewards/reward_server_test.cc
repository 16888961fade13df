// The reward service over real sockets (inproc, ipc under a temp dir, tcp on
// 127.0.0.1): scoring, groups, pipelined requests, bad messages that get
// error replies and leave the server serving, and a slow plus a throwing
// plug-in that come back in time with the other components intact.
#include "rewards/reward_server.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/error.h"
#include "rewards/reward_client.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_wire.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using Clock = std::chrono::steady_clock;

class SleepyReward : public Reward {
 public:
  void ValidateParams(const json&) const override {}
  ScoreResult Score(const Trajectory&, const json& params) const override {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(params.value("ms", 2000)));
    return {1.0, json::object()};
  }
};
class FailingReward : public Reward {
 public:
  void ValidateParams(const json&) const override {}
  ScoreResult Score(const Trajectory&, const json&) const override {
    throw std::logic_error("bad plug-in");
  }
};
CLINRL_REGISTER_REWARD(server_test_sleepy,
                       [] { return std::make_unique<SleepyReward>(); });
CLINRL_REGISTER_REWARD(server_test_failing,
                       [] { return std::make_unique<FailingReward>(); });

Trajectory Scored(const std::string& dx) {
  auto t = testing::MakeDialogue({"TEST: ecg", "DIAGNOSIS: " + dx});
  t.info = {{"metrics", {{"cost", 20}}}};
  t.reward_spec = {{"components",
                    {{{"name", "dx"},
                      {"plugin", "icd10"},
                      {"params", {{"expected", "I21.9"}}}},
                     {{"name", "cost"},
                      {"plugin", "cost"},
                      {"weight", 0.5},
                      {"params", {{"budget", 100}}}}}},
                   {"success", "dx"}};
  return t;
}

std::string TempIpcEndpoint() {
  const std::string dir = testing::MakeTempDir("clinrl-reward-test");
  EXPECT_FALSE(dir.empty());
  return "ipc://" + dir + "/reward.sock";
}

class RewardServerTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Endpoint() {
    if (GetParam() == "tcp") return "tcp://127.0.0.1:0";
    if (GetParam() == "ipc") return TempIpcEndpoint();
    return "inproc://reward-server-test-" + std::to_string(counter_++);
  }
  static inline int counter_ = 0;
};

TEST_P(RewardServerTest, ScoresPipelinedRequestsAndSurvivesBadMessages) {
  RewardServer server({Endpoint(), 2, 2000});
  RewardClient client({server.endpoint(), 10000});

  const RewardResult one = client.Score(Scored("I21.9"));
  EXPECT_DOUBLE_EQ(one.components.at("dx").score, 1.0);
  EXPECT_DOUBLE_EQ(one.total, 1.0 + 0.5 * -0.2);

  // Bad messages: each gets an error reply naming the problem.
  const uint64_t not_json = client.SubmitRaw("{not json");
  const uint64_t no_op = client.SubmitRaw(R"({"trajectory": {}})");
  const uint64_t bad_op = client.SubmitRaw(R"({"op": "grade"})");
  auto bad_traj = ToJson(Scored("I21.9"));
  bad_traj["turns"] = "many";
  const uint64_t bad_trajectory =
      client.SubmitRaw(json{{"op", "score"}, {"trajectory", bad_traj}}.dump());
  auto bad_spec = Scored("I21.9");
  bad_spec.reward_spec["components"][0]["params"]["expected"] = 42;
  const uint64_t bad_params = client.SubmitScore(bad_spec);
  std::map<uint64_t, std::string> expect = {
      {not_json, "not valid JSON"},
      {no_op, "request.op"},
      {bad_op, "\"grade\""},
      {bad_trajectory, "trajectory.turns"},
      {bad_params, "params.expected"}};
  size_t seen = 0;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (seen < expect.size() && Clock::now() < deadline) {
    for (const auto& reply : client.Collect(1, 1000)) {
      ASSERT_TRUE(expect.count(reply.request_id)) << reply.request_id;
      EXPECT_FALSE(reply.ok);
      EXPECT_EQ(reply.error_code, "bad_request") << reply.error_message;
      EXPECT_NE(reply.error_message.find(expect[reply.request_id]),
                std::string::npos)
          << reply.error_message;
      ++seen;
    }
  }
  EXPECT_EQ(seen, expect.size());

  // Still serving: 64 pipelined requests all come back, each matched to its
  // own trajectory.
  std::map<uint64_t, double> want;
  const char* codes[] = {"I21.9", "I21.4", "J18.9"};
  for (int i = 0; i < 64; ++i) {
    want[client.SubmitScore(Scored(codes[i % 3]))] = i % 3 == 0   ? 1.0
                                                     : i % 3 == 1 ? 0.5
                                                                  : 0.0;
  }
  size_t got = 0;
  while (got < want.size()) {
    auto replies = client.Collect(want.size() - got, 10000);
    ASSERT_FALSE(replies.empty()) << "replies stopped after " << got;
    for (const auto& reply : replies) {
      ASSERT_TRUE(reply.ok) << reply.error_message;
      ASSERT_EQ(reply.results.size(), 1u);
      EXPECT_DOUBLE_EQ(reply.results[0].components.at("dx").score,
                       want.at(reply.request_id));
      ++got;
    }
  }
  const json health = client.Health();
  EXPECT_EQ(health["scored"], 1 + 64);
  EXPECT_EQ(health["errors"], 5);
  EXPECT_GT(health["uptime_s"].get<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Transports, RewardServerTest,
                         ::testing::Values("inproc", "ipc", "tcp"));

TEST(RewardServer, SlowAndThrowingPluginsReturnInTimeWithOtherComponents) {
  RewardServer server({"inproc://reward-server-slow", 2, 150});
  RewardClient client({server.endpoint(), 5000});
  auto t = Scored("I21.9");
  t.reward_spec["components"].push_back({{"name", "sleepy"},
                                         {"plugin", "server_test_sleepy"},
                                         {"params", {{"ms", 3000}}}});
  t.reward_spec["components"].push_back(
      {{"name", "failing"}, {"plugin", "server_test_failing"}});
  const auto start = Clock::now();
  // Four at once on two workers: each holds its worker ~150 ms, not 3 s.
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(client.SubmitScore(t));
  std::vector<RewardReply> replies;
  while (replies.size() < ids.size()) {
    auto batch = client.Collect(ids.size() - replies.size(), 5000);
    ASSERT_FALSE(batch.empty());
    for (auto& r : batch) replies.push_back(std::move(r));
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      Clock::now() - start)
                      .count();
  EXPECT_LT(ms, 1500);
  for (const auto& reply : replies) {
    ASSERT_TRUE(reply.ok) << reply.error_message;
    ASSERT_EQ(reply.results.size(), 1u);
    const RewardResult& r = reply.results[0];
    EXPECT_TRUE(reply.flagged[0]);
    EXPECT_EQ(r.components.size(), 4u);
    EXPECT_DOUBLE_EQ(r.components.at("dx").score, 1.0);
    EXPECT_DOUBLE_EQ(r.components.at("cost").score, -0.2);
    EXPECT_EQ(r.components.at("sleepy").details["error"]["code"], "timeout");
    EXPECT_EQ(r.components.at("failing").details["error"]["code"], "internal");
    EXPECT_EQ(reply.body["errors"].size(), 2u);
    EXPECT_DOUBLE_EQ(r.total, 1.0 - 0.1);
  }
  EXPECT_EQ(client.Health()["flagged"], 4);
}

TEST(RewardServer, GroupsAndClientTimeouts) {
  RewardServer server({"inproc://reward-server-group", 1, 5000});
  RewardClient client({server.endpoint(), 10000});
  std::vector<Trajectory> group = {Scored("I21.9"), Scored("I21.0"),
                                   Scored("A00")};
  const auto results = client.ScoreGroup(group);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_DOUBLE_EQ(results[0].components.at("dx").score, 1.0);
  EXPECT_DOUBLE_EQ(results[1].components.at("dx").score, 0.5);
  EXPECT_DOUBLE_EQ(results[2].components.at("dx").score, 0.0);

  // A client whose deadline is shorter than the plug-in's run gets a
  // timeout reply of its own, and the late answer is dropped.
  RewardClient impatient({server.endpoint(), 100});
  auto slow = Scored("I21.9");
  slow.reward_spec["components"].push_back({{"name", "sleepy"},
                                            {"plugin", "server_test_sleepy"},
                                            {"params", {{"ms", 400}}}});
  EXPECT_THROW(impatient.Score(slow), Timeout);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(impatient.Collect(0, 0).empty());
}

TEST(RewardServer, BadEndpointsAreRefused) {
  EXPECT_THROW(RewardServer({"http://x", 1, 100}), BadRequest);
  EXPECT_THROW(RewardServer({"inproc://reward-ok", 0, 100}), BadRequest);
  RewardServer first({"inproc://reward-taken", 1, 100});
  EXPECT_THROW(RewardServer({"inproc://reward-taken", 1, 100}), IoError);
  EXPECT_THROW(RewardClient({"udp://x", 100}), BadRequest);
}

TEST(RewardWire, EncodedRequestReadsBackAsTheSameTrajectory) {
  Trajectory t = Scored("I21.9");
  t.policy_version = 7;
  t.seed = -3;
  t.turns[1].content =
      "quote \" backslash \\ tab \t newline \n bell \x07 caf\u00e9";
  t.turns[2].logprobs = {-0.1f, -1e-7f, -12.375f, 0.0f};
  t.turns[2].token_ids = {0, 151643, 7, 1};
  t.step_rewards = {0.25, -1.0 / 3.0};
  t.reward.total = 0.1;
  t.reward.components["dx"] = {1.0 / 3.0, 2.0, {{"why", "x"}}};
  t.timings = {{"generate_s", 1.5e-3}, {"env_s", 2.0}};
  t.termination = Termination::kMaxTurns;
  const json parsed = json::parse(EncodeScoreRequest(t));
  EXPECT_EQ(parsed["op"], "score");
  EXPECT_EQ(TrajectoryFromJson(parsed["trajectory"]), t);
  // The same document the DOM writer produces (floats compared as floats).
  EXPECT_EQ(TrajectoryFromJson(json::parse(ToJson(t).dump())),
            TrajectoryFromJson(parsed["trajectory"]));
}

TEST(RewardWire, ResultRoundTrip) {
  RewardResult r;
  r.total = 1.25;
  r.components["a"] = {0.5, 2.0, {{"x", 1}}};
  r.components["b"] = {
      0.0, 1.0, {{"error", {{"code", "timeout"}, {"message", "m"}}}}};
  const json j = RewardResultToJson(r);
  EXPECT_EQ(j["flagged"], true);
  EXPECT_EQ(RewardResultFromJson(json::parse(j.dump()), "reply"), r);
  EXPECT_THROW(RewardResultFromJson({{"total", "x"}}, "reply"), BadRequest);
}

}  // namespace
}  // namespace clinrl::rewards
