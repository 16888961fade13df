// The parts the EHR envs share (ehr_fhir and ehr_workflow): the agent
// session (its replies, sandbox, write log and invalid-action count), the
// patient split and the round-robin task pick.
#include "envs/ehr_fhir/ehr_session.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "envs/ehr_fhir/ehr_tasks.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/ehr_fhir/synthetic_record.h"
#include "tests/envs/ehr_fhir/ehr_test_data.h"

namespace clinrl::envs::ehr {
namespace {

const std::string kBase = kEmbeddedApiBase;

std::string OrderFor(const std::string& patient, const std::string& code) {
  return "POST " + kBase + "ServiceRequest\n" +
         json{{"resourceType", "ServiceRequest"},
              {"status", "active"},
              {"intent", "order"},
              {"code",
               {{"coding", json::array({{{"system", "http://loinc.org"},
                                         {"code", code}}})}}},
              {"subject", {{"reference", "Patient/" + patient}}}}
             .dump();
}

std::string Act(EhrSession& s, const std::string& text) {
  return s.Run(ParseAgentAction(text));
}

// The ServiceRequests of P1 the session sees.
int64_t Orders(EhrSession& s) {
  const std::string reply =
      Act(s, "GET " + kBase + "ServiceRequest?patient=P1");
  const std::string head = "Here is the response from the GET request:\n";
  EXPECT_EQ(reply.rfind(head, 0), 0u) << reply;
  return json::parse(reply.substr(head.size()))["total"].get<int64_t>();
}

TEST(EhrSessionTest, RunsActionsInItsOwnSandboxAndLogsThePosts) {
  auto record = std::make_shared<EhrRecord>(testing::HandBuiltRecord());
  EhrSession a(record, "t"), b(record, "t");
  EXPECT_NE(a.id(), b.id());
  EXPECT_EQ(a.id().rfind("t", 0), 0u);
  EXPECT_EQ(a.ApiBase(), kBase);

  const std::string reply = Act(a, OrderFor("P1", "2823-3"));
  EXPECT_EQ(reply.rfind(kPostAccepted, 0), 0u) << reply;
  ASSERT_EQ(a.writes().size(), 1u);
  EXPECT_EQ(a.writes()[0]["resourceType"], "ServiceRequest");
  EXPECT_EQ(a.writes()[0]["url"], "ServiceRequest");
  EXPECT_EQ(a.writes()[0]["status"], 201);
  EXPECT_EQ(a.ExecutedWrites(), 1);
  EXPECT_EQ(Orders(a), 1);
  EXPECT_EQ(Orders(b), 0);  // another session's sandbox
  EXPECT_EQ(a.Episode(json::array({1})),
            (json{{"finish", json::array({1})}, {"writes", a.writes()}}));

  // A write the server rejects is logged, but not executed.
  const std::string rejected = Act(a, "POST " + kBase +
                                          "ServiceRequest\n"
                                          "{\"resourceType\": "
                                          "\"ServiceRequest\"}");
  EXPECT_NE(rejected.find("The POST request failed with status"),
            std::string::npos)
      << rejected;
  EXPECT_EQ(a.writes().size(), 2u);
  EXPECT_EQ(a.ExecutedWrites(), 1);
  EXPECT_EQ(a.invalid_actions(), 0);

  a.Restart();  // a new episode: the sandbox's rows are gone
  EXPECT_TRUE(a.writes().empty());
  EXPECT_EQ(Orders(a), 0);
}

TEST(EhrSessionTest, InvalidActionsAreAnsweredAndCounted) {
  auto record = std::make_shared<EhrRecord>(testing::HandBuiltRecord());
  EhrSession s(record, "t");
  EXPECT_EQ(
      Act(s, "GET http://elsewhere/fhir/Patient").rfind("Invalid action: ", 0),
      0u);
  EXPECT_EQ(Act(s, "POST " + kBase + "ServiceRequest\n{not json")
                .rfind("Invalid POST request: the body is not JSON (", 0),
            0u);
  EXPECT_EQ(Act(s, "I would check the labs").rfind("Invalid action: ", 0), 0u);
  EXPECT_EQ(s.invalid_actions(), 3);
  EXPECT_TRUE(s.writes().empty());
  // FINISH is the env's, never the session's.
  EXPECT_THROW(Act(s, "FINISH([1])"), InternalError);
  s.Restart();
  EXPECT_EQ(s.invalid_actions(), 0);
}

TEST(EhrSessionTest, TestPatientsAreThirtyPercentAndTheTestSplit) {
  int test = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = "S" + std::to_string(1000000 + i);
    const int bucket = PatientSplitBucket(id);
    ASSERT_GE(bucket, 0);
    ASSERT_LT(bucket, 10);
    EXPECT_EQ(IsTestPatient(id), bucket < kTestPatientBuckets);
    test += IsTestPatient(id) ? 1 : 0;
  }
  EXPECT_NEAR(test, 300, 60);
  // Pinned: these buckets decide which patients no env trains on.
  EXPECT_EQ(PatientSplitBucket("S1843149"), 0);
  EXPECT_EQ(PatientSplitBucket("S1272582"), 1);
  EXPECT_EQ(PatientSplitBucket("S1376737"), 3);
  EXPECT_EQ(PatientSplitBucket("S1122990"), 8);
  const auto record = GenerateSyntheticRecord({100, 0});
  for (const std::string split : {"train", "test"}) {
    const auto tasks = BuildTasks(record, split, kStrictR4);
    ASSERT_FALSE(tasks.empty());
    for (const auto& t : tasks) {
      EXPECT_EQ(IsTestPatient(t.patient), split == "test") << t.patient;
    }
  }
}

TEST(EhrSessionTest, PickRoundRobinTakesEachBranchInTurn) {
  struct Candidate {
    std::string branch;
    std::string task;
  };
  const std::vector<Candidate> all = {
      {"b", "b1"}, {"a", "a1"}, {"a", "a2"}, {"b", "b2"}, {"c", "c1"}};
  EXPECT_EQ(PickRoundRobin(all, 4),
            (std::vector<std::string>{"a1", "b1", "c1", "a2"}));
  EXPECT_EQ(PickRoundRobin(all, 10),
            (std::vector<std::string>{"a1", "b1", "c1", "a2", "b2"}));
  EXPECT_TRUE(PickRoundRobin(all, 0).empty());
}

}  // namespace
}  // namespace clinrl::envs::ehr
