#include "envs/echo/echo_env.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs {
namespace {

TEST(EchoEnv, RightWordEndsTheEpisodeWithReward) {
  auto env = EchoEnv::Create({{"max_turns", 3}});
  ResetRequest req;
  req.split = "test";
  req.task_index = 2;
  ResetResult reset = env->Reset(req);
  ASSERT_EQ(reset.observation.size(), 2u);
  // Test split words are shifted by 4 from train: kWords[6] is "edema".
  EXPECT_EQ(reset.observation[1].content, "Say the word: edema-2");
  StepResult wrong = env->Step("cough");
  EXPECT_EQ(wrong.observation[0].content, "cough");
  EXPECT_FALSE(wrong.terminated || wrong.truncated);
  StepResult right = env->Step("edema-2");
  EXPECT_TRUE(right.terminated);
  EXPECT_DOUBLE_EQ(right.reward, 1.0);
  EXPECT_EQ(right.info["metrics"]["correct"], 1.0);
}

TEST(EchoEnv, TruncatesAtMaxTurnsAndCountsInvalidActions) {
  auto env = EchoEnv::Create({{"max_turns", 2}});
  env->Reset({});
  StepResult a = env->Step("  ");
  EXPECT_EQ(a.info["invalid_actions"], 1);
  StepResult b = env->Step("nope");
  EXPECT_TRUE(b.truncated);
  EXPECT_FALSE(b.terminated);
  EXPECT_EQ(b.info["metrics"]["correct"], 0.0);
  EXPECT_THROW(env->Step("more"), BadRequest);
}

TEST(EchoEnv, SeedPicksTheTaskDeterministically) {
  auto env = EchoEnv::Create({});
  ResetRequest req;
  req.seed = 99;
  const auto first = env->Reset(req).observation;
  EXPECT_EQ(env->Reset(req).observation, first);
  req.seed = 100;
  EXPECT_NE(env->Reset(req).observation, first);
}

TEST(EchoEnv, RejectsBadOptionsAndSplits) {
  EXPECT_THROW(EchoEnv::Create({{"max_turns", 0}}), ConfigError);
  EXPECT_THROW(EchoEnv::Create({{"colour", 1}}), ConfigError);
  auto env = EchoEnv::Create({});
  ResetRequest req;
  req.split = "validation";
  EXPECT_THROW(env->Reset(req), BadRequest);
}

TEST(EchoEnv, MisspeltOptionNamesItsPathAndTheClosestKey) {
  try {
    EchoEnv::Create({{"max_turn", 3}}, "envs.0.options");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "envs.0.options.max_turn: unknown key (did you mean "
                 "'max_turns'?); known keys here: max_turns");
  }
  try {
    EchoEnv::Create({{"max_turns", "3"}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "options.max_turns: expected integer, got string \"3\"");
  }
}

TEST(EchoEnv, ResetRefusesEveryOptionNamingIt) {
  auto env = EchoEnv::Create({});
  ResetRequest req;
  req.options = {{"max_turns", 2}};
  try {
    env->Reset(req);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "options.max_turns: unknown key; no options are accepted "
                 "here");
  }
  req.options = json::object();
  EXPECT_EQ(env->Reset(req).observation.size(), 2u);
}

TEST(EchoEnv, PoliciesRefuseOptionsAndUnknownNamesListTheKnownOnes) {
  try {
    ScriptedPolicyRegistry::Global().Create("echo", "oracle", 0,
                                            {{"epsilon", 0.1}});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "policy_options.epsilon: unknown key; no options are "
                 "accepted here");
  }
  EXPECT_THROW(ScriptedPolicyRegistry::Global().Create("echo", "random", 0,
                                                       {{"seed", 1}}),
               ConfigError);
  try {
    ScriptedPolicyRegistry::Global().Create("echo", "oracel", 0);
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_STREQ(e.what(),
                 "--policy 'oracel': no such scripted policy for env 'echo'; "
                 "available: oracle, random");
  }
  try {
    ScriptedPolicyRegistry::Global().Create("no_such_env", "oracle", 0);
    FAIL() << "expected NotFound";
  } catch (const NotFound& e) {
    EXPECT_STREQ(e.what(),
                 "--policy 'oracle': no such scripted policy for env "
                 "'no_such_env'; available: (none)");
  }
  EXPECT_EQ(ScriptedPolicyRegistry::Global().PoliciesFor("echo"),
            (std::vector<std::string>{"oracle", "random"}));
  EXPECT_TRUE(ScriptedPolicyRegistry::Global().PoliciesFor("nope").empty());
}

TEST(EchoEnv, OraclePolicySolvesEveryTask) {
  auto env = EchoEnv::Create({});
  for (int64_t i = 0; i < 20; ++i) {
    auto policy = ScriptedPolicyRegistry::Global().Create("echo", "oracle", i);
    ResetRequest req;
    req.task_index = i;
    ResetResult r = env->Reset(req);
    StepResult s = env->Step(policy->Act(r.observation, r.info));
    EXPECT_TRUE(s.terminated) << i;
  }
}

}  // namespace
}  // namespace clinrl::envs
