// The reward part of the shared conformance suite (docs/style.md, 2): every
// plug-in in RewardRegistry::Global() runs through the checks of
// rewards/reward_conformance.h (the same code `clinrl reward check` runs on a
// plug-in library): valid specs are accepted, malformed ones get a BadRequest
// naming the field, scores are finite and deterministic (also from several
// threads at once), and a trajectory and its result survive a JSON round trip
// unchanged. A plug-in supplies its sample specs in Cases() below; any
// registered plug-in still gets the checks that need no sample.
#include "rewards/reward_conformance.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

const std::map<std::string, ConformanceCase>& Cases() {
  static const std::map<std::string, ConformanceCase> cases = {
      {"exact_match",
       {{{{"expected", "B"}},
         {{"expected", {"b", "c"}}, {"answer_field", "final.answer"}}},
        {{{{"expected", 1}}, "params.expected"},
         {json::object(), "params.expected"},
         {{{"expected", "B"}, {"tag", 3}}, "params.tag"}}}},
      {"choice",
       {{{{"expected", "B"}}, {{"expected", "c"}, {"choices", "ABCD"}}},
        {{{{"expected", "Z"}}, "params.expected"},
         {{{"expected", "A"}, {"choices", 5}}, "params.choices"}}}},
      {"numeric",
       {{{{"expected", 7.4}, {"abs_tol", 0.1}},
         {{"expected", 325}, {"rel_tol", 0.01}}},
        {{{{"expected", "7.4"}}, "params.expected"},
         {{{"expected", 1}, {"abs_tol", -1}}, "params.abs_tol"}}}},
      {"icd10",
       {{{{"expected", "I21.4"}},
         {{"expected", {"I21.9"}}, {"category_credit", 0.3}}},
        {{{{"expected", "chest pain"}}, "params.expected"},
         {{{"expected", "I21.4"}, {"category_credit", 1.5}},
          "params.category_credit"},
         {{{"expected", "I21.4"}, {"aliases", {{"mi", 3}}}},
          "params.aliases"}}}},
      {"format",
       {{{{"grammar", "dx_dialogue"}},
         {{"grammar", "json"}, {"mode", "all"}},
         {{"grammar", "regex"}, {"pattern", "[A-Z]+: .*"}}},
        {{{{"grammar", "yaml"}}, "params.grammar"},
         {{{"grammar", "regex"}}, "params.pattern"},
         {{{"grammar", "json"}, {"mode", "some"}}, "params.mode"}}}},
      {"cost",
       {{{{"budget", 100}}, {{"budget", 10}, {"max_penalty", 2}}},
        {{{{"budget", -5}}, "params.budget"},
         {json::object(), "params.budget"}}}},
      {"length",
       {{{{"max_tokens", 16}, {"buffer_tokens", 4}}, {{"max_tokens", 100}}},
        {{{{"max_tokens", 0}}, "params.max_tokens"},
         {{{"max_tokens", 10}, {"buffer_tokens", -1}}, "params.buffer_tokens"},
         {{{"max_tokens", 10}, {"penalty", "big"}}, "params.penalty"}}}},
      {"safety",
       {{{{"red_flag", true}},
         {{"red_flag", false}, {"penalty", -2}},
         {{"red_flag", true},
          {"required_disposition", {"emergency", "ambulance"}}}},
        {{json::object(), "params.red_flag"},
         {{{"red_flag", true}, {"required_disposition", 4}},
          "params.required_disposition"}}}},
      {"answer_diversity",
       {{json::object(), {{"tag", "ANSWER"}}}, {{{{"tag", 1}}, "params.tag"}}}},
      {"rubric",
       {{{{"rubrics",
           {{{"criterion", "Advises emergency care"},
             {"points", 5},
             {"match", {{"any", {"emergency", "911"}}}}},
            {{"criterion", "Suggests waiting"},
             {"points", -5},
             {"match", {{"any", {"wait"}}}}}}}},
         {{"rubrics",
           {{{"criterion", "Gives aspirin dose"},
             {"points", 2},
             {"tags", {"axis:accuracy"}},
             {"match", {{"all", {"aspirin"}}, {"regex", {"\\d+ ?mg"}}}}}}},
          {"clip", true}}},
        {{json::object(), "params.rubrics"},
         {{{"rubrics", {{{"criterion", "x"}, {"points", 1}}}}},
          "params.rubrics[0].match"},
         {{{"rubrics",
            {{{"criterion", "x"},
              {"points", -1},
              {"match", {{"any", {"x"}}}}}}}},
          "params.rubrics"},
         {{{"rubrics",
            {{{"criterion", "x"}, {"points", 1}, {"match", {{"any", {"x"}}}}}}},
           {"matcher", "llm_judge"}},
          "params.judge"}}}},
      // The EHR env's task grader (rewards/ehr_task_reward.*): an answer key
      // with no writes; the sample trajectory never calls FINISH, so it
      // scores 0 by the transcript path.
      {"ehr_task",
       {{{{"family", "lookup"},
          {"mode", "strict_r4"},
          {"patient", "S1"},
          {"answer", {{"check", true}, {"expected", {7.4}}}},
          {"required_writes", json::array()}}},
        {{{{"family", "lookup"}, {"mode", "fhir5"}, {"patient", "S1"}},
          "params.mode"},
         {{{"family", "lookup"},
           {"mode", "strict_r4"},
           {"patient", "S1"},
           {"answer", {{"check", "yes"}, {"expected", json::array()}}},
           {"required_writes", json::array()}},
          "params.answer.check"}}}},
  };
  return cases;
}

