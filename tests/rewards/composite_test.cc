// The composite: weights and totals, every component reported, group-level
// components, and a slow and a throwing plug-in in the same composite that
// cost neither the service nor the other components.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/error.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_registry.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using Clock = std::chrono::steady_clock;
using testing::MakeDialogue;

std::atomic<int> g_slow_finished{0};

// Sleeps params.ms, then scores 1: a plug-in stuck on a slow dependency.
class SlowReward : public Reward {
 public:
  void ValidateParams(const json& params) const override {}
  ScoreResult Score(const Trajectory&, const json& params) const override {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(params.value("ms", 2000)));
    g_slow_finished++;
    return {1.0, json::object()};
  }
};

class ThrowingReward : public Reward {
 public:
  void ValidateParams(const json& params) const override {}
  ScoreResult Score(const Trajectory&, const json&) const override {
    throw std::runtime_error("scorer exploded");
  }
};

CLINRL_REGISTER_REWARD(test_slow,
                       [] { return std::make_unique<SlowReward>(); });
CLINRL_REGISTER_REWARD(test_throwing,
                       [] { return std::make_unique<ThrowingReward>(); });

Trajectory Diagnosed() {
  auto t = MakeDialogue(
      {"TEST: troponin", "DIAGNOSIS: I21.9\nDISPOSITION: emergency"}, 8);
  t.info = {{"metrics", {{"cost", 50.0}}}};
  return t;
}

TEST(CompositeReward, WeightedSumWithEveryComponentReported) {
  auto t = Diagnosed();
  t.reward_spec = {
      {"components",
       {{{"name", "dx"},
         {"plugin", "icd10"},
         {"weight", 2.0},
         {"params", {{"expected", "I21.4"}}}},  // category: 0.5
        {{"name", "cost"},
         {"plugin", "cost"},
         {"weight", 0.5},
         {"params", {{"budget", 200}}}},  // -0.25
        {{"name", "safety"},
         {"plugin", "safety"},
         {"params", {{"red_flag", true}}}}}},  // 0, weight defaults to 1
      {"success", "dx"}};
  for (int64_t timeout : {0, 5000}) {
    ScoreOptions options;
    options.timeout_ms = timeout;
    const RewardResult r = ScoreTrajectory(t, options);
    ASSERT_EQ(r.components.size(), 3u);
    EXPECT_DOUBLE_EQ(r.components.at("dx").score, 0.5);
    EXPECT_DOUBLE_EQ(r.components.at("dx").weight, 2.0);
    EXPECT_DOUBLE_EQ(r.components.at("cost").score, -0.25);
    EXPECT_DOUBLE_EQ(r.components.at("safety").score, 0.0);
    EXPECT_DOUBLE_EQ(r.total, 2.0 * 0.5 + 0.5 * -0.25 + 0.0);
    EXPECT_FALSE(IsFlagged(r));
    EXPECT_FALSE(IsSuccess(r, t.reward_spec));
  }
}

TEST(CompositeReward, MalformedSpecsGetErrorsNamingTheField) {
  auto t = Diagnosed();
  const std::vector<std::pair<json, std::string>> cases = {
      {json::object(), "reward_spec.components"},
      {{{"components", json::array()}}, "reward_spec.components"},
      {{{"components", {{{"plugin", "nope"}}}}}, "not registered"},
      {{{"components", {{{"plugin", "icd10"}, {"weight", "heavy"}}}}},
       "components[0].weight"},
      {{{"components", {{{"plugin", "icd10"}, {"params", {{"expected", 5}}}}}}},
       "params.expected"},
      {{{"components",
         {{{"plugin", "cost"}, {"params", {{"budget", 1}}}},
          {{"plugin", "cost"}, {"params", {{"budget", 2}}}}}}},
       "used twice"},
      {{{"components", {{{"plugin", "cost"}, {"params", {{"budget", 1}}}}}},
        {"success", "dx"}},
       "reward_spec.success"}};
  for (const auto& [spec, needle] : cases) {
    t.reward_spec = spec;
    try {
      ScoreTrajectory(t);
      FAIL() << "accepted " << spec.dump();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << e.what();
    }
  }
}

