// The env's reward spec, scored by the reward plug-ins it names: the spec
// must validate, and an oracle episode must score as the env's own metrics
// say.
#include <gtest/gtest.h>

#include "core/trajectory.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"
#include "rewards/reward_registry.h"

namespace clinrl::envs {
namespace {

TEST(DxDialogueRewardTest, OracleEpisodesScoreAsTheEnvSays) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  int64_t checked_red_flags = 0;
  for (int64_t i = 0; i < 30; ++i) {
    ResetRequest r;
    r.split = "test";
    r.task_index = i;
    const ResetResult reset = env->Reset(r);
    auto policy =
        ScriptedPolicyRegistry::Global().Create("dx_dialogue", "oracle", i);
    Trajectory t;
    t.env = "dx_dialogue";
    t.reward_spec = reset.info["reward_spec"];
    Observation transcript = reset.observation;
    for (const auto& m : reset.observation)
      t.turns.push_back({m.role, m.content, {}, {}});
    json info = reset.info;
    for (int turn = 0; turn < 20; ++turn) {
      json public_info = info;
      public_info.erase("reward_spec");
      const std::string action = policy->Act(transcript, public_info);
      transcript.push_back({"assistant", action});
      t.turns.push_back({"assistant", action, {}, {}});
      const StepResult s = env->Step(action);
      for (const auto& m : s.observation) {
        transcript.push_back(m);
        t.turns.push_back({m.role, m.content, {}, {}});
      }
      info = s.info;
      if (s.terminated || s.truncated) break;
    }
    t.info = info;
    const json& metrics = info["metrics"];
    for (const auto& c : t.reward_spec["components"]) {
      auto reward = rewards::RewardRegistry::Global().Create(c["plugin"]);
      ASSERT_NO_THROW(reward->ValidateParams(c["params"])) << c.dump();
      const auto score = reward->Score(t, c["params"]);
      if (c["name"] == "diagnosis") {
        EXPECT_EQ(score.score, metrics["correct"].get<double>()) << i;
      } else if (c["name"] == "cost") {
        EXPECT_DOUBLE_EQ(score.score,
                         -std::min(metrics["cost"].get<double>() /
                                       c["params"]["budget"].get<double>(),
                                   1.0));
      } else if (c["name"] == "format") {
        EXPECT_EQ(score.score, 1.0);
      } else if (c["name"] == "safety" && t.reward_spec["red_flag"] == true) {
        ++checked_red_flags;
        const bool urgent = info["disposition"] == "emergency";
        EXPECT_EQ(score.score, urgent ? 0.0 : -1.0);
      }
    }
  }
  EXPECT_GT(checked_red_flags, 0);
}

// A ranked episode's diagnosis components (numeric top-k hits on
// info.differential.rank) sum to 1 / rank: worked by hand, weights 1/2, 1/6,
// 1/12, 1/20 and 1/5 for max_differential 5.
double DiagnosisScore(int64_t truth_position, int64_t list_length) {
  auto env = EnvRegistry::Global().Create("dx_dialogue",
                                          {{"diagnosis_format", "ranked"}});
  ResetRequest r;
  r.split = "test";
  r.task_index = 3;
  const ResetResult reset = env->Reset(r);
  const std::string truth = reset.info["reward_spec"]["condition"];
  std::vector<std::string> others;
  for (const char* name : {"influenza", "migraine", "gout flare", "sciatica",
                           "acute appendicitis", "hypothyroidism"}) {
    if (name != truth) others.push_back(name);
  }
  std::string line = "DIAGNOSIS:";
  for (int64_t i = 1; i <= list_length; ++i) {
    const std::string item =
        i == truth_position ? truth : others[static_cast<size_t>(i - 1)];
    line += fmt::format("{} {}. {}", i > 1 ? ";" : "", i, item);
  }
  const StepResult s = env->Step(line);
  EXPECT_TRUE(s.terminated) << line << ": " << s.observation[0].content;
  Trajectory t;
  t.env = "dx_dialogue";
  t.reward_spec = s.info["reward_spec"];
  t.info = s.info;
  t.turns = {{"assistant", line, {}, {}}};
  double total = 0;
  for (const auto& c : t.reward_spec["components"]) {
    const std::string name = c["name"];
    if (name.rfind("diagnosis_top", 0) != 0) continue;
    auto reward = rewards::RewardRegistry::Global().Create(c["plugin"]);
    reward->ValidateParams(c["params"]);
    total += c["weight"].get<double>() * reward->Score(t, c["params"]).score;
  }
  EXPECT_DOUBLE_EQ(total, s.info["metrics"]["reciprocal_rank"].get<double>());
  return total;
}

TEST(DxDialogueRewardTest, RankedDifferentialScoresOneOverRank) {
  EXPECT_NEAR(DiagnosisScore(1, 3), 1.0, 1e-12);
  EXPECT_NEAR(DiagnosisScore(2, 3), 0.5, 1e-12);
  EXPECT_NEAR(DiagnosisScore(3, 3), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(DiagnosisScore(5, 5), 0.2, 1e-12);
  EXPECT_NEAR(DiagnosisScore(0, 4), 0.0, 1e-12);
}

// Cut short before any list: no component reads a number from the text.
TEST(DxDialogueRewardTest, TruncatedRankedEpisodeScoresNoDiagnosis) {
  auto env = EnvRegistry::Global().Create("dx_dialogue",
                                          {{"diagnosis_format", "ranked"}});
  ResetRequest r;
  r.split = "test";
  env->Reset(r);
  env->Step("TEST: 1 2 3");
  const StepResult cut = env->Truncate();
  Trajectory t;
  t.reward_spec = cut.info["reward_spec"];
  t.info = cut.info;
  t.turns = {{"assistant", "TEST: 1 2 3", {}, {}}};
  for (const auto& c : t.reward_spec["components"]) {
    if (c["plugin"] != "numeric") continue;
    auto reward = rewards::RewardRegistry::Global().Create("numeric");
    EXPECT_EQ(reward->Score(t, c["params"]).score, 0.0) << c.dump();
  }
}

TEST(DxDialogueRewardTest, RankedSpecNamesTopKComponents) {
  auto env = EnvRegistry::Global().Create(
      "dx_dialogue", {{"diagnosis_format", "ranked"}, {"max_differential", 3}});
  ResetRequest r;
  r.split = "test";
  const json spec = env->Reset(r).info["reward_spec"];
  EXPECT_EQ(spec["success"], "diagnosis_top1");
  const json& c = spec["components"];
  ASSERT_EQ(c.size(), 6u);  // 3 top-k, cost, safety, format
  EXPECT_EQ(c[0]["name"], "diagnosis_top1");
  EXPECT_DOUBLE_EQ(c[0]["weight"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(c[1]["weight"].get<double>(), 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(c[2]["weight"].get<double>(), 1.0 / 3.0);
  EXPECT_EQ(c[2]["params"]["abs_tol"], 2);
  EXPECT_EQ(c[3]["name"], "cost");
}

}  // namespace
}  // namespace clinrl::envs
