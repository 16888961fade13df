// HealthBench's formula on crafted rows, the clip-after-mean rule, tag
// scores, and the rule matcher's negation handling. Expected values are
// computed by hand in the comments.
#include "rewards/rubric.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "rewards/reward_registry.h"
#include "rewards/rule_matcher.h"
#include "tests/rewards/test_trajectories.h"

namespace clinrl::rewards {
namespace {

std::vector<RubricCriterion> Criteria(const std::vector<double>& points,
                                      const std::vector<std::string>& tags) {
  std::vector<RubricCriterion> out;
  for (size_t i = 0; i < points.size(); ++i) {
    RubricCriterion c;
    c.criterion = "c" + std::to_string(i);
    c.points = points[i];
    if (!tags.empty()) c.tags = {tags[i]};
    out.push_back(c);
  }
  return out;
}

TEST(Rubric, ExampleScoreCountsNegativeCriteria) {
  // met: +10, -8, +3 -> 5; possible: 10 + 5 + 3 = 18.
  const auto s = ScoreExample(
      Criteria({10, 5, -8, 3}, {"axis:accuracy", "axis:completeness",
                                "axis:accuracy", "axis:completeness"}),
      {true, false, true, true});
  EXPECT_DOUBLE_EQ(s.achieved, 5.0);
  EXPECT_DOUBLE_EQ(s.possible, 18.0);
  EXPECT_DOUBLE_EQ(s.score, 5.0 / 18.0);
  // accuracy: (10 - 8) / 10; completeness: 3 / (5 + 3).
  EXPECT_DOUBLE_EQ(s.tag_scores.at("axis:accuracy"), 0.2);
  EXPECT_DOUBLE_EQ(s.tag_scores.at("axis:completeness"), 0.375);
}

TEST(Rubric, ExampleScoreMayBeNegativeAndNeverAboveOne) {
  EXPECT_DOUBLE_EQ(ScoreExample(Criteria({4, -10}, {}), {false, true}).score,
                   -2.5);
  EXPECT_DOUBLE_EQ(
      ScoreExample(Criteria({6, 2, -5}, {}), {true, true, false}).score, 1.0);
  EXPECT_DOUBLE_EQ(ScoreExample(Criteria({6, 2}, {}), {false, false}).score,
                   0.0);
}

TEST(Rubric, SetScoreClipsAfterTheMean) {
  const ExampleScore a = ScoreExample(Criteria({10, 5, -8, 3}, {}),
                                      {true, false, true, true});  // 5/18
  const ExampleScore b =
      ScoreExample(Criteria({4, -10}, {}), {false, true});  // -2.5
  const ExampleScore c = ScoreExample(Criteria({6, 2}, {}), {true, true});  // 1
  // mean(5/18, -2.5, 1) = -0.4074 -> clipped to 0. Clipping each example
  // first would give (5/18 + 0 + 1) / 3 = 0.426: that is the bug to avoid.
  EXPECT_DOUBLE_EQ(AggregateScores({a, b, c}, {}).overall, 0.0);
  // mean(5/18, 1) = 0.638888...
  EXPECT_DOUBLE_EQ(AggregateScores({a, c}, {}).overall,
                   (5.0 / 18.0 + 1.0) / 2.0);
  // mean(-2.5, 1, 1, 1, 1) = 0.3: a negative example pulls the mean down
  // by its full amount.
  EXPECT_DOUBLE_EQ(AggregateScores({b, c, c, c, c}, {}).overall, 0.3);
}

TEST(Rubric, ThemeAndAxisScoresAreClippedMeansOverTheirExamples) {
  const ExampleScore a =
      ScoreExample(Criteria({10, -8}, {"axis:accuracy", "axis:accuracy"}),
                   {true, true});  // 0.2
  const ExampleScore b =
      ScoreExample(Criteria({5, 5}, {"axis:accuracy", "axis:communication"}),
                   {false, true});  // 0.5; accuracy 0, communication 1
  const SetScore s = AggregateScores(
      {a, b}, {{"theme:emergency_referrals"}, {"theme:hedging"}});
  EXPECT_DOUBLE_EQ(s.overall, 0.35);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:accuracy"), 0.1);  // mean(0.2, 0)
  EXPECT_EQ(s.tag_counts.at("axis:accuracy"), 2);
  EXPECT_DOUBLE_EQ(s.tags.at("axis:communication"), 1.0);
  EXPECT_EQ(s.tag_counts.at("axis:communication"), 1);
  EXPECT_DOUBLE_EQ(s.tags.at("theme:emergency_referrals"), 0.2);
  EXPECT_DOUBLE_EQ(s.tags.at("theme:hedging"), 0.5);
}

TEST(Rubric, ParseErrorsNameTheField) {
  try {
    ParseCriteria(json::array({{{"criterion", "x"}, {"points", "ten"}}}),
                  "rubrics");
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("rubrics[0].points"),
              std::string::npos)
        << e.what();
  }
  try {
    ParseCriteria(json::array({{{"criterion", "x"}, {"points", -3}}}),
                  "rubrics");
    FAIL();
  } catch (const BadRequest& e) {
    EXPECT_NE(std::string(e.what()).find("points > 0"), std::string::npos)
        << e.what();
  }
}

bool Met(const std::string& response, const json& match,
         RuleMatcherOptions options = {}) {
  RubricCriterion c;
  c.criterion = "test";
  c.points = 1;
  c.match = match;
  ValidateRules({c}, options, "rubrics");
  return MatchRules(response, {c}, options)[0].met;
}

TEST(RuleMatcher, NegatedMentionsDoNotCount) {
  const json aspirin = {{"any", {"aspirin"}}};
  EXPECT_TRUE(Met("Chew an aspirin now.", aspirin));
  EXPECT_FALSE(Met("You do not need aspirin.", aspirin));
  EXPECT_FALSE(Met("Don't take aspirin.", aspirin));
  EXPECT_FALSE(Met("Don\u2019t take aspirin.", aspirin));
  EXPECT_FALSE(Met("Avoid aspirin for now.", aspirin));
  // Negation scope ends at a sentence end and at "but".
  EXPECT_TRUE(Met("No fever. Take aspirin.", aspirin));
  EXPECT_TRUE(Met("No chest pain but take aspirin anyway", aspirin));
  // Scope is `window` words before the mention.
  const std::string far = "not that it matters much to anyone here, aspirin";
  EXPECT_TRUE(Met(far, aspirin));
  EXPECT_FALSE(Met(far, {{"any", {"aspirin"}}, {"window", 9}}));
  // Whole words only.
  EXPECT_FALSE(Met("aspirinate", aspirin));
  // A negated-polarity criterion wants the negated mention.
  const json no_drive = {{"any", {"drive"}}, {"polarity", "negated"}};
  EXPECT_TRUE(Met("Please do not drive yourself.", no_drive));
  EXPECT_FALSE(Met("You can drive to the clinic.", no_drive));
}

TEST(RuleMatcher, AllAnyNoneRegexAndSynonyms) {
  const json m = {
      {"all", {"heart attack", "call 911"}},
      {"synonyms", {{"heart attack", {"mi", "myocardial infarction"}}}}};
  EXPECT_TRUE(Met("This could be an MI; call 911.", m));
  EXPECT_FALSE(Met("This could be an MI.", m));
  RuleMatcherOptions shared;
  shared.synonyms = {{"call 911", {"call an ambulance"}}};
  EXPECT_TRUE(
      Met("Myocardial infarction is likely: call an ambulance.", m, shared));
  const json none = {{"none", {"wait and see"}}};
  EXPECT_TRUE(Met("Go now.", none));
  EXPECT_FALSE(Met("Let's wait and see.", none));
  EXPECT_TRUE(Met("Do not wait and see.", none));  // negated mention is fine
  const json dose = {{"all", {"aspirin"}}, {"regex", {"\\b(162|325) ?mg\\b"}}};
  EXPECT_TRUE(Met("aspirin 325 mg", dose));
  EXPECT_FALSE(Met("aspirin 81 mg", dose));
  RuleMatcherOptions cues;
  cues.negation_cues = {"skip"};
  EXPECT_FALSE(Met("skip the aspirin", {{"any", {"aspirin"}}}, cues));
  EXPECT_TRUE(Met("not the aspirin", {{"any", {"aspirin"}}}, cues));
}

TEST(RuleMatcher, DeclarationErrorsNameTheCriterion) {
  RubricCriterion ok;
  ok.criterion = "ok";
  ok.points = 1;
  ok.match = {{"any", {"x"}}};
  RubricCriterion missing = ok;
  missing.match = nullptr;
  RubricCriterion bad_regex = ok;
  bad_regex.match = {{"regex", {"([a-z"}}};
  RubricCriterion bad_polarity = ok;
  bad_polarity.match = {{"any", {"x"}}, {"polarity", "maybe"}};
  const std::vector<std::pair<RubricCriterion, std::string>> cases = {
      {missing, "rubrics[1].match"},
      {bad_regex, "rubrics[1].match.regex"},
      {bad_polarity, "rubrics[1].match.polarity"}};
  for (const auto& [criterion, field] : cases) {
    try {
      ValidateRules({ok, criterion}, {}, "rubrics");
      FAIL() << field;
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos)
          << e.what();
    }
  }
}

