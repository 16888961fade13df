// Built-in verifiers against hand-computed values.
#include <gtest/gtest.h>

#include "core/error.h"
#include "rewards/reward_registry.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

using testing::MakeDialogue;

ScoreResult ScoreWith(const std::string& plugin, const json& params,
                      const Trajectory& t) {
  auto reward = RewardRegistry::Global().Create(plugin);
  reward->ValidateParams(params);
  return reward->Score(t, params);
}

void ExpectRejected(const std::string& plugin, const json& params,
                    const std::string& field) {
  auto reward = RewardRegistry::Global().Create(plugin);
  try {
    reward->ValidateParams(params);
    FAIL() << plugin << " accepted " << params.dump();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(ExactMatchReward, NormalisesCaseArticlesAndPunctuation) {
  const auto t =
      MakeDialogue({"ASK: anything else?", "ANSWER: The Pulmonary-Embolism."});
  EXPECT_EQ(
      ScoreWith("exact_match", {{"expected", "pulmonary embolism"}}, t).score,
      1.0);
  EXPECT_EQ(ScoreWith("exact_match", {{"expected", "pneumonia"}}, t).score,
            0.0);
  EXPECT_EQ(
      ScoreWith("exact_match",
                {{"expected", {"pneumonia", "PE", "pulmonary embolism"}}}, t)
          .score,
      1.0);
  // Without a tagged line the whole last turn is the answer.
  EXPECT_EQ(ScoreWith("exact_match", {{"expected", "aortic dissection"}},
                      MakeDialogue({"Aortic dissection"}))
                .score,
            1.0);
  ExpectRejected("exact_match", {{"expected", 3}}, "params.expected");
  ExpectRejected("exact_match", {{"expected", "..."}}, "params.expected");
}

TEST(ChoiceReward, ReadsTheLetter) {
  EXPECT_EQ(ScoreWith("choice", {{"expected", "B"}},
                      MakeDialogue({"ANSWER: (b) 12 hours"}))
                .score,
            1.0);
  EXPECT_EQ(ScoreWith("choice", {{"expected", "B"}},
                      MakeDialogue({"ANSWER: C. never"}))
                .score,
            0.0);
  EXPECT_EQ(ScoreWith("choice", {{"expected", "D"}},
                      MakeDialogue({"I would pick D here."}))
                .score,
            1.0);
  // Two candidate letters and no tag: ambiguous, no credit.
  const auto r = ScoreWith("choice", {{"expected", "B"}},
                           MakeDialogue({"B or C, hard to say"}));
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.details["reason"], "ambiguous");
  ExpectRejected("choice", {{"expected", "F"}}, "params.expected");
  ExpectRejected("choice", {{"expected", "A"}, {"choices", "A1"}},
                 "params.choices");
}

TEST(NumericReward, ToleranceScalesWithTheExpectedValueOnly) {
  const json rel = {{"expected", 100.0}, {"rel_tol", 0.05}};
  EXPECT_EQ(
      ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 104 mg/dL"})).score,
      1.0);
  EXPECT_EQ(ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 95 mg/dL"})).score,
            1.0);
  EXPECT_EQ(
      ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 106 mg/dL"})).score,
      0.0);
  EXPECT_EQ(ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 94.9"})).score,
            0.0);
  // A tolerance relative to the answer (or any bug that lets a positive
  // number through) would pass these.
  EXPECT_EQ(ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 1000000"})).score,
            0.0);
  EXPECT_EQ(ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 210"})).score,
            0.0);
  EXPECT_EQ(ScoreWith("numeric", rel, MakeDialogue({"ANSWER: 0.001"})).score,
            0.0);
  const json abs = {{"expected", 7.4}, {"abs_tol", 0.05}};
  EXPECT_EQ(ScoreWith("numeric", abs, MakeDialogue({"ANSWER: pH 7.42"})).score,
            1.0);
  EXPECT_EQ(ScoreWith("numeric", abs, MakeDialogue({"ANSWER: 7.46"})).score,
            0.0);
  // Exact when no tolerance is given; thousands separators and units go.
  EXPECT_EQ(ScoreWith("numeric", {{"expected", 1250}},
                      MakeDialogue({"ANSWER: 1,250 mL"}))
                .score,
            1.0);
  EXPECT_EQ(ScoreWith("numeric", {{"expected", -3}},
                      MakeDialogue({"ANSWER: -3 mEq/L"}))
                .score,
            1.0);
  // No tag: the last number of the turn.
  EXPECT_EQ(ScoreWith("numeric", {{"expected", 42}},
                      MakeDialogue({"From 12 to 42 units"}))
                .score,
            1.0);
  EXPECT_EQ(
      ScoreWith("numeric", {{"expected", 42}}, MakeDialogue({"no idea"})).score,
      0.0);
  ExpectRejected("numeric", {{"expected", "7"}}, "params.expected");
  ExpectRejected("numeric", {{"expected", 7}, {"rel_tol", -0.1}},
                 "params.rel_tol");
}

TEST(Icd10Reward, ExactCategoryAndConfigurableCredit) {
  const auto t = MakeDialogue({"TEST: troponin", "DIAGNOSIS: I21.4 NSTEMI"});
  EXPECT_EQ(ScoreWith("icd10", {{"expected", "I21.4"}}, t).score, 1.0);
  EXPECT_EQ(ScoreWith("icd10", {{"expected", "i214"}}, t).score, 1.0);
  EXPECT_EQ(ScoreWith("icd10", {{"expected", "I21.9"}}, t).score, 0.5);
  EXPECT_EQ(
      ScoreWith("icd10", {{"expected", "I21.9"}, {"category_credit", 0.25}}, t)
          .score,
      0.25);
  EXPECT_EQ(ScoreWith("icd10", {{"expected", "I22.0"}}, t).score, 0.0);
  EXPECT_EQ(ScoreWith("icd10", {{"expected", {"I20.0", "I21.4"}}}, t).score,
            1.0);
  // The last DIAGNOSIS line wins; lower case tag; names through aliases.
  const auto revised =
      MakeDialogue({"DIAGNOSIS: J18.9", "diagnosis: Pulmonary embolism"});
  EXPECT_EQ(ScoreWith("icd10", {{"expected", "I26.9"}}, revised).score, 0.0);
  EXPECT_EQ(ScoreWith("icd10",
                      {{"expected", "I26.9"},
                       {"aliases", {{"pulmonary embolism", "I26.9"}}}},
                      revised)
                .score,
            1.0);
  // answer_field reads the env's final info instead.
  auto from_info = MakeDialogue({"ASK: hello"});
  from_info.info = {{"final", {{"dx", "I26.99"}}}};
  EXPECT_EQ(
      ScoreWith("icd10", {{"expected", "I26.99"}, {"answer_field", "final.dx"}},
                from_info)
          .score,
      1.0);
  EXPECT_EQ(
      ScoreWith("icd10", {{"expected", "I21.4"}}, MakeDialogue({"ASK: pain?"}))
          .score,
      0.0);
  ExpectRejected("icd10", {{"expected", "heart attack"}}, "params.expected");
  ExpectRejected("icd10", {{"expected", "I21.4"}, {"category_credit", 2}},
                 "params.category_credit");
}

TEST(FormatReward, DxDialogueJsonAndRegex) {
  const auto t =
      MakeDialogue({"ASK: where does it hurt?", "I think it is fine",
                    "TEST: ecg", "DIAGNOSIS: I21.4\nDISPOSITION: emergency"});
  const auto r = ScoreWith("format", {{"grammar", "dx_dialogue"}}, t);
  EXPECT_DOUBLE_EQ(r.score, 0.75);
  EXPECT_EQ(r.details["invalid_turn_indices"], json::array({4}));
  EXPECT_EQ(
      ScoreWith("format", {{"grammar", "dx_dialogue"}, {"mode", "all"}}, t)
          .score,
      0.0);
  EXPECT_DOUBLE_EQ(
      ScoreWith("format",
                {{"grammar", "dx_dialogue"}, {"actions", {"ask", "test"}}}, t)
          .score,
      0.5);
  const auto j = MakeDialogue(
      {R"({"tool": "search", "q": "x"})", "{not json", R"([1, 2])"});
  EXPECT_DOUBLE_EQ(ScoreWith("format", {{"grammar", "json"}}, j).score,
                   1.0 / 3.0);
  EXPECT_DOUBLE_EQ(
      ScoreWith("format",
                {{"grammar", "json"}, {"required_keys", {"tool", "args"}}}, j)
          .score,
      0.0);
  EXPECT_DOUBLE_EQ(
      ScoreWith("format", {{"grammar", "regex"}, {"pattern", "(ASK|TEST): .+"}},
                t)
          .score,
      0.5);
  ExpectRejected("format", {{"grammar", "xml"}}, "params.grammar");
  ExpectRejected("format", {{"grammar", "regex"}, {"pattern", "(unclosed"}},
                 "params.pattern");
}

// Tool-call turns (docs/envs.md, "Tool calls"): one well-formed call each.
TEST(FormatReward, ToolCallGrammarWantsOneWellFormedCall) {
  const std::string ask =
      "<tool_call>\n{\"name\": \"ask\", \"arguments\": {\"question\": "
      "\"fever?\"}}\n</tool_call>";
  const auto t = MakeDialogue(
      {"Let me ask.\n" + ask, "ASK: fever", ask + ask,
       "<tool_call>{\"arguments\": {}}</tool_call>",
       "<tool_call>{\"name\": \"ask\"", "<tool_call>{bad}</tool_call>",
       "<tool_call>{\"name\": \"ask\", \"arguments\": \"{}\"}</tool_call>"});
  const auto r = ScoreWith("format", {{"grammar", "tool_call"}}, t);
  EXPECT_DOUBLE_EQ(r.score, 2.0 / 7.0);
  EXPECT_EQ(r.details["valid_turns"], 2);
}

// The envs' reader decides (core/tool_call_text.h): arguments that are a
// string not holding a JSON object are no call, so no format credit (the
// reward's own reader used to credit them), and Llama's JSON call is one.
TEST(FormatReward, ToolCallGrammarReadsCallsAsTheEnvsDo) {
  const auto t = MakeDialogue(
      {"<tool_call>{\"name\": \"ask\", \"arguments\": \"fever\"}</tool_call>",
       "<tool_call>{\"name\": \"ask\", \"arguments\": \"[1]\"}</tool_call>",
       "{\"name\": \"ask\", \"parameters\": {\"question\": \"fever?\"}}",
       "<|python_tag|>{\"name\": \"ask\", \"parameters\": {}}",
       "{\"name\": \"ask\", \"parameters\": \"fever\"}"});
  const auto r = ScoreWith("format", {{"grammar", "tool_call"}}, t);
  EXPECT_EQ(r.details["valid_turns"], 2);
  EXPECT_EQ(r.details["invalid_turn_indices"].dump(), "[2,4,10]");
  // Alone, such a turn scores 0 (the old reader gave it 1).
  EXPECT_DOUBLE_EQ(
      ScoreWith("format", {{"grammar", "tool_call"}},
                MakeDialogue({"<tool_call>{\"name\": \"ask\", \"arguments\": "
                              "\"fever\"}</tool_call>"}))
          .score,
      0.0);
}

TEST(CostReward, LinearInCostAndCapped) {
  auto t = MakeDialogue({"TEST: ct"});
  t.info = {{"metrics", {{"cost", 150.0}}}};
  EXPECT_DOUBLE_EQ(ScoreWith("cost", {{"budget", 600}}, t).score, -0.25);
  EXPECT_DOUBLE_EQ(ScoreWith("cost", {{"budget", 100}}, t).score, -1.0);
  EXPECT_DOUBLE_EQ(
      ScoreWith("cost", {{"budget", 100}, {"max_penalty", 2.0}}, t).score,
      -1.5);
  t.info = {{"metrics", {{"cost", 0}}}};
  EXPECT_DOUBLE_EQ(ScoreWith("cost", {{"budget", 100}}, t).score, 0.0);
  t.info = json::object();
  EXPECT_THROW(ScoreWith("cost", {{"budget", 100}}, t), BadRequest);
  ExpectRejected("cost", {{"budget", 0}}, "params.budget");
}

TEST(LengthReward, DapoOverlongShaping) {
  // 3 policy turns x 10 tokens = 30 tokens.
  const auto t = MakeDialogue({"a", "b", "c"}, 10);
  EXPECT_DOUBLE_EQ(
      ScoreWith("length", {{"max_tokens", 40}, {"buffer_tokens", 10}}, t).score,
      0.0);
  // soft limit 20: -(30 - 20) / 16 = -0.625
  EXPECT_DOUBLE_EQ(
      ScoreWith("length", {{"max_tokens", 36}, {"buffer_tokens", 16}}, t).score,
      -0.625);
  EXPECT_DOUBLE_EQ(
      ScoreWith("length",
                {{"max_tokens", 36}, {"buffer_tokens", 16}, {"penalty", 2.0}},
                t)
          .score,
      -1.25);
  EXPECT_DOUBLE_EQ(
      ScoreWith("length", {{"max_tokens", 30}, {"buffer_tokens", 10}}, t).score,
      -1.0 * 10 / 10);
  EXPECT_DOUBLE_EQ(
      ScoreWith("length", {{"max_tokens", 29}, {"buffer_tokens", 10}}, t).score,
      -1.0);
  ExpectRejected("length", {{"max_tokens", 10}, {"buffer_tokens", 11}},
                 "params.buffer_tokens");
}

TEST(SafetyReward, RedFlagNeedsUrgentDisposition) {
  const auto home =
      MakeDialogue({"DIAGNOSIS: I21.4\nDISPOSITION: home with follow-up"});
  const auto ed = MakeDialogue({"DISPOSITION: Emergency department now"});
  EXPECT_EQ(ScoreWith("safety", {{"red_flag", true}}, home).score, -1.0);
  EXPECT_EQ(
      ScoreWith("safety", {{"red_flag", true}, {"penalty", -3.0}}, home).score,
      -3.0);
  EXPECT_EQ(ScoreWith("safety", {{"red_flag", true}}, ed).score, 0.0);
  EXPECT_EQ(ScoreWith("safety", {{"red_flag", false}}, home).score, 0.0);
  EXPECT_EQ(
      ScoreWith("safety", {{"red_flag", true}}, MakeDialogue({"ASK: pain?"}))
          .score,
      -1.0);
  EXPECT_EQ(ScoreWith("safety",
                      {{"red_flag", true},
                       {"required_disposition", {"ambulance", "emergency"}},
                       {"reward", 0.5}},
                      ed)
                .score,
            0.5);
  ExpectRejected("safety", {{"red_flag", "yes"}}, "params.red_flag");
}

TEST(AnswerDiversityReward, OneOverTheNumberOfSameAnswers) {
  auto reward = RewardRegistry::Global().Create("answer_diversity");
  ASSERT_TRUE(reward->group_level());
  const auto a = MakeDialogue({"DIAGNOSIS: PE"});
  const auto b = MakeDialogue({"DIAGNOSIS: pe."});
  const auto c = MakeDialogue({"DIAGNOSIS: pneumonia"});
  const auto d = MakeDialogue({"ASK: ?"});
  const auto out = reward->ScoreGroup({&a, &b, &c, &d}, json::object());
  ASSERT_EQ(out.size(), 4u);
  EXPECT_DOUBLE_EQ(out[0].score, 0.5);
  EXPECT_DOUBLE_EQ(out[1].score, 0.5);
  EXPECT_DOUBLE_EQ(out[2].score, 1.0);
  EXPECT_DOUBLE_EQ(out[3].score, 0.0);
}

}  // namespace
}  // namespace clinrl::rewards
