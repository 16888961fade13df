// The ranked-differential answer of dx_dialogue (diagnosis_format: ranked):
// the list grammar, the rank metrics and the scripted policies in that mode.
// Expected values are worked by hand from the rule (1 / rank, top-k hits).
#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/dx_dialogue/dx_action.h"
#include "envs/dx_dialogue/dx_dialogue_env.h"
#include "envs/dx_dialogue/knowledge_base.h"
#include "envs/env_registry.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::dx {
namespace {

const json kRanked = {{"diagnosis_format", "ranked"}};

ResetRequest TestTask(int64_t index, json options = json::object()) {
  ResetRequest r;
  r.split = "test";
  r.task_index = index;
  r.options = std::move(options);
  return r;
}

// Names of `count` conditions of the knowledge base other than `truth`.
std::vector<std::string> Others(const std::string& truth, size_t count) {
  std::vector<std::string> out;
  for (const auto& c : KnowledgeBase::Shared("")->conditions) {
    if (c.name != truth && out.size() < count) out.push_back(c.name);
  }
  return out;
}

struct RankedEnd {
  StepResult step;
  std::string truth;
};

// Resets test task 0 in ranked mode (max_differential 5) and answers with
// `make_list(truth)`.
RankedEnd AnswerTaskZero(
    const std::function<std::string(const std::string&)>& make_list,
    json options = kRanked) {
  auto env = EnvRegistry::Global().Create("dx_dialogue", options);
  const ResetResult reset = env->Reset(TestTask(0));
  const std::string truth = reset.info["reward_spec"]["condition"];
  return {env->Step(make_list(truth)), truth};
}

TEST(DxRankedDifferentialTest, SplitsItemsAndDropsRankMarkers) {
  EXPECT_EQ(SplitDifferential("1. pneumonia; 2) asthma; #3 I21.9; 4: gout."),
            (std::vector<std::string>{"pneumonia", "asthma", "I21.9", "gout"}));
  EXPECT_EQ(SplitDifferential("migraine"),
            (std::vector<std::string>{"migraine"}));
  EXPECT_EQ(SplitDifferential(" ; 1. ;influenza;; "),
            (std::vector<std::string>{"influenza"}));
  // A number that is not a marker stays ("1.5" is not "1.").
  EXPECT_EQ(SplitDifferential("1.5 mg"), (std::vector<std::string>{"1.5 mg"}));
}

TEST(DxRankedDifferentialTest, SecondPlaceEarnsHalfAndIsNotCorrect) {
  const RankedEnd end = AnswerTaskZero([](const std::string& truth) {
    const auto others = Others(truth, 2);
    return "DIAGNOSIS: 1. " + others[0] + "; 2. " + truth + "; 3. " + others[1];
  });
  const StepResult& s = end.step;
  ASSERT_TRUE(s.terminated) << s.observation[0].content;
  const json& m = s.info["metrics"];
  EXPECT_EQ(m["correct"], 0);
  EXPECT_EQ(m["rank"], 2);
  EXPECT_DOUBLE_EQ(m["reciprocal_rank"].get<double>(), 0.5);
  EXPECT_EQ(m["top1"], 0);
  EXPECT_EQ(m["top3"], 1);
  EXPECT_EQ(m["top5"], 1);
  EXPECT_EQ(s.info["differential"]["rank"], 2);
  EXPECT_EQ(s.info["differential"]["icd10"].size(), 3u);
  EXPECT_EQ(s.info["action"]["differential"][1], end.truth);
  EXPECT_EQ(s.reward, 0.0);  // the reward service scores the answer
}

TEST(DxRankedDifferentialTest, FirstPlaceIsCorrectAndFourthIsOnlyTopFive) {
  const RankedEnd first = AnswerTaskZero([](const std::string& truth) {
    return "DIAGNOSIS: 1. " + truth + "; 2. " + Others(truth, 1)[0];
  });
  const json& m1 = first.step.info["metrics"];
  EXPECT_EQ(m1["correct"], 1);
  EXPECT_EQ(m1["rank"], 1);
  EXPECT_DOUBLE_EQ(m1["reciprocal_rank"].get<double>(), 1.0);
  EXPECT_EQ(m1["top1"], 1);

  const RankedEnd fourth = AnswerTaskZero([](const std::string& truth) {
    const auto o = Others(truth, 3);
    return "DIAGNOSIS: 1. " + o[0] + "; 2. " + o[1] + "; 3. " + o[2] + "; 4. " +
           truth;
  });
  const json& m4 = fourth.step.info["metrics"];
  EXPECT_EQ(m4["rank"], 4);
  EXPECT_DOUBLE_EQ(m4["reciprocal_rank"].get<double>(), 0.25);
  EXPECT_EQ(m4["top3"], 0);
  EXPECT_EQ(m4["top5"], 1);
}

TEST(DxRankedDifferentialTest, AbsentTrueConditionScoresNothing) {
  const RankedEnd end = AnswerTaskZero([](const std::string& truth) {
    const auto o = Others(truth, 2);
    return "DIAGNOSIS: " + o[0] + "; " + o[1];
  });
  const json& m = end.step.info["metrics"];
  EXPECT_EQ(m["rank"], 0);
  EXPECT_DOUBLE_EQ(m["reciprocal_rank"].get<double>(), 0.0);
  EXPECT_EQ(m["top5"], 0);
  // A word, not a missing field, so no plug-in falls back to the text.
  EXPECT_EQ(end.step.info["differential"]["rank"], "none");
}

TEST(DxRankedDifferentialTest, TooLongOrUnknownListsAreInvalidNotFinal) {
  const json capped = {{"diagnosis_format", "ranked"}, {"max_differential", 2}};
  const RankedEnd too_long = AnswerTaskZero(
      [](const std::string& truth) {
        const auto o = Others(truth, 2);
        return "DIAGNOSIS: 1. " + truth + "; 2. " + o[0] + "; 3. " + o[1];
      },
      capped);
  EXPECT_FALSE(too_long.step.terminated);
  EXPECT_EQ(too_long.step.info["invalid_actions"], 1);
  EXPECT_EQ(too_long.step.observation[0].content,
            "List at most 2 diagnoses, not 3: DIAGNOSIS: 1. <condition>; 2. "
            "<condition>.");

  const RankedEnd unknown = AnswerTaskZero([](const std::string& truth) {
    return "DIAGNOSIS: 1. " + truth + "; 2. wobbly knees syndrome";
  });
  EXPECT_FALSE(unknown.step.terminated);
  EXPECT_EQ(unknown.step.info["invalid_actions"], 1);
  EXPECT_EQ(unknown.step.observation[0].content,
            "Item 2: Unknown diagnosis \"wobbly knees syndrome\". Name a "
            "condition or an ICD-10 code.");
}

// A list that is only rank markers or separators names nothing: an invalid
// action, never a differential without a first item.
TEST(DxRankedDifferentialTest, ListWithoutItemsIsInvalid) {
  for (const std::string action :
       {"DIAGNOSIS: 1", "DIAGNOSIS: ;", "DIAGNOSIS: 1. ; 2."}) {
    const RankedEnd empty =
        AnswerTaskZero([&](const std::string&) { return action; });
    EXPECT_FALSE(empty.step.terminated) << action;
    EXPECT_EQ(empty.step.info["invalid_actions"], 1) << action;
    EXPECT_EQ(empty.step.observation[0].content,
              "List at least one diagnosis: DIAGNOSIS: 1. <condition>; 2. "
              "<condition>.")
        << action;
  }
}

TEST(DxRankedDifferentialTest, SingleDiagnosisStaysTheDefault) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  EXPECT_EQ(env->Spec().action_format, kDxActionFormat);
  const ResetResult reset = env->Reset(TestTask(0));
  EXPECT_FALSE(reset.info.contains("diagnosis_format"));
  EXPECT_EQ(reset.info["reward_spec"]["components"][0]["name"], "diagnosis");
  EXPECT_EQ(reset.info["reward_spec"]["success"], "diagnosis");
  const std::string truth = reset.info["reward_spec"]["condition"];
  // A list is not a single diagnosis.
  const StepResult s =
      env->Step("DIAGNOSIS: 1. " + truth + "; 2. " + Others(truth, 1)[0]);
  EXPECT_FALSE(s.terminated);
  EXPECT_EQ(s.info["invalid_actions"], 1);
}