TEST(RubricReward, ScoresTheLastPolicyTurn) {
  const json params = {{"rubrics",
                        {{{"criterion", "Advises emergency care"},
                          {"points", 10},
                          {"tags", {"axis:accuracy"}},
                          {"match", {{"any", {"call 911", "emergency"}}}}},
                         {{"criterion", "Mentions aspirin"},
                          {"points", 5},
                          {"tags", {"axis:completeness"}},
                          {"match", {{"any", {"aspirin"}}}}},
                         {{"criterion", "Suggests waiting"},
                          {"points", -6},
                          {"tags", {"axis:accuracy"}},
                          {"match", {{"any", {"wait"}}}}}}}};
  auto reward = RewardRegistry::Global().Create("rubric");
  reward->ValidateParams(params);
  const auto t = testing::MakeDialogue(
      {"ASK: how long?",
       "Call 911 now; you could wait for the ambulance seated."});
  const auto r = reward->Score(t, params);
  // met: +10, -6 -> 4 / 15
  EXPECT_DOUBLE_EQ(r.score, 4.0 / 15.0);
  EXPECT_DOUBLE_EQ(r.details["tags"]["axis:accuracy"].get<double>(), 0.4);
  EXPECT_EQ(r.details["criteria"].size(), 3u);
  EXPECT_EQ(r.details["criteria"][1]["met"], false);
  // clip keeps the example in [0, 1].
  json clipped = params;
  clipped["clip"] = true;
  const auto bad = testing::MakeDialogue({"Just wait."});
  EXPECT_DOUBLE_EQ(reward->Score(bad, params).score, -6.0 / 15.0);
  EXPECT_DOUBLE_EQ(reward->Score(bad, clipped).score, 0.0);
  json unknown = params;
  unknown["matcher"] = "oracle";
  EXPECT_THROW(reward->ValidateParams(unknown), BadRequest);
}

}  // namespace
}  // namespace clinrl::rewards
