// Every task family's grader accepts a correct episode and rejects the
// near-misses: wrong answer, wrong dose or route, missing second order,
// extra order, wrong patient. Tasks come from a generated record.
#include "envs/ehr_fhir/grading/task_grader.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "envs/ehr_fhir/ehr_tasks.h"
#include "envs/ehr_fhir/synthetic_record.h"

namespace clinrl::envs::ehr {
namespace {

json Episode(json finish, const std::vector<json>& bodies) {
  json writes = json::array();
  for (const auto& b : bodies) {
    writes.push_back({{"resourceType", b.value("resourceType", "")},
                      {"body", b},
                      {"status", 201}});
  }
  return {{"finish", std::move(finish)}, {"writes", writes}};
}

std::vector<json> CorrectWrites(const json& key) {
  std::vector<json> out;
  for (const auto& w : key["required_writes"])
    out.push_back(CanonicalWrite(w, key["mode"]));
  return out;
}

bool Correct(const json& key, const json& episode) {
  return GradeEpisode(key, episode)["correct"].get<bool>();
}

class TaskGraderTest : public ::testing::TestWithParam<std::string> {
 protected:
  static const std::vector<json>& Record() {
    static const auto* record =
        new std::vector<json>(GenerateSyntheticRecord({100, 0}));
    return *record;
  }
};

TEST_P(TaskGraderTest, EveryFamilyAcceptsCorrectAndRejectsNearMisses) {
  const std::string mode = GetParam();
  std::map<std::string, std::set<std::string>> branches;
  for (const std::string split : {"test", "train"}) {
    for (const auto& task : BuildTasks(Record(), split, mode)) {
      const json& key = task.answer_key;
      SCOPED_TRACE(task.family + " " + task.patient + " " + key.dump());
      const json expected = key["answer"]["expected"];
      const auto writes = CorrectWrites(key);
      ASSERT_TRUE(Correct(key, Episode(expected, writes)))
          << GradeEpisode(key, Episode(expected, writes)).dump();
      // No FINISH at all.
      EXPECT_FALSE(
          Correct(key, {{"finish", nullptr}, {"writes", json::array()}}));
      // A wrong answer, where the answer is graded.
      if (key["answer"]["check"].get<bool>()) {
        json wrong = expected;
        if (wrong[0].is_number()) {
          wrong[0] = wrong[0].get<double>() + 1.0;
        } else {
          wrong[0] = wrong[0].get<std::string>() + "X";
        }
        EXPECT_FALSE(Correct(key, Episode(wrong, writes)));
      }
      // An extra order is forbidden everywhere.
      auto extra = writes;
      extra.push_back(CanonicalWrite({{"kind", "service_request"},
                                      {"patient", task.patient},
                                      {"system", "http://loinc.org"},
                                      {"code", "2160-0"},
                                      {"authored_on", kTaskClock}},
                                     mode));
      EXPECT_FALSE(Correct(key, Episode(expected, extra)));
      // A write that the server rejected changed nothing and is not graded.
      json rejected = Episode(expected, writes);
      rejected["writes"].push_back({{"resourceType", "ServiceRequest"},
                                    {"body", extra.back()},
                                    {"status", 422}});
      EXPECT_TRUE(Correct(key, rejected));
      if (writes.empty()) {
        branches[task.family].insert("none");
        if (key["answer"].value("accept_empty", false)) {
          EXPECT_TRUE(Correct(key, Episode(json::array(), {})));
        }
        continue;
      }
      branches[task.family].insert("act");
      // Missing any one required write.
      for (size_t drop = 0; drop < writes.size(); ++drop) {
        auto missing = writes;
        missing.erase(missing.begin() + static_cast<long>(drop));
        EXPECT_FALSE(Correct(key, Episode(expected, missing)));
      }
      // The same write twice.
      auto twice = writes;
      twice.push_back(writes[0]);
      EXPECT_FALSE(Correct(key, Episode(expected, twice)));
      // Wrong patient.
      auto other = writes;
      other[0]["subject"]["reference"] = "Patient/S0000000";
      EXPECT_FALSE(Correct(key, Episode(expected, other)));
      // Wrong dose / route, for medication orders.
      for (size_t i = 0; i < writes.size(); ++i) {
        if (writes[i]["resourceType"] != "MedicationRequest") continue;
        auto dose = writes;
        json& q =
            dose[i]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"];
        q["value"] = q["value"].get<double>() * 2;
        EXPECT_FALSE(Correct(key, Episode(expected, dose)));
        auto route = writes;
        route[i]["dosageInstruction"][0]["route"] =
            mode == kStrictR4
                ? json{{"coding",
                        json::array({{{"system", "http://snomed.info/sct"},
                                      {"code", "78421000"}}})}}
                : json("IM");
        EXPECT_FALSE(Correct(key, Episode(expected, route)));
        auto drug = writes;
        drug[i]["medicationCodeableConcept"]["coding"][0]["code"] =
            "0000-0000-00";
        EXPECT_FALSE(Correct(key, Episode(expected, drug)));
      }
      // Wrong time for a timed lab, wrong free text for a referral.
      for (size_t i = 0; i < writes.size(); ++i) {
        if (writes[i].contains("occurrenceDateTime")) {
          auto late = writes;
          late[i]["occurrenceDateTime"] = "2023-11-14T09:00:00+00:00";
          EXPECT_FALSE(Correct(key, Episode(expected, late)));
        }
        if (writes[i].contains("note")) {
          auto note = writes;
          note[i]["note"] = mode == kStrictR4
                                ? json::array({{{"text", "see chart"}}})
                                : json{{"text", "see chart"}};
          EXPECT_FALSE(Correct(key, Episode(expected, note)));
        }
        if (writes[i]["resourceType"] == "Observation") {
          auto bp = writes;
          if (mode == kStrictR4) {
            bp[i]["component"][0]["valueQuantity"]["value"] = 1;
          } else {
            bp[i]["valueString"] = "1/1 mmHg";
          }
          EXPECT_FALSE(Correct(key, Episode(expected, bp)));
        }
      }
      // The other mode's shapes do not pass this mode (documented side by
      // side in docs/envs/ehr_fhir.md), except where both agree.
      const std::string other_mode =
          mode == kStrictR4 ? kMedAgentBench : kStrictR4;
      std::vector<json> foreign;
      for (const auto& w : key["required_writes"])
        foreign.push_back(CanonicalWrite(w, other_mode));
      if (task.family == "record_vital" || task.family == "mg_replacement") {
        EXPECT_FALSE(Correct(key, Episode(expected, foreign)));
      }
    }
  }
  // Conditional families hold both "act" and "do nothing" tasks.
  for (const char* f :
       {"mg_replacement", "k_replacement_with_followup", "a1c_reorder"}) {
    EXPECT_EQ(branches[f], (std::set<std::string>{"act", "none"})) << f;
  }
  EXPECT_EQ(branches.size(), TaskFamilies().size());
}

INSTANTIATE_TEST_SUITE_P(Modes, TaskGraderTest,
                         ::testing::Values(std::string(kStrictR4),
                                           std::string(kMedAgentBench)));

TEST(TaskGraderKeyTest, MalformedKeysNameTheField) {
  json key = {{"family", "x"},
              {"mode", "loose"},
              {"patient", "S1"},
              {"answer", {{"check", true}, {"expected", json::array()}}},
              {"required_writes", json::array()}};
  try {
    ValidateAnswerKey(key);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("params.mode"), std::string::npos)
        << e.what();
  }
  key["mode"] = kStrictR4;
  key["required_writes"] =
      json::array({{{"kind", "telegram"}, {"patient", "S1"}}});
  try {
    ValidateAnswerKey(key);
    FAIL();
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("params.required_writes[0].kind"),
              std::string::npos)
        << e.what();
  }
}

