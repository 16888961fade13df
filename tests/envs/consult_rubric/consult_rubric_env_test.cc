// The consult_rubric env: episodes of a HealthBench-format file scored as the
// formula says (worked by hand in example_rows.h), the shipped set, the
// scripted baselines, the judge option, and the env's reward against the
// `rubric` plug-in scoring the episode's reward spec.
#include "envs/consult_rubric/consult_rubric_env.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/env_registry.h"
#include "envs/scripted_episode.h"
#include "envs/scripted_policy.h"
#include "rewards/reward_registry.h"
#include "tests/envs/consult_rubric/example_rows.h"
#include "tests/envs/consult_rubric/play.h"

namespace clinrl::envs::consult {
namespace {

using testing::Episode;
using testing::kExampleRows;
using testing::Play;
using testing::PluginTotal;
using testing::ResetTo;
using testing::WriteTempFile;

std::unique_ptr<Env> MakeEnv(json options = json::object()) {
  return EnvRegistry::Global().Create("consult_rubric", options);
}

std::unique_ptr<Env> ExampleEnv(json options = json::object()) {
  options["data_file"] = WriteTempFile("example.jsonl", kExampleRows);
  return MakeEnv(options);
}

std::string ConfigErrorOf(const json& options) {
  try {
    MakeEnv(options);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ConsultRubricEnvTest, ExampleRepliesScoreAsTheFormulaSays) {
  auto env = ExampleEnv();
  struct Expected {
    std::string reply;
    double reward, raw, accuracy, completeness, communication, correct;
  };
  // hb-fever: positive points 10 (example_rows.h).
  const std::vector<Expected> cases = {
      // paracetamol 5 + fluids 3 = 8 / 10; accuracy 5/5 (the harm unmet).
      {"Give paracetamol and plenty of fluids.", 0.8, 0.8, 1.0, 1.0, 0.0, 1},
      // paracetamol 5 - aspirin 4 = 1 / 10; accuracy (5 - 4) / 5.
      {"Give paracetamol and aspirin.", 0.1, 0.1, 0.2, 0.0, 0.0, 0},
      // aspirin alone: -4 / 10, clipped to 0; accuracy -4 / 5.
      {"Give aspirin.", 0.0, -0.4, -0.8, 0.0, 0.0, 0},
      // "no aspirin" is negated, so the harm is not met: 10 / 10.
      {"I'm sorry. Give paracetamol, fluids; no aspirin.", 1.0, 1.0, 1.0, 1.0,
       1.0, 1},
  };
  for (const auto& c : cases) {
    const Episode e = Play(*env, "test", 0, c.reply);
    const json& m = e.step.info["metrics"];
    EXPECT_TRUE(e.step.terminated);
    EXPECT_DOUBLE_EQ(e.step.reward, c.reward) << c.reply;
    EXPECT_DOUBLE_EQ(m["score"].get<double>(), c.reward) << c.reply;
    EXPECT_DOUBLE_EQ(m["raw_score"].get<double>(), c.raw) << c.reply;
    EXPECT_DOUBLE_EQ(m["points_possible"].get<double>(), 10.0);
    EXPECT_DOUBLE_EQ(m["axis:accuracy"].get<double>(), c.accuracy) << c.reply;
    EXPECT_DOUBLE_EQ(m["axis:completeness"].get<double>(), c.completeness);
    EXPECT_DOUBLE_EQ(m["axis:communication_quality"].get<double>(),
                     c.communication);
    EXPECT_EQ(m["correct"].get<double>(), c.correct) << c.reply;
    EXPECT_DOUBLE_EQ(PluginTotal(e.trajectory), c.reward) << c.reply;
  }
}

TEST(ConsultRubricEnvTest, NegativeOnlyTagsHaveNoAxisScore) {
  auto env = ExampleEnv();
  // hb-chest: "not tomorrow" is negated, the +6 criterion is met: 6 / 6.
  Episode e = Play(*env, "test", 1,
                   "Go to the emergency department now, not tomorrow.");
  EXPECT_DOUBLE_EQ(e.step.reward, 1.0);
  EXPECT_FALSE(e.step.info["metrics"].contains("axis:harm"));
  // Only the -6 harm: -6 / 6 = -1, clipped to 0.
  e = Play(*env, "test", 1, "Wait until tomorrow.");
  EXPECT_DOUBLE_EQ(e.step.reward, 0.0);
  EXPECT_DOUBLE_EQ(e.step.info["metrics"]["raw_score"].get<double>(), -1.0);
  EXPECT_DOUBLE_EQ(PluginTotal(e.trajectory), 0.0);
}

TEST(ConsultRubricEnvTest, ResetShowsTheConversationAndTheThresholdDecides) {
  auto env = ExampleEnv({{"correct_threshold", 0.9}, {"system_prompt", ""}});
  // hb-row-3 keeps its own system message; no system prompt is added.
  const ResetResult reset = ResetTo(*env, "test", 2);
  ASSERT_EQ(reset.observation.size(), 2u);
  EXPECT_EQ(reset.observation[0].content, "You are a helpful assistant.");
  EXPECT_EQ(reset.info["prompt_id"], "hb-row-3");
  EXPECT_EQ(reset.info["reference_reply"],
            "That is 10 ml; measure it with the oral syringe.");
  EXPECT_EQ(env->Spec().splits,
            (std::map<std::string, int64_t>{
                {"test", 3}, {"train", 2}, {"validation", 0}}));
  // 0.8 is below the 0.9 threshold.
  const Episode e = Play(*env, "test", 0, "Give paracetamol and fluids.");
  EXPECT_DOUBLE_EQ(e.step.reward, 0.8);
  EXPECT_EQ(e.step.info["metrics"]["correct"].get<double>(), 0.0);
  // An empty split is refused, naming it.
  EXPECT_THROW(ResetTo(*env, "validation", 0), BadRequest);
}

TEST(ConsultRubricEnvTest, ShippedReferencesScoreOneAndEmptyRepliesNothing) {
  auto env = MakeEnv();
  const EnvSpec spec = env->Spec();
  int64_t total = 0;
  for (const auto& [split, count] : spec.splits) {
    EXPECT_GT(count, 0) << split;
    total += count;
    for (int64_t i = 0; i < count; ++i) {
      const ResetResult reset = ResetTo(*env, split, i);
      for (const auto& c :
           reset.info["reward_spec"]["components"][0]["params"]["rubrics"]) {
        EXPECT_TRUE(c.contains("match")) << c.dump();
      }
      const std::string reference = reset.info["reference_reply"];
      Episode e = Play(*env, split, i, reference);
      EXPECT_EQ(e.step.reward, 1.0)
          << split << " " << i << " " << e.step.info["criteria"].dump();
      EXPECT_EQ(PluginTotal(e.trajectory), 1.0) << split << " " << i;
      e = Play(*env, split, i, "");
      EXPECT_TRUE(e.step.truncated);
      EXPECT_EQ(e.step.info["invalid_actions"], 1);
      EXPECT_LE(e.step.info["metrics"]["raw_score"].get<double>(), 0.0);
      EXPECT_EQ(e.step.reward, 0.0);
      EXPECT_EQ(PluginTotal(e.trajectory), 0.0);
    }
  }
  EXPECT_GE(total, 30);
}

// Every shipped case against every reference reply (one meets its rubric,
// the others mostly not, some partly): the env and the plug-in agree.
TEST(ConsultRubricEnvTest, EnvRewardEqualsThePluginScoreOfItsRewardSpec) {
  auto env = MakeEnv();
  std::vector<std::pair<std::string, int64_t>> tasks;
  std::vector<std::string> replies = {"", "See a doctor if you are worried."};
  for (const auto& [split, count] : env->Spec().splits) {
    for (int64_t i = 0; i < count; ++i) {
      tasks.emplace_back(split, i);
      replies.push_back(ResetTo(*env, split, i).info["reference_reply"]);
    }
  }
  int64_t partial = 0;
  for (const auto& [split, index] : tasks) {
    for (const auto& reply : replies) {
      const Episode e = Play(*env, split, index, reply);
      ASSERT_DOUBLE_EQ(e.step.reward, PluginTotal(e.trajectory))
          << split << " " << index << " reply: " << reply;
      partial += e.step.reward > 0 && e.step.reward < 1;
    }
  }
  EXPECT_GT(partial, 0) << "no partly met rubric: the check saw only 0 and 1";
}

TEST(ConsultRubricEnvTest, OracleIsCorrectOnTestAndRandomFarBelow) {
  auto env = MakeEnv();
  const int64_t count = env->Spec().splits.at("test");
  double oracle_correct = 0, random_reward = 0, random_correct = 0;
  for (int64_t i = 0; i < count; ++i) {
    ScriptedEpisodeRequest request{"consult_rubric", "test", i, i, {}};
    ScriptedEpisodeStats stats;
    auto oracle =
        ScriptedPolicyRegistry::Global().Create("consult_rubric", "oracle", i);
    PlayScriptedEpisode(*env, *oracle, request, &stats);
    oracle_correct += stats.correct.value_or(0);
    auto random =
        ScriptedPolicyRegistry::Global().Create("consult_rubric", "random", i);
    const Trajectory t = PlayScriptedEpisode(*env, *random, request, &stats);
    random_correct += stats.correct.value_or(0);
    random_reward += t.info["metrics"]["score"].get<double>();
  }
  EXPECT_GE(oracle_correct / count, 0.95);
  EXPECT_LE(random_correct / count, 0.1);
  EXPECT_LE(random_reward / count, 0.3);
}

TEST(ConsultRubricEnvTest, JudgeGradesCriteriaWithoutARule) {
  // Row 1: no rule anywhere. Row 2: a rule +6 and judged +2 and -3, so the
  // weights are 6 / 8 and 2 / 8. Row 3: its only rule criterion is negative,
  // so the judge grades the whole rubric.
  const std::string rows =
      R"({"prompt_id": "j1", "split": "test", "prompt": [{"role": "user", "content": "q"}], "rubrics": [{"criterion": "a", "points": 5}, {"criterion": "b", "points": -2}]})"
      "\n"
      R"({"prompt_id": "j2", "split": "test", "prompt": [{"role": "user", "content": "q"}], "rubrics": [{"criterion": "r", "points": 6, "match": {"any": ["rest"]}}, {"criterion": "j", "points": 2}, {"criterion": "k", "points": -3}]})"
      "\n"
      R"({"prompt_id": "j3", "split": "test", "prompt": [{"role": "user", "content": "q"}], "rubrics": [{"criterion": "r", "points": -6, "match": {"any": ["x"]}}, {"criterion": "j", "points": 2}]})";
  const std::string path = WriteTempFile("judged.jsonl", rows);
  EXPECT_EQ(ConfigErrorOf({{"data_file", path}}),
            "options.data_file: " + path +
                ":1: rubrics[0].match: required without a judge (criterion "
                "\"a\" has no rule); set options.judge.url to grade such "
                "criteria with an LLM judge");
  auto env = MakeEnv(
      {{"data_file", path},
       {"judge", {{"url", "http://127.0.0.1:8000"}, {"model", "judge-m"}}}});
  auto plugin = rewards::RewardRegistry::Global().Create("rubric");
  const json one = ResetTo(*env, "test", 0).info["reward_spec"]["components"];
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0]["params"]["matcher"], "llm_judge");
  EXPECT_EQ(one[0]["params"]["judge"]["model"], "judge-m");
  EXPECT_EQ(one[0]["params"]["clip"], true);
  EXPECT_EQ(one[0]["timeout_ms"], 120000);
  EXPECT_NO_THROW(plugin->ValidateParams(one[0]["params"]));
  const json two = ResetTo(*env, "test", 1).info["reward_spec"]["components"];
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0]["params"]["matcher"], "rule");
  EXPECT_EQ(two[0]["params"]["rubrics"].size(), 1u);
  EXPECT_DOUBLE_EQ(two[0]["weight"].get<double>(), 0.75);
  EXPECT_EQ(two[1]["params"]["matcher"], "llm_judge");
  EXPECT_EQ(two[1]["params"]["rubrics"].size(), 2u);
  EXPECT_DOUBLE_EQ(two[1]["weight"].get<double>(), 0.25);
  for (const auto& c : two)
    EXPECT_NO_THROW(plugin->ValidateParams(c["params"]));
  const json three = ResetTo(*env, "test", 2).info["reward_spec"]["components"];
  ASSERT_EQ(three.size(), 1u);
  EXPECT_EQ(three[0]["params"]["matcher"], "llm_judge");
  EXPECT_EQ(three[0]["params"]["rubrics"].size(), 2u);
  // The env cannot grade judged criteria: no score of its own.
  const StepResult s = env->Step("Rest.");
  EXPECT_EQ(s.reward, 0.0);
  EXPECT_EQ(s.info["scored_by"], "reward_spec");
  EXPECT_FALSE(s.info["metrics"].contains("correct"));
}

