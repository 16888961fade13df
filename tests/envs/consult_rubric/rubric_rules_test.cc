// The env's rule matcher and scoring formula: against values worked by hand,
// and against the `rubric` plug-in's matcher (rewards/rule_matcher.h), which
// the env's copy must follow (envs/consult_rubric/rubric_rules.h says why it
// is a copy).
#include "envs/consult_rubric/rubric_rules.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "rewards/rule_matcher.h"

namespace clinrl::envs::consult {
namespace {

using nlohmann::json;

RubricCriterion Criterion(double points, std::vector<std::string> tags,
                          json match = json{{"any", {"x"}}}) {
  return {"criterion", points, std::move(tags), std::move(match)};
}

bool Met(const std::string& response, const json& match) {
  return MatchCriteria(response, {Criterion(1, {}, match)})[0];
}

// The plug-in's verdict for the same declaration.
bool PluginMet(const std::string& response, const json& match) {
  rewards::RubricCriterion c;
  c.criterion = "criterion";
  c.points = 1;
  c.match = match;
  return rewards::MatchRules(response, {c}, {})[0].met;
}

TEST(RubricRulesTest, ScoreIsMetPointsOverPositivePoints) {
  // Positive points 5 + 3 + 2 = 10; the -4 criterion counts only when met.
  const std::vector<RubricCriterion> criteria = {
      Criterion(5, {"axis:accuracy"}), Criterion(3, {"axis:completeness"}),
      Criterion(2, {"axis:communication"}), Criterion(-4, {"axis:accuracy"})};
  // c0, c1 met: 8 / 10 = 0.8; accuracy 5 / 5, completeness 3 / 3,
  // communication 0 / 2.
  RubricScore s = ScoreRubric(criteria, {true, true, false, false});
  EXPECT_DOUBLE_EQ(s.raw, 0.8);
  EXPECT_DOUBLE_EQ(s.clipped, 0.8);
  EXPECT_DOUBLE_EQ(s.achieved, 8.0);
  EXPECT_DOUBLE_EQ(s.possible, 10.0);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:accuracy"), 1.0);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:completeness"), 1.0);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:communication"), 0.0);
  // c0 and the harm met: (5 - 4) / 10 = 0.1; accuracy (5 - 4) / 5 = 0.2.
  s = ScoreRubric(criteria, {true, false, false, true});
  EXPECT_DOUBLE_EQ(s.raw, 0.1);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:accuracy"), 0.2);
  // Only the harm: -4 / 10 = -0.4, clipped to 0; accuracy -4 / 5 = -0.8.
  s = ScoreRubric(criteria, {false, false, false, true});
  EXPECT_DOUBLE_EQ(s.raw, -0.4);
  EXPECT_DOUBLE_EQ(s.clipped, 0.0);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:accuracy"), -0.8);
  // A tag carried only by negative criteria has no ratio and no entry.
  s = ScoreRubric({Criterion(6, {"axis:accuracy"}), Criterion(-6, {"harm"})},
                  {true, true});
  EXPECT_DOUBLE_EQ(s.raw, 0.0);
  EXPECT_EQ(s.tags.count("harm"), 0u);
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

TEST(RubricRulesTest, RulesDecideAsDocumentedAndAsThePlugin) {
  for (const auto& c : RuleCases()) {
    EXPECT_EQ(Met(c.response, c.match), c.expected)
        << c.response << " / " << c.match.dump();
    EXPECT_EQ(PluginMet(c.response, c.match), c.expected)
        << "plug-in: " << c.response << " / " << c.match.dump();
  }
}

TEST(RubricRulesTest, BadDeclarationsNameTheField) {
  auto error = [](const json& match) {
    try {
      ValidateMatch(match, "rubrics[2].match");
    } catch (const BadRequest& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(error(json::object()),
            "rubrics[2].match: expected at least one non-empty list among "
            "any, all, none, regex");
  EXPECT_EQ(error({{"any", {"!!"}}}),
            "rubrics[2].match.any: term \"!!\" has no letters or digits to "
            "match");
  EXPECT_EQ(error({{"any", {"x"}}, {"window", 0}}),
            "rubrics[2].match.window: expected an integer >= 1, got 0");
  EXPECT_EQ(error({{"any", {"x"}}, {"synonyms", {{"x", "y"}}}}),
            "rubrics[2].match.synonyms.x: expected an array of non-empty "
            "strings, got \"y\"");
  EXPECT_EQ(error({{"any", {""}}})
                .rfind("rubrics[2].match.any: expected an "
                       "array of non-empty strings",
                       0),
            0u);
  EXPECT_NO_THROW(ValidateMatch({{"regex", {"\\d+ mg"}}}, "m"));
}

}  // namespace
}  // namespace clinrl::envs::consult