TEST(DxRankedDifferentialTest, ResetOptionTurnsRankingOnForOneEpisode) {
  auto env = EnvRegistry::Global().Create("dx_dialogue");
  const ResetResult ranked = env->Reset(TestTask(0, kRanked));
  EXPECT_EQ(ranked.info["diagnosis_format"], "ranked");
  EXPECT_EQ(ranked.info["max_differential"], 5);
  EXPECT_EQ(ranked.observation[0].content,
            "You are a doctor. Find the diagnosis in few turns at low cost. "
            "One action per turn: ASK: <symptom> | EXAM: <system> | TEST: "
            "<test> | DISPOSITION: <home|clinic|emergency> | DIAGNOSIS: 1. "
            "<condition>; 2. <condition>; ... (a ranked differential, most "
            "likely first, at most 5)");
  const ResetResult single = env->Reset(TestTask(0));
  EXPECT_FALSE(single.info.contains("diagnosis_format"));
  EXPECT_EQ(EnvRegistry::Global()
                .Create("dx_dialogue", {{"diagnosis_format", "ranked"},
                                        {"max_differential", 3}})
                ->Spec()
                .action_format,
            RankedActionFormat(3));
}

TEST(DxRankedDifferentialTest, BadOptionsNameTheKey) {
  auto expect_error = [](const json& options, const std::string& needle) {
    try {
      EnvRegistry::Global().Create("dx_dialogue", options);
      FAIL() << options.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos)
          << e.what();
    }
  };
  expect_error({{"diagnosis_format", "list"}}, "single, ranked");
  expect_error({{"max_differential", 11}},
               "options.max_differential: expected an integer in [1, 10], got "
               "11");
  expect_error({{"max_differential", 0}}, "options.max_differential");
}

