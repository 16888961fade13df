#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "core/error.h"
#include "envs/dx_dialogue/oracle_policy.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::dx {
namespace {

// What a policy may see: the answer key is removed, so a policy that read it
// would fail rather than look good.
json PublicInfo(json info) {
  info.erase("reward_spec");
  info.erase("answer");
  return info;
}

struct EpisodeResult {
  json final_info;
  int64_t turns = 0;
};

EpisodeResult Play(Env& env, ScriptedPolicy& policy, const std::string& split,
                   int64_t index) {
  ResetRequest r;
  r.split = split;
  r.task_index = index;
  const ResetResult reset = env.Reset(r);
  Observation transcript = reset.observation;
  json info = reset.info;
  for (int64_t turn = 0; turn < 64; ++turn) {
    const std::string action = policy.Act(transcript, PublicInfo(info));
    transcript.push_back({"assistant", action});
    const StepResult s = env.Step(action);
    for (const auto& m : s.observation) transcript.push_back(m);
    info = s.info;
    if (s.terminated || s.truncated) return {info, turn + 1};
  }
  ADD_FAILURE() << "episode did not end";
  return {};
}

struct Summary {
  double accuracy = 0, turns = 0, cost = 0, disposition = 0, invalid = 0;
};

Summary Evaluate(const std::string& policy_name, const json& options,
                 int64_t episodes) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  Summary s;
  for (int64_t i = 0; i < episodes; ++i) {
    auto policy = ScriptedPolicyRegistry::Global().Create(
        "dx_dialogue", policy_name, static_cast<uint64_t>(i), options);
    const EpisodeResult e = Play(*env, *policy, "test", i);
    const json& m = e.final_info["metrics"];
    s.accuracy += m["correct"].get<double>();
    s.turns += m["turns"].get<double>();
    s.cost += m["cost"].get<double>();
    s.disposition += m["disposition_correct"].get<double>();
    s.invalid += m["invalid_actions"].get<double>();
  }
  for (double* x :
       {&s.accuracy, &s.turns, &s.cost, &s.disposition, &s.invalid}) {
    *x /= static_cast<double>(episodes);
  }
  std::cout << policy_name << " " << options.dump() << " on " << episodes
            << " test cases: accuracy " << s.accuracy << ", mean turns "
            << s.turns << ", mean cost " << s.cost << ", disposition "
            << s.disposition << "\n";
  return s;
}

TEST(DxPoliciesTest, OracleIsFarAboveRandomOnTheTestSplit) {
  const int64_t n =
      EnvRegistry::Global().Create("dx_dialogue")->Spec().splits.at("test");
  const Summary oracle = Evaluate("oracle", json::object(), n);
  const Summary random = Evaluate("random", json::object(), n);
  EXPECT_GE(oracle.accuracy, 0.75);
  EXPECT_LE(random.accuracy, 0.10);
  EXPECT_GE(oracle.accuracy - random.accuracy, 0.6);
  EXPECT_EQ(oracle.invalid, 0.0);  // the oracle writes the grammar exactly
  EXPECT_LE(oracle.turns, 10.0);
  EXPECT_GE(oracle.disposition, 0.7);
}

TEST(DxPoliciesTest, NoisyOracleIsWorseButStillUseful) {
  const Summary clean = Evaluate("oracle", json::object(), 120);
  const Summary noisy = Evaluate("oracle", {{"epsilon", 0.3}}, 120);
  const Summary preset = Evaluate("noisy_oracle", json::object(), 120);
  EXPECT_LT(noisy.accuracy, clean.accuracy);
  EXPECT_LT(preset.accuracy, clean.accuracy);
  EXPECT_GT(noisy.accuracy, 0.3);
}

// Questions matter: the complaint and demographics alone (the oracle's
// belief before it asks anything) are far from enough.
TEST(DxPoliciesTest, DiagnosingWithoutAskingIsMuchWorse) {
  const Summary oracle = Evaluate("oracle", json::object(), 120);
  const Summary blind = Evaluate("oracle", {{"confidence", 0.01}}, 120);
  EXPECT_LT(blind.turns, 3.0);  // vital signs at most, then wrap up
  EXPECT_LT(blind.accuracy, oracle.accuracy - 0.3);
}