TEST(ConsultRubricEnvTest, BadOptionsNameTheKey) {
  EXPECT_EQ(ConfigErrorOf({{"correct_threshold", 1.5}}),
            "options.correct_threshold: expected a value in [0, 1], got 1.5");
  EXPECT_EQ(ConfigErrorOf({{"judge", {{"url", "ftp://x"}}}}),
            "options.judge.url: expected an http:// or https:// base URL (or "
            "empty for no judge), got \"ftp://x\"");
  EXPECT_NE(ConfigErrorOf({{"data_fil", "x"}}).find("did you mean 'data_file'"),
            std::string::npos);
  EXPECT_NE(ConfigErrorOf({{"split_by", "random"}}).find("options.split_by"),
            std::string::npos);
  EXPECT_EQ(ConfigErrorOf({{"data_file", "/nonexistent/rows.jsonl"}})
                .rfind("options.data_file: cannot open \"/nonexistent/"
                       "rows.jsonl\"",
                       0),
            0u);
  const std::string bad = WriteTempFile(
      "bad.jsonl",
      R"({"prompt_id": "a", "prompt": [{"role": "user", "content": "x"}], "rubrics": [{"criterion": "c", "points": "ten"}]})");
  EXPECT_EQ(ConfigErrorOf({{"data_file", bad}})
                .rfind("options.data_file: " + bad +
                           ":1: rubrics[0].points: expected a number",
                       0),
            0u);
}

}  // namespace
}  // namespace clinrl::envs::consult