TEST(CompositeReward, SlowAndThrowingPluginsLoseNothingElse) {
  auto t = Diagnosed();
  t.reward_spec = {
      {"components",
       {{{"name", "dx"},
         {"plugin", "icd10"},
         {"params", {{"expected", "I21.9"}}}},
        {{"name", "slow"},
         {"plugin", "test_slow"},
         {"weight", 5.0},
         {"params", {{"ms", 3000}}}},
        {{"name", "boom"}, {"plugin", "test_throwing"}, {"weight", 5.0}},
        {{"name", "fmt"},
         {"plugin", "format"},
         {"weight", 0.5},
         {"params", {{"grammar", "dx_dialogue"}}}}}}};
  ScoreOptions options;
  options.timeout_ms = 200;
  const int finished_before = g_slow_finished.load();
  const auto start = Clock::now();
  const RewardResult r = ScoreTrajectory(t, options);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      Clock::now() - start)
                      .count();
  EXPECT_GE(ms, 190);
  EXPECT_LT(ms, 1500) << "the slow plug-in held the caller";
  EXPECT_EQ(g_slow_finished.load(), finished_before);  // it was not waited for
  ASSERT_EQ(r.components.size(), 4u);
  EXPECT_DOUBLE_EQ(r.components.at("dx").score, 1.0);
  EXPECT_DOUBLE_EQ(r.components.at("fmt").score, 1.0);
  EXPECT_EQ(r.components.at("slow").details["error"]["code"], "timeout");
  EXPECT_EQ(r.components.at("boom").details["error"]["code"], "internal");
  EXPECT_NE(r.components.at("boom")
                .details["error"]["message"]
                .get<std::string>()
                .find("scorer exploded"),
            std::string::npos);
  EXPECT_DOUBLE_EQ(r.components.at("slow").weight, 5.0);
  EXPECT_DOUBLE_EQ(r.total, 1.0 + 0.5);
  EXPECT_TRUE(IsFlagged(r));
  const json errors = ComponentErrors(r);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["component"], "boom");
  EXPECT_EQ(errors[1]["component"], "slow");

  // A component's own timeout_ms overrides the caller's.
  t.reward_spec["components"][1]["timeout_ms"] = 50;
  t.reward_spec["components"][1]["params"]["ms"] = 1000;
  options.timeout_ms = 5000;
  const auto start2 = Clock::now();
  const RewardResult r2 = ScoreTrajectory(t, options);
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                  start2)
                .count(),
            900);
  EXPECT_EQ(r2.components.at("slow").details["error"]["code"], "timeout");
}

TEST(CompositeReward, OnlyBoundedPluginsRunInline) {
  auto& registry = RewardRegistry::Global();
  for (const char* name : {"exact_match", "choice", "numeric", "icd10", "cost",
                           "length", "safety", "answer_diversity"}) {
    EXPECT_TRUE(registry.Create(name)->bounded_time(json::object())) << name;
  }
  auto format = registry.Create("format");
  EXPECT_TRUE(format->bounded_time({{"grammar", "json"}}));
  EXPECT_FALSE(format->bounded_time({{"grammar", "regex"}, {"pattern", "a+"}}));
  auto rubric = registry.Create("rubric");
  const json words = {
      {"criterion", "x"}, {"points", 1}, {"match", {{"any", {"x"}}}}};
  const json regex = {
      {"criterion", "y"}, {"points", 1}, {"match", {{"regex", {"y+"}}}}};
  EXPECT_TRUE(rubric->bounded_time({{"rubrics", {words}}}));
  EXPECT_FALSE(rubric->bounded_time({{"rubrics", {words, regex}}}));
  EXPECT_FALSE(rubric->bounded_time({{"rubrics", {words}},
                                     {"matcher", "llm_judge"},
                                     {"judge", {{"url", "http://x"}}}}));
  EXPECT_FALSE(registry.Create("test_slow")->bounded_time(json::object()));
}