// Anchoring: the same history as the oracle, but the diagnosis named is the
// first impression; the evidence gathered is what makes the oracle right.
TEST(DxPoliciesTest, AnchoredOracleTakesTheSameHistoryButDiagnosesWorse) {
  const Summary oracle = Evaluate("oracle", json::object(), 120);
  const Summary anchored = Evaluate("oracle", {{"anchor", 1.0}}, 120);
  const Summary partly = Evaluate("oracle", {{"anchor", 0.6}}, 120);
  EXPECT_EQ(anchored.turns, oracle.turns);
  EXPECT_EQ(anchored.cost, oracle.cost);
  EXPECT_LT(anchored.accuracy, oracle.accuracy - 0.3);
  EXPECT_GT(partly.accuracy, anchored.accuracy);
  EXPECT_LT(partly.accuracy, oracle.accuracy);
  EXPECT_THROW(ScriptedPolicyRegistry::Global().Create("dx_dialogue", "oracle",
                                                       0, {{"anchor", 1.5}}),
               ConfigError);
}

TEST(DxPoliciesTest, OracleCanAnswerWithCodes) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  auto policy = ScriptedPolicyRegistry::Global().Create(
      "dx_dialogue", "oracle", 1, {{"diagnose_with", "code"}});
  const EpisodeResult e = Play(*env, *policy, "test", 0);
  EXPECT_TRUE(e.final_info.contains("diagnosis_icd10"));
}

TEST(DxPoliciesTest, SamePolicySeedPlaysTheSameEpisode) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  for (const char* name : {"noisy_oracle", "random"}) {
    auto& registry = ScriptedPolicyRegistry::Global();
    auto a = registry.Create("dx_dialogue", name, 9);
    auto b = registry.Create("dx_dialogue", name, 9);
    EXPECT_EQ(Play(*env, *a, "train", 11).final_info,
              Play(*env, *b, "train", 11).final_info)
        << name;
  }
}

TEST(DxPoliciesTest, BadPolicyOptionsNameTheKey) {
  try {
    ScriptedPolicyRegistry::Global().Create("dx_dialogue", "oracle", 0,
                                            {{"epsilon", 3}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("epsilon"), std::string::npos);
  }
  EXPECT_THROW(ScriptedPolicyRegistry::Global().Create("dx_dialogue", "oracle",
                                                       0, {{"temperature", 1}}),
               ConfigError);
  EXPECT_THROW(ScriptedPolicyRegistry::Global().Create("dx_dialogue", "random",
                                                       0, {{"epsilon", 1}}),
               ConfigError);
  try {
    ScriptedPolicyRegistry::Global().Create("dx_dialogue", "noisy_oracle", 0,
                                            {{"epslion", 0.1}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "policy_options.epslion: unknown key (did you mean "
                  "'epsilon'?)",
                  0),
              0u)
        << e.what();
  }
  try {
    ScriptedPolicyRegistry::Global().Create("dx_dialogue", "oracle", 0,
                                            {{"diagnose_with", "icd"}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "policy_options.diagnose_with: got 'icd', expected one of: "
                 "name, code");
  }
}

TEST(DxPoliciesTest, NoisyOracleTakesAnExplicitEpsilon) {
  // With epsilon 0 the noisy oracle plays as the oracle; with its own
  // default it does not, on some of the same episodes.
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  auto& registry = ScriptedPolicyRegistry::Global();
  int differs_by_default = 0;
  for (int64_t i = 0; i < 10; ++i) {
    auto oracle = registry.Create("dx_dialogue", "oracle", i);
    auto exact =
        registry.Create("dx_dialogue", "noisy_oracle", i, {{"epsilon", 0.0}});
    auto noisy = registry.Create("dx_dialogue", "noisy_oracle", i);
    const json want = Play(*env, *oracle, "train", i).final_info;
    EXPECT_EQ(Play(*env, *exact, "train", i).final_info, want) << i;
    differs_by_default += Play(*env, *noisy, "train", i).final_info != want;
  }
  EXPECT_GT(differs_by_default, 0);
}

}  // namespace
}  // namespace clinrl::envs::dx
