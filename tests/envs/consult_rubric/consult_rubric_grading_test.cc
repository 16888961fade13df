// The env's grading of a reply: its step reward and metrics against values
// worked by hand from docs/rewards.md's formula and matching rules, and
// against the `rubric` plug-in scoring the episode's reward spec. The env
// grades with the plug-in's own library (rewards/rubric.h,
// rewards/rule_matcher.h; docs/design.md, "The layering rule"), so these
// hold the env's use of it: default matcher options, clipping, the metrics.
#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/consult_rubric/consult_case.h"
#include "envs/env_registry.h"
#include "rewards/reward_registry.h"
#include "tests/envs/consult_rubric/example_rows.h"
#include "tests/envs/consult_rubric/play.h"

namespace clinrl::envs::consult {
namespace {

using testing::Episode;
using testing::Play;
using testing::PluginResult;
using testing::PluginTotal;
using testing::WriteTempFile;

json Criterion(double points, std::vector<std::string> tags,
               const json& match) {
  return {{"criterion", "criterion"},
          {"points", points},
          {"tags", std::move(tags)},
          {"match", match}};
}

json Row(const std::string& prompt_id, const std::vector<json>& rubrics) {
  return {{"prompt_id", prompt_id},
          {"split", "test"},
          {"prompt", {{{"role", "user"}, {"content", "q"}}}},
          {"rubrics", json(rubrics)}};
}

// An env over `rows` (test split, in order), read from its own file: the
// env shares what it read by path.
std::unique_ptr<Env> EnvOfRows(const std::string& file,
                               const std::vector<json>& rows) {
  std::string text;
  for (const auto& row : rows) text += row.dump() + "\n";
  return EnvRegistry::Global().Create(
      "consult_rubric", {{"data_file", WriteTempFile(file, text)}});
}

TEST(ConsultRubricGradingTest, ScoreIsMetPointsOverPositivePoints) {
  // Row 0: positive points 5 + 3 + 2 = 10; the -4 criterion counts only when
  // met. Row 1: +6 and a -6 tagged "harm", a tag with no positive points.
  auto env = EnvOfRows(
      "score.jsonl",
      {Row("score",
           {Criterion(5, {"axis:accuracy"}, {{"any", {"alpha"}}}),
            Criterion(3, {"axis:completeness"}, {{"any", {"bravo"}}}),
            Criterion(2, {"axis:communication"}, {{"any", {"charlie"}}}),
            Criterion(-4, {"axis:accuracy"}, {{"any", {"delta"}}})}),
       Row("harm", {Criterion(6, {"axis:accuracy"}, {{"any", {"echo"}}}),
                    Criterion(-6, {"harm"}, {{"any", {"foxtrot"}}})})});
  struct Expected {
    int64_t row;
    std::string reply;
    double raw, clipped, achieved, possible;
    std::map<std::string, double> tags;
  };
  const std::vector<Expected> cases = {
      // c0, c1 met: 8 / 10 = 0.8; accuracy 5 / 5, completeness 3 / 3,
      // communication 0 / 2.
      {0,
       "Alpha and bravo.",
       0.8,
       0.8,
       8.0,
       10.0,
       {{"axis:accuracy", 1.0},
        {"axis:completeness", 1.0},
        {"axis:communication", 0.0}}},
      // c0 and the harm met: (5 - 4) / 10 = 0.1; accuracy (5 - 4) / 5 = 0.2.
      {0,
       "Alpha and delta.",
       0.1,
       0.1,
       1.0,
       10.0,
       {{"axis:accuracy", 0.2},
        {"axis:completeness", 0.0},
        {"axis:communication", 0.0}}},
      // Only the harm: -4 / 10 = -0.4, clipped to 0; accuracy -4 / 5 = -0.8.
      {0,
       "Delta.",
       -0.4,
       0.0,
       -4.0,
       10.0,
       {{"axis:accuracy", -0.8},
        {"axis:completeness", 0.0},
        {"axis:communication", 0.0}}},
      // Both met: (6 - 6) / 6 = 0; accuracy 6 / 6; "harm" has no ratio and
      // no entry.
      {1, "Echo and foxtrot.", 0.0, 0.0, 0.0, 6.0, {{"axis:accuracy", 1.0}}},
  };
  for (const auto& c : cases) {
    const Episode e = Play(*env, "test", c.row, c.reply);
    const json& m = e.step.info["metrics"];
    EXPECT_DOUBLE_EQ(e.step.reward, c.clipped) << c.reply;
    EXPECT_DOUBLE_EQ(m["score"].get<double>(), c.clipped) << c.reply;
    EXPECT_DOUBLE_EQ(m["raw_score"].get<double>(), c.raw) << c.reply;
    EXPECT_DOUBLE_EQ(m["points_achieved"].get<double>(), c.achieved);
    EXPECT_DOUBLE_EQ(m["points_possible"].get<double>(), c.possible);
    for (const auto& [tag, score] : c.tags) {
      EXPECT_DOUBLE_EQ(m[tag].get<double>(), score) << c.reply << " " << tag;
    }
    EXPECT_FALSE(m.contains("harm")) << c.reply;
    // The plug-in, scoring the reward spec of the same episode.
    const RewardResult r = PluginResult(e.trajectory);
    EXPECT_DOUBLE_EQ(r.total, c.clipped) << c.reply;
    const json& details = r.components.at("rubric").details;
    EXPECT_DOUBLE_EQ(details["unclipped"].get<double>(), c.raw) << c.reply;
    EXPECT_DOUBLE_EQ(details["points_achieved"].get<double>(), c.achieved);
    EXPECT_EQ(details["tags"], json(c.tags)) << c.reply;
  }
}

struct RuleCase {
  std::string response;
  json match;
  bool expected;  // worked out from docs/rewards.md's rules
};

std::vector<RuleCase> RuleCases() {
  return {
      {"Take aspirin now.", {{"any", {"aspirin"}}}, true},
      {"You do not need aspirin.", {{"any", {"aspirin"}}}, false},
      {"No fever. Take aspirin.", {{"any", {"aspirin"}}}, true},
      // The cue is exactly five words back: the edge of the default window.
      {"Never give a young child aspirin.", {{"any", {"aspirin"}}}, false},
      // The cue is nine words back: outside the default window of five...
      {"Never in my long clinical career have I used aspirin.",
       {{"any", {"aspirin"}}},
       true},
      // ... and inside a window of nine.
      {"Never in my long clinical career have I used aspirin.",
       {{"any", {"aspirin"}}, {"window", 9}},
       false},
      {"Not sure but aspirin helps.", {{"any", {"aspirin"}}}, true},
      {"Don't drive.", {{"any", {"drive"}}, {"polarity", "negated"}}, true},
      {"Don\xE2\x80\x99t drive.",
       {{"any", {"drive"}}, {"polarity", "negated"}},
       true},
      {"Drive slowly.", {{"any", {"drive"}}, {"polarity", "negated"}}, false},
      {"You cannot drive.", {{"any", {"drive"}}, {"polarity", "either"}}, true},
      {"Go to the ER.",
       {{"any", {"emergency department"}},
        {"synonyms", {{"emergency department", {"er", "a&e"}}}}},
       true},
      {"Rest and fluids.", {{"all", {"rest", "fluids"}}}, true},
      {"Rest.", {{"all", {"rest", "fluids"}}}, false},
      {"Wait and see.", {{"any", {"rest"}}, {"none", {"wait and see"}}}, false},
      {"Rest; do not wait and see.",
       {{"any", {"rest"}}, {"none", {"wait and see"}}},
       true},
      {"Give 2.5 ml twice daily.",
       {{"regex", {"\\b\\d+(\\.\\d+)? ?ml\\b"}}},
       true},
      {"Give a small amount.", {{"regex", {"\\b\\d+ ?ml\\b"}}}, false},
      // "2.5" is not a sentence end (no space after the dot): one sentence,
      // so "no" still negates "dose".
      {"no 2.5 dose", {{"any", {"dose"}}}, false},
      {"Headache-free.", {{"any", {"headache free"}}}, true},
      {"", {{"none", {"aspirin"}}}, true},
  };
}

// Each rule case is a one-criterion row (1 point): met scores 1, unmet 0.
TEST(ConsultRubricGradingTest, RulesDecideAsDocumentedInTheEnvAndThePlugin) {
  const std::vector<RuleCase> cases = RuleCases();
  std::vector<json> rows;
  for (size_t i = 0; i < cases.size(); ++i) {
    rows.push_back(
        Row(fmt::format("rule-{}", i), {Criterion(1, {}, cases[i].match)}));
  }
  auto env = EnvOfRows("rules.jsonl", rows);
  for (size_t i = 0; i < cases.size(); ++i) {
    const RuleCase& c = cases[i];
    const double met = c.expected ? 1.0 : 0.0;
    const Episode e = Play(*env, "test", static_cast<int64_t>(i), c.response);
    EXPECT_EQ(e.step.reward, met) << c.response << " / " << c.match.dump();
    EXPECT_EQ(PluginTotal(e.trajectory), met)
        << "plug-in: " << c.response << " / " << c.match.dump();
  }
}

// The error reading a row whose third criterion declares `match` ("" when
// the row is accepted).
std::string RowError(const json& match) {
  const json row = Row("bad", {Criterion(1, {}, {{"any", {"a"}}}),
                               {{"criterion", "judged"}, {"points", 1}},
                               Criterion(1, {}, match)});
  try {
    ParseConsultCases(row.dump(), "bad.jsonl", SplitBy::kFieldOrHash);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The plug-in's error for the same declaration in a reward spec.
std::string PluginError(const json& match) {
  const json params = {{"rubrics", json::array({Criterion(1, {}, match)})},
                       {"matcher", "rule"}};
  try {
    rewards::RewardRegistry::Global().Create("rubric")->ValidateParams(params);
  } catch (const BadRequest& e) {
    return e.what();
  }
  return "";
}

TEST(ConsultRubricGradingTest, BadDeclarationsNameTheFieldAsThePluginDoes) {
  struct Case {
    json match;
    std::string error;  // after "rubrics[2].match"
  };
  const std::vector<Case> cases = {
      {json::object(),
       ": expected at least one non-empty list among any, all, none, regex"},
      {{{"any", {"!!"}}},
       ".any: term \"!!\" has no letters or digits to match"},
      {{{"any", {"x"}}, {"window", 0}},
       ".window: expected an integer >= 1, got 0"},
      {{{"any", {"x"}}, {"synonyms", {{"x", "y"}}}},
       ".synonyms.x: expected an array of non-empty strings, got \"y\""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(RowError(c.match), "bad.jsonl:1: rubrics[2].match" + c.error);
    EXPECT_EQ(PluginError(c.match), "params.rubrics[0].match" + c.error);
  }
  EXPECT_EQ(RowError({{"any", {""}}})
                .rfind("bad.jsonl:1: rubrics[2].match.any: expected an "
                       "array of non-empty strings",
                       0),
            0u);
  EXPECT_EQ(RowError({{"regex", {"\\d+ mg"}}}), "");
  EXPECT_EQ(PluginError({{"regex", {"\\d+ mg"}}}), "");
}

}  // namespace
}  // namespace clinrl::envs::consult
