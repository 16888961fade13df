// The ehr_task reward plug-in grades with the env's grader, from the env's
// final info or, without it, from the transcript.
#include "rewards/ehr_task_reward.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "rewards/reward_registry.h"

namespace clinrl::rewards {
namespace {

json Key() {
  return {{"family", "k_replacement_with_followup"},
          {"mode", "strict_r4"},
          {"patient", "S1"},
          {"task_clock", "2023-11-13T10:15:00+00:00"},
          {"answer",
           {{"check", true}, {"expected", {3.2}}, {"accept_empty", true}}},
          {"required_writes",
           json::array({{{"kind", "service_request"},
                         {"patient", "S1"},
                         {"system", "http://loinc.org"},
                         {"code", "2823-3"},
                         {"priority", nullptr},
                         {"occurrence", "2023-11-14T08:00:00+00:00"},
                         {"note", nullptr},
                         {"authored_on", "2023-11-13T10:15:00+00:00"}}})}};
}

TEST(EhrTaskRewardTest, ScoresFromInfoAndFromTranscript) {
  auto reward = RewardRegistry::Global().Create("ehr_task");
  const json key = Key();
  reward->ValidateParams(key);
  const json body =
      envs::ehr::CanonicalWrite(key["required_writes"][0], "strict_r4");
  Trajectory t;
  t.info = {{"ehr",
             {{"finish", {3.2}},
              {"writes", json::array({{{"resourceType", "ServiceRequest"},
                                       {"body", body},
                                       {"status", 201}}})}}}};
  EXPECT_EQ(reward->Score(t, key).score, 1.0);
  t.info["ehr"]["finish"] = {3.3};
  const ScoreResult wrong = reward->Score(t, key);
  EXPECT_EQ(wrong.score, 0.0);
  EXPECT_FALSE(wrong.details["reasons"].empty());

  Trajectory from_turns;
  from_turns.turns = {
      {"user", "question", {}, {}},
      {"assistant",
       "POST http://x/fhir/ServiceRequest\n" + body.dump(),
       {},
       {}},
      {"user", std::string(envs::ehr::kPostAccepted) + " ...", {}, {}},
      {"assistant", "FINISH([3.2])", {}, {}},
      {"user", "The episode is finished.", {}, {}}};
  const ScoreResult rebuilt = reward->Score(from_turns, key);
  EXPECT_EQ(rebuilt.score, 1.0) << rebuilt.details.dump();
  EXPECT_EQ(rebuilt.details["episode_source"], "transcript");
  // The same POST, rejected by the server, is not a write.
  from_turns.turns[2].content = "The POST request failed with status 422";
  EXPECT_EQ(reward->Score(from_turns, key).score, 0.0);

  // The same episode through the tools (action_mode "tools").
  Trajectory from_calls;
  from_calls.turns = {
      {"user", "question", {}, {}},
      {"assistant",
       "<tool_call>\n{\"name\": \"fhir_post\", \"arguments\": {\"url\": "
       "\"http://x/fhir/ServiceRequest\", \"payload\": " +
           body.dump() + "}}\n</tool_call>",
       {},
       {}},
      {"tool", std::string(envs::ehr::kPostAccepted) + " ...", {}, {}},
      {"assistant",
       "<tool_call>\n{\"name\": \"finish\", \"arguments\": {\"answer\": "
       "[3.2]}}\n</tool_call>",
       {},
       {}},
      {"tool", "The episode is finished.", {}, {}}};
  const ScoreResult called = reward->Score(from_calls, key);
  EXPECT_EQ(called.score, 1.0) << called.details.dump();
  // Two calls in one turn are one invalid action to the env: no answer.
  from_calls.turns[3].content += from_calls.turns[3].content;
  EXPECT_EQ(reward->Score(from_calls, key).score, 0.0);

  json bad = key;
  bad["mode"] = "loose";
  EXPECT_THROW(reward->ValidateParams(bad), BadRequest);
}

}  // namespace
}  // namespace clinrl::rewards