TEST(CompositeReward, EveryOverrunIsCaughtWhereverItSits) {
  // The slow component first, in the middle and last, among components that
  // run under a deadline too: each call returns near the deadline.
  for (int position = 0; position < 3; ++position) {
    auto t = Diagnosed();
    json components = json::array();
    for (int k = 0; k < 3; ++k) {
      if (k == position) {
        components.push_back({{"name", "slow"},
                              {"plugin", "test_slow"},
                              {"timeout_ms", 40},
                              {"params", {{"ms", 600}}}});
      } else {
        components.push_back({{"name", "boom" + std::to_string(k)},
                              {"plugin", "test_throwing"},
                              {"timeout_ms", 40}});
      }
    }
    components.push_back({{"name", "dx"},
                          {"plugin", "icd10"},
                          {"params", {{"expected", "I21.9"}}}});
    t.reward_spec = {{"components", components}};
    const auto start = Clock::now();
    const RewardResult r = ScoreTrajectory(t);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        Clock::now() - start)
                        .count();
    EXPECT_LT(ms, 400) << "slow component at position " << position;
    EXPECT_EQ(r.components.at("slow").details["error"]["code"], "timeout");
    EXPECT_EQ(ComponentErrors(r).size(), 3u);
    EXPECT_DOUBLE_EQ(r.components.at("dx").score, 1.0);
  }
}

TEST(CompositeReward, DeterministicAcrossCalls) {
  auto t = Diagnosed();
  t.reward_spec = {
      {"components",
       {{{"name", "dx"},
         {"plugin", "icd10"},
         {"params", {{"expected", "I21.4"}}}},
        {{"name", "len"},
         {"plugin", "length"},
         {"params", {{"max_tokens", 20}, {"buffer_tokens", 8}}}}}}};
  const RewardResult a = ScoreTrajectory(t);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ScoreTrajectory(t), a);
  // 2 policy turns x 8 tokens = 16; soft limit 12: -(16 - 12) / 8 = -0.5.
  EXPECT_DOUBLE_EQ(a.components.at("len").score, -0.5);
}

TEST(CompositeReward, GroupLevelComponentsSeeTheWholeGroup) {
  const json spec = {{"components",
                      {{{"name", "dx"},
                        {"plugin", "icd10"},
                        {"params", {{"expected", "I21.9"}}}},
                       {{"name", "diverse"},
                        {"plugin", "answer_diversity"},
                        {"weight", 0.1}}}}};
  std::vector<Trajectory> group;
  for (const char* dx : {"I21.9", "I21.9", "I21.4", "J18.9"}) {
    auto t = MakeDialogue({std::string("DIAGNOSIS: ") + dx});
    t.reward_spec = spec;
    group.push_back(t);
  }
  const auto results = ScoreGroup(group);
  ASSERT_EQ(results.size(), 4u);
  const double dx[] = {1.0, 1.0, 0.5, 0.0};
  const double diverse[] = {0.5, 0.5, 1.0, 1.0};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_DOUBLE_EQ(results[i].components.at("dx").score, dx[i]) << i;
    EXPECT_DOUBLE_EQ(results[i].components.at("diverse").score, diverse[i])
        << i;
    EXPECT_DOUBLE_EQ(results[i].total, dx[i] + 0.1 * diverse[i]) << i;
  }
  // Alone, a member is its own group of one.
  EXPECT_DOUBLE_EQ(ScoreTrajectory(group[0]).components.at("diverse").score,
                   1.0);
  // Members must share the component list.
  group[2].reward_spec = {{"components",
                           {{{"name", "x"},
                             {"plugin", "format"},
                             {"params", {{"grammar", "json"}}}}}}};
  EXPECT_THROW(ScoreGroup(group), BadRequest);
}

}  // namespace
}  // namespace clinrl::rewards