TEST(TaskGraderKeyTest, FinishParsing) {
  EXPECT_EQ(ParseFinish("FINISH([1.5, \"x\"])"), json::array({1.5, "x"}));
  EXPECT_EQ(ParseFinish("  FINISH([])\n"), json::array());
  EXPECT_TRUE(ParseFinish("FINISH(1)").is_null());
  EXPECT_TRUE(ParseFinish("FINISH([1,)").is_null());
  EXPECT_TRUE(ParseFinish("GET x").is_null());
}

// Tool-call turns are read by the envs' reader (core/tool_call_text.h):
// Qwen's block and Llama's JSON call both count, and a call the env would
// refuse (arguments a string that holds no object) is no finish or write.
TEST(TaskGraderKeyTest, TranscriptReadsToolCallsAsTheEnvDoes) {
  const std::string post_args =
      "{\"url\": \"Observation\", \"payload\": {\"resourceType\": "
      "\"Observation\"}}";
  const json episode = EpisodeFromTranscript(
      {{"user", "task"},
       {"assistant", "<tool_call>\n{\"name\": \"fhir_post\", \"arguments\": " +
                         post_args + "}\n</tool_call>"},
       {"tool", std::string(kPostAccepted) + " Observation/1"},
       {"assistant",
        "<|python_tag|>{\"name\": \"fhir_post\", \"parameters\": " + post_args +
            "}"},
       {"tool", "POST refused"},
       {"assistant",
        "{\"name\": \"finish\", \"parameters\": {\"answer\": [7]}}"},
       {"assistant",
        "<tool_call>{\"name\": \"finish\", \"arguments\": "
        "\"[8]\"}</tool_call>"}});
  ASSERT_EQ(episode["writes"].size(), 2u) << episode.dump();
  EXPECT_EQ(episode["writes"][0]["status"], 201);
  EXPECT_EQ(episode["writes"][0]["resourceType"], "Observation");
  EXPECT_EQ(episode["writes"][1]["status"], 400);
  EXPECT_EQ(episode["finish"], json::array({7})) << episode.dump();
}

}  // namespace
}  // namespace clinrl::envs::ehr
