// The reward part of the shared conformance suite (docs/style.md, 2): every
// plug-in in RewardRegistry::Global() runs through the same checks: valid
// specs are accepted, malformed ones get a BadRequest naming the field,
// scores are finite and deterministic (also from several threads at once),
// and a trajectory and its result survive a JSON round trip unchanged. A
// plug-in supplies its sample specs in kCases below; any registered plug-in
// still gets the checks that need no sample.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/trajectory.h"
#include "rewards/composite_reward.h"
#include "rewards/reward_registry.h"
#include "rewards/reward_wire.h"

namespace clinrl::rewards {
namespace {

struct Malformed {
  json params;
  std::string field;  // must appear in the error message
};

struct ConformanceCase {
  std::vector<json> valid;
  std::vector<Malformed> malformed;
};

Trajectory SampleTrajectory() {
  Trajectory t;
  t.episode_id = "conf-1";
  t.group_id = "conf";
  t.env = "conformance";
  t.split = "test";
  t.task_index = 3;
  t.seed = 11;
  t.turns.push_back({"system", "You are a physician.", {}, {}});
  const char* actions[] = {"ASK: Where is the pain?", "TEST: ecg",
                           "ANSWER: B\nDIAGNOSIS: I21.4 NSTEMI\nDISPOSITION: "
                           "emergency department; call 911, aspirin 325 mg"};
  int64_t token = 1;
  for (const char* a : actions) {
    t.turns.push_back({"user", "It is in my chest, 7.4 out of 10.", {}, {}});
    Turn turn{"assistant", a, {}, {}};
    for (int i = 0; i < 6; ++i) {
      turn.token_ids.push_back(token++);
      turn.logprobs.push_back(-0.125f * static_cast<float>(i));
    }
    t.turns.push_back(std::move(turn));
  }
  t.info = {{"metrics", {{"cost", 35.5}}}, {"final", {{"answer", "B"}}}};
  return t;
}

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

class RewardConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(RewardConformance, RejectsParamsThatAreNotAnObject) {
  auto reward = RewardRegistry::Global().Create(GetParam());
  for (const json& params : {json(42), json("x"), json::array()}) {
    EXPECT_THROW(reward->ValidateParams(params), BadRequest)
        << GetParam() << " accepted params " << params.dump();
  }
}

TEST_P(RewardConformance, SampleSpecsBehave) {
  const auto it = Cases().find(GetParam());
  if (it == Cases().end()) {
    GTEST_SKIP() << GetParam()
                 << " has no sample specs in reward_conformance_test.cc";
  }
  auto reward = RewardRegistry::Global().Create(GetParam());
  for (const auto& bad : it->second.malformed) {
    try {
      reward->ValidateParams(bad.params);
      ADD_FAILURE() << GetParam() << " accepted " << bad.params.dump();
    } catch (const BadRequest& e) {
      EXPECT_NE(std::string(e.what()).find(bad.field), std::string::npos)
          << GetParam() << ": error for " << bad.params.dump()
          << " does not name " << bad.field << ": " << e.what();
    }
  }
  const Trajectory base = SampleTrajectory();
  for (const json& params : it->second.valid) {
    SCOPED_TRACE(params.dump());
    EXPECT_NO_THROW(reward->ValidateParams(params));
    const ScoreResult first = reward->Score(base, params);
    EXPECT_TRUE(std::isfinite(first.score));
    EXPECT_TRUE(first.details.is_object());
    // Deterministic, including from several threads at once.
    std::vector<ScoreResult> parallel(4);
    std::vector<std::thread> threads;
    for (size_t k = 0; k < parallel.size(); ++k) {
      threads.emplace_back(
          [&, k] { parallel[k] = reward->Score(base, params); });
    }
    for (auto& th : threads) th.join();
    for (const auto& again : parallel) {
      EXPECT_EQ(again.score, first.score);
      EXPECT_EQ(again.details, first.details);
    }
    // Through the composite and a JSON round trip of the trajectory (the
    // wire the service uses) the result does not change.
    Trajectory t = base;
    t.reward_spec = {{"components",
                      {{{"name", "c"},
                        {"plugin", GetParam()},
                        {"weight", 0.5},
                        {"params", params}}}},
                     {"success", "c"}};
    const RewardResult direct = ScoreTrajectory(t);
    const Trajectory wired = TrajectoryFromJson(json::parse(ToJson(t).dump()));
    EXPECT_EQ(wired, t);
    const RewardResult via_wire = ScoreTrajectory(wired);
    EXPECT_EQ(via_wire, direct);
    EXPECT_FALSE(IsFlagged(direct)) << ComponentErrors(direct).dump();
    EXPECT_DOUBLE_EQ(direct.total, 0.5 * first.score);
    EXPECT_EQ(direct.components.at("c").score, first.score);
    const RewardResult back = RewardResultFromJson(
        json::parse(RewardResultToJson(direct).dump()), "result");
    EXPECT_EQ(back, direct);
    // A group of identical trajectories scores each like the single one
    // (group-level plug-ins see identical answers, which is their own case).
    if (!reward->group_level()) {
      const auto group = ScoreGroup({t, t, t});
      for (const auto& r : group) EXPECT_EQ(r, direct);
    }
  }
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