TEST(DxRankedDifferentialTest, ReciprocalRankRule) {
  EXPECT_DOUBLE_EQ(ReciprocalRank(1), 1.0);
  EXPECT_DOUBLE_EQ(ReciprocalRank(2), 0.5);
  EXPECT_DOUBLE_EQ(ReciprocalRank(5), 0.2);
  EXPECT_DOUBLE_EQ(ReciprocalRank(0), 0.0);
}

struct RankedSummary {
  double top1 = 0, top5 = 0, reciprocal = 0, invalid = 0;
};

RankedSummary PlayTestSplit(const std::string& policy_name, int64_t episodes) {
  auto env = EnvRegistry::Global().Create("dx_dialogue", kRanked);
  RankedSummary sum;
  for (int64_t i = 0; i < episodes; ++i) {
    const ResetResult reset = env->Reset(TestTask(i));
    auto policy = ScriptedPolicyRegistry::Global().Create(
        "dx_dialogue", policy_name, static_cast<uint64_t>(i));
    Observation transcript = reset.observation;
    json info = reset.info;
    for (int turn = 0; turn < 20; ++turn) {
      json shown = info;
      shown.erase("reward_spec");
      shown.erase("answer");
      const StepResult s = env->Step(policy->Act(transcript, shown));
      info = s.info;
      if (s.terminated || s.truncated) break;
    }
    sum.top1 += info["metrics"]["top1"].get<double>() / episodes;
    sum.top5 += info["metrics"]["top5"].get<double>() / episodes;
    sum.reciprocal +=
        info["metrics"]["reciprocal_rank"].get<double>() / episodes;
    sum.invalid += info["invalid_actions"].get<double>();
  }
  return sum;
}

TEST(DxRankedDifferentialTest, OracleRanksTheTrueConditionFirst) {
  const RankedSummary oracle = PlayTestSplit("oracle", 240);
  EXPECT_GE(oracle.top1, 0.95);
  EXPECT_GE(oracle.top5, oracle.top1);
  EXPECT_GE(oracle.reciprocal, oracle.top1);
  EXPECT_EQ(oracle.invalid, 0);
}

TEST(DxRankedDifferentialTest, RandomListsAreValidAndRarelyRight) {
  const RankedSummary random = PlayTestSplit("random", 240);
  EXPECT_EQ(random.invalid, 0);
  EXPECT_LT(random.top1, 0.1);
  EXPECT_LT(random.reciprocal, 0.2);
}

}  // namespace
}  // namespace clinrl::envs::dx
