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

}  // namespace
}  // namespace clinrl::envs
