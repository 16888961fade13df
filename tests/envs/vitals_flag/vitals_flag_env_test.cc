// The vitals_flag env: every task has exactly one vital outside the adult
// reference ranges (read here from what CHECK shows, with the textbook
// ranges, not the env's generator), and its reward spec, scored by the real
// plug-ins, agrees with the env's own metrics.
#include "envs/vitals_flag/vitals_flag_env.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "core/error.h"
#include "envs/scripted_episode.h"
#include "rewards/composite_reward.h"

namespace clinrl::envs {
namespace {

// Adult reference ranges: HR 60-100 /min, BP 90-140 / 60-90 mmHg, RR 12-20
// /min, SpO2 >= 94 %, temperature 36.0-38.0 C.
bool Abnormal(const std::string& vital, const std::string& shown) {
  double a = 0, b = 0;
  if (vital == "blood_pressure") {
    EXPECT_EQ(std::sscanf(shown.c_str(), "%lf/%lf", &a, &b), 2) << shown;
    return a < 90 || a > 140 || b < 60 || b > 90;
  }
  EXPECT_EQ(std::sscanf(shown.c_str(), "%lf", &a), 1) << shown;
  if (vital == "heart_rate") return a < 60 || a > 100;
  if (vital == "resp_rate") return a < 12 || a > 20;
  if (vital == "spo2") return a < 94;
  return a < 36.0 || a > 38.0;
}

// Checks every vital in order, then names the one outside its range.
class CheckAllPolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation& transcript, const json&) override {
    const std::string& last = transcript.back().content;
    const size_t colon = last.find(": ");
    if (next_ > 0 && colon != std::string::npos) {
      shown_[last.substr(0, colon)] = last.substr(colon + 2);
    }
    if (next_ < VitalsFlagEnv::kVitals.size()) {
      return std::string("CHECK ") + VitalsFlagEnv::kVitals[next_++];
    }
    std::string answer = "none";
    for (const auto& [vital, value] : shown_) {
      if (Abnormal(vital, value)) {
        ++abnormal_;
        answer = vital;
      }
    }
    return "ANSWER: " + answer;
  }
  int abnormal_ = 0;
  std::map<std::string, std::string> shown_;

 private:
  size_t next_ = 0;
};

TEST(VitalsFlagEnv, EveryTaskHasExactlyOneAbnormalVitalAndScoresAsTheEnvSays) {
  auto env = VitalsFlagEnv::Create(json::object());
  std::map<std::string, int> abnormal_counts;
  for (const auto& [split, count] : env->Spec().splits) {
    for (int64_t i = 0; i < count; ++i) {
      CheckAllPolicy policy;
      ScriptedEpisodeRequest request;
      request.env_name = "vitals_flag";
      request.split = split;
      request.task_index = i;
      const Trajectory t = PlayScriptedEpisode(*env, policy, request);
      ASSERT_EQ(policy.shown_.size(), 5u) << split << " " << i;
      ASSERT_EQ(policy.abnormal_, 1) << split << " " << i;
      ++abnormal_counts[t.info["answer"].get<std::string>()];
      EXPECT_EQ(t.termination, Termination::kFinished);
      EXPECT_EQ(t.info["metrics"]["correct"], 1.0) << split << " " << i;
      EXPECT_EQ(t.info["metrics"]["cost"], 5.0);
      // flag 1, cost -min(5 / 5, 1) at weight 0.1.
      const RewardResult reward = rewards::ScoreTrajectory(t);
      EXPECT_NEAR(reward.total, 0.9, 1e-12) << split << " " << i;
      EXPECT_TRUE(rewards::IsSuccess(reward, t.reward_spec));
    }
  }
  // No vital is left out of the 112 tasks.
  ASSERT_EQ(abnormal_counts.size(), 5u);
  for (const auto& [vital, n] : abnormal_counts) EXPECT_GE(n, 5) << vital;
}

TEST(VitalsFlagEnv, NamesAreForgivingAndAnythingElseIsAnInvalidAction) {
  auto env = VitalsFlagEnv::Create(json::object());
  ResetRequest request;
  request.split = "validation";
  request.task_index = 3;
  env->Reset(request);
  StepResult s = env->Step("hello");
  EXPECT_EQ(s.info["invalid_actions"], 1);
  EXPECT_EQ(s.observation[0].content.rfind("Invalid action 'hello'", 0), 0u);
  s = env->Step("CHECK pulse");
  EXPECT_EQ(s.info["invalid_actions"], 2);
  EXPECT_EQ(s.info["cost"], 0);
  s = env->Step("  check: Heart Rate ");
  EXPECT_EQ(s.info["invalid_actions"], 2);
  EXPECT_EQ(s.info["cost"], 1);
  EXPECT_EQ(s.observation[0].content.rfind("heart_rate: ", 0), 0u);
  s = env->Step("ANSWER: nothing");
  EXPECT_EQ(s.info["invalid_actions"], 3);
  EXPECT_FALSE(s.terminated || s.truncated);
  s = env->Step("answer: SPO2.");
  EXPECT_TRUE(s.terminated);
  EXPECT_EQ(s.info["answer"], "spo2");
  EXPECT_THROW(env->Step("CHECK spo2"), BadRequest);
}

TEST(VitalsFlagEnv, TurnLimitEndsWithoutAnAnswerAndKeepsTheCost) {
  auto env = VitalsFlagEnv::Create({{"max_turns", 2}});
  ResetResult reset = env->Reset({});
  env->Step("CHECK spo2");
  const StepResult last = env->Step("CHECK temperature");
  EXPECT_TRUE(last.truncated);
  EXPECT_FALSE(last.terminated);
  EXPECT_EQ(last.info["metrics"]["correct"], 0.0);
  EXPECT_EQ(last.info["metrics"]["cost"], 2.0);
  EXPECT_FALSE(last.info.contains("answer"));
  Trajectory t;
  t.env = "vitals_flag";
  t.reward_spec = reset.info["reward_spec"];
  t.info = last.info;
  // No answer scores 0; the two checks cost 0.1 * 2 / 5.
  EXPECT_NEAR(rewards::ScoreTrajectory(t).total, -0.04, 1e-12);
}

TEST(VitalsFlagEnv, MisspeltOptionIsRefusedNamingTheKey) {
  try {
    VitalsFlagEnv::Create({{"max_turn", 3}}, "envs.0.options");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("envs.0.options.max_turn"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::envs
