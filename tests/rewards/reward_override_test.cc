// rewards.overrides: components added, replaced and reweighted on an env's
// reward spec, applied by ScoreByGroup before scoring (so the trajectory
// records the spec it was scored by), and checked against the registry with
// one-line errors naming the config key.
#include "rewards/reward_override.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "rewards/trajectory_scorer.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using nlohmann::json;

json EnvSpec() {
  return {{"components",
           {{{"name", "answer"},
             {"plugin", "exact_match"},
             {"weight", 1.0},
             {"params", {{"expected", {"pneumonia"}}}}},
            {{"name", "brief"},
             {"plugin", "length"},
             {"weight", 0.5},
             {"params", {{"max_tokens", 64}}}}}},
          {"success", "answer"}};
}

json Component(const std::string& name, const std::string& plugin,
               double weight, json params) {
  return {{"name", name},
          {"plugin", plugin},
          {"weight", weight},
          {"params", std::move(params)}};
}

std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

TEST(RewardOverride, AddsReplacesAndReweightsByName) {
  RewardOverride change;
  change.components = {
      Component("answer", "exact_match", 2.0, {{"expected", {"asthma"}}}),
      Component("format", "format", 0.25, {{"pattern", "^ANSWER:"}})};
  change.weights = {{"brief", 0.0}};
  change.success = "format";
  const json out =
      ApplyRewardOverride(EnvSpec(), change, "rewards.overrides.x");
  ASSERT_EQ(out["components"].size(), 3u);
  // Replaced in place, so the order of the env's components stays.
  EXPECT_EQ(out["components"][0]["params"]["expected"][0], "asthma");
  EXPECT_EQ(out["components"][0]["weight"], 2.0);
  EXPECT_EQ(out["components"][1]["name"], "brief");
  EXPECT_EQ(out["components"][1]["weight"], 0.0);
  EXPECT_EQ(out["components"][2]["name"], "format");
  EXPECT_EQ(out["success"], "format");
  // Applying it again changes nothing: a trajectory scored twice keeps one
  // copy of each component.
  EXPECT_EQ(ApplyRewardOverride(out, change, "rewards.overrides.x"), out);
}

TEST(RewardOverride, AWeightOrSuccessOfAnUnknownComponentIsOneLine) {
  RewardOverride change;
  change.weights = {{"brevity", 0.1}};
  EXPECT_EQ(
      ErrorOf([&] {
        ApplyRewardOverride(EnvSpec(), change, "rewards.overrides.dx");
      }),
      "rewards.overrides.dx.weights.brevity: the env's reward spec has no "
      "component 'brevity'; its components (with the override's): answer, "
      "brief");
  change.weights.clear();
  change.success = "nope";
  EXPECT_EQ(ErrorOf([&] {
              ApplyRewardOverride(EnvSpec(), change, "rewards.overrides.dx");
            }),
            "rewards.overrides.dx.success: got 'nope', expected one of the "
            "components: answer, brief");
}

TEST(RewardOverride, CheckNamesAnUnregisteredPluginAndBadParams) {
  std::map<std::string, RewardOverride> all;
  all["dx"].components = {
      Component("kw", "keyword_fractoin", 0.2, json::object())};
  const std::string unknown = ErrorOf([&] { CheckRewardOverrides(all, true); });
  EXPECT_EQ(unknown.find("rewards.overrides.dx.components[0].plugin: no "
                         "reward plug-in 'keyword_fractoin' (a shared library "
                         "must be listed in rewards.plugins); registered: "),
            0u)
      << unknown;
  // Scored by a reward server elsewhere: its plug-ins are not known here.
  EXPECT_NO_THROW(CheckRewardOverrides(all, false));

  all["dx"].components = {
      Component("answer", "exact_match", 1.0, json::object())};
  const std::string params = ErrorOf([&] { CheckRewardOverrides(all, true); });
  EXPECT_EQ(params.find("rewards.overrides.dx.components[0].params: "), 0u)
      << params;
  EXPECT_EQ(params.find('\n'), std::string::npos) << params;

  all["dx"].components = {Component("", "exact_match", 1.0, json::object())};
  EXPECT_NE(ErrorOf([&] {
              CheckRewardOverrides(all, false);
            }).find("rewards.overrides.dx.components[0].name"),
            std::string::npos);

  all["dx"].components.clear();
  all["dx"].weights = {{"answer", std::nan("")}};
  EXPECT_EQ(ErrorOf([&] { CheckRewardOverrides(all, true); }),
            "rewards.overrides.dx.weights.answer: got nan, expected a finite "
            "number");
}

TEST(RewardOverride, ScoreByGroupScoresAndRecordsTheOverriddenSpec) {
  Trajectory t = testing::MakeDialogue({"ANSWER: asthma"});
  t.env = "dx";
  t.reward_spec = EnvSpec();
  RewardsConfig config;
  config.overrides["dx"].components = {
      Component("answer", "exact_match", 1.0, {{"expected", {"asthma"}}})};
  config.overrides["dx"].weights = {{"brief", 0.0}};
  config.overrides["other_env"].weights = {{"whatever", 3.0}};
  auto scorer = MakeTrajectoryScorer(config);
  ScoreByGroup({&t}, 1, *scorer);
  EXPECT_EQ(t.reward_spec["components"][0]["params"]["expected"][0], "asthma");
  EXPECT_DOUBLE_EQ(t.reward.total, 1.0);  // the replaced answer, brief at 0
  // Without the override the env's own expected answer scores 0.
  Trajectory plain = testing::MakeDialogue({"ANSWER: asthma"});
  plain.env = "dx";
  plain.reward_spec = EnvSpec();
  ScoreByGroup({&plain}, 1, *MakeTrajectoryScorer(RewardsConfig{}));
  EXPECT_LT(plain.reward.total, 1.0);
}

}  // namespace
}  // namespace clinrl::rewards