// The plug-ins clinrl ships; each must have a case above.
const std::vector<std::string> kBuiltIns = {
    "exact_match", "choice", "numeric",          "icd10", "format", "cost",
    "length",      "safety", "answer_diversity", "rubric"};

// Every check that ran passed, and each of `must_run` ran.
void ExpectPasses(const std::string& plugin,
                  const std::vector<ConformanceResult>& results,
                  const std::vector<std::string>& must_run) {
  for (const auto& check : must_run) {
    EXPECT_TRUE(std::any_of(
        results.begin(), results.end(),
        [&](const ConformanceResult& r) { return r.check == check; }))
        << plugin << ": check " << check << " did not run";
  }
  for (const auto& result : results) {
    EXPECT_TRUE(result.passed())
        << plugin << " fails " << result.check << ": " << result.failure;
  }
}

class RewardConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(RewardConformance, RejectsParamsThatAreNotAnObject) {
  const auto results = CheckRewardConformance(GetParam(), {});
  const auto it = std::find_if(results.begin(), results.end(),
                               [](const ConformanceResult& r) {
                                 return r.check == "rejects_non_object_params";
                               });
  ASSERT_NE(it, results.end()) << "the check did not run";
  EXPECT_TRUE(it->passed()) << GetParam() << ": " << it->failure;
}

// What `clinrl reward check` runs on a plug-in library given no samples.
TEST_P(RewardConformance, PassesTheChecksThatNeedNoSamples) {
  ExpectPasses(GetParam(), CheckRewardConformance(GetParam(), {}),
               {"rejects_non_object_params", "handles_empty_params"});
}

TEST_P(RewardConformance, SampleSpecsBehave) {
  const auto it = Cases().find(GetParam());
  if (it == Cases().end()) {
    GTEST_SKIP() << GetParam()
                 << " has no sample specs in reward_conformance_test.cc";
  }
  std::vector<std::string> checks = {
      "accepts_valid_params",    "rejects_malformed_params",
      "scores_are_finite",       "scores_are_deterministic",
      "composite_matches_score", "trajectory_json_round_trip",
      "result_json_round_trip"};
  if (!RewardRegistry::Global().Create(GetParam())->group_level()) {
    checks.push_back("group_matches_single");
  }
  ExpectPasses(GetParam(), CheckRewardConformance(GetParam(), it->second),
               checks);
}

INSTANTIATE_TEST_SUITE_P(AllRegistered, RewardConformance,
                         ::testing::ValuesIn(RewardRegistry::Global().Names()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

TEST(RewardConformanceCoverage, EveryBuiltInIsRegisteredAndHasSamples) {
  for (const auto& name : kBuiltIns) {
    EXPECT_TRUE(RewardRegistry::Global().Has(name)) << name;
    EXPECT_TRUE(Cases().count(name)) << name;
  }
}

}  // namespace
}  // namespace clinrl::rewards
