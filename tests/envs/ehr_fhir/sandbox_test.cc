// Per-session sandboxes: each session sees the shared record plus its own
// writes, never another session's, also under concurrent load.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "envs/ehr_fhir/fhir_service.h"
#include "tests/envs/ehr_fhir/ehr_test_data.h"

namespace clinrl::envs::ehr {
namespace {

json Order(const std::string& patient, const std::string& code) {
  return {{"resourceType", "ServiceRequest"},
          {"status", "active"},
          {"intent", "order"},
          {"code",
           {{"coding",
             json::array({{{"system", "http://loinc.org"}, {"code", code}}})}}},
          {"subject", {{"reference", "Patient/" + patient}}}};
}

int64_t Total(const FhirService& s, const std::string& session,
              const std::string& query) {
  const FhirResponse r =
      s.Handle({"GET", "ServiceRequest", ParseQueryString(query), "", session});
  EXPECT_EQ(r.status, 200) << r.body;
  return json::parse(r.body)["total"].get<int64_t>();
}

TEST(SandboxTest, SessionsSeeOnlyTheirOwnWrites) {
  FhirStore store;
  store.BulkLoad(testing::HandBuiltRecord());
  FhirService service(&store, "http://test/fhir/");
  ASSERT_EQ(
      service
          .Handle({"POST", "ServiceRequest", {}, Order("P1", "A").dump(), "a"})
          .status,
      201);
  ASSERT_EQ(
      service
          .Handle({"POST", "ServiceRequest", {}, Order("P1", "B").dump(), "b"})
          .status,
      201);
  EXPECT_EQ(Total(service, "a", "patient=P1"), 1);
  EXPECT_EQ(Total(service, "a", "patient=P1&code=B"), 0);
  EXPECT_EQ(Total(service, "b", "patient=P1&code=B"), 1);
  EXPECT_EQ(Total(service, "", "patient=P1"), 0);
  // Both sessions numbered their first write w1; reads resolve per session.
  const FhirResponse a =
      service.Handle({"GET", "ServiceRequest/w1", {}, "", "a"});
  const FhirResponse b =
      service.Handle({"GET", "ServiceRequest/w1", {}, "", "b"});
  EXPECT_EQ(json::parse(a.body)["code"]["coding"][0]["code"], "A");
  EXPECT_EQ(json::parse(b.body)["code"]["coding"][0]["code"], "B");
  EXPECT_EQ(service.Handle({"GET", "ServiceRequest/w1", {}, "", ""}).status,
            404);
  store.DropSession("a");
  EXPECT_EQ(Total(service, "a", "patient=P1"), 0);
  EXPECT_EQ(Total(service, "b", "patient=P1"), 1);
  EXPECT_EQ(store.SessionRowCount("a"), 0);
}

TEST(SandboxTest, ConcurrentSessionsStayIsolated) {
  FhirStore store;
  store.BulkLoad(testing::HandBuiltRecord());
  FhirService service(&store, "http://test/fhir/");
  constexpr int kSessions = 8, kWrites = 15;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < kSessions; ++s) {
    threads.emplace_back([&, s] {
      const std::string session = "sess" + std::to_string(s);
      for (int i = 0; i < kWrites; ++i) {
        const auto r =
            service.Handle({"POST",
                            "ServiceRequest",
                            {},
                            Order(s % 2 ? "P1" : "P2", session).dump(),
                            session});
        if (r.status != 201) ++failures;
        // Every read in between sees exactly this session's writes so far.
        const FhirResponse q =
            service.Handle({"GET", "ServiceRequest",
                            ParseQueryString("_count=100"), "", session});
        if (json::parse(q.body)["total"].get<int>() != i + 1) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (int s = 0; s < kSessions; ++s) {
    const std::string session = "sess" + std::to_string(s);
    EXPECT_EQ(Total(service, session, "code=" + session), kWrites);
    EXPECT_EQ(Total(service, session, "_count=1"), kWrites);
  }
  EXPECT_EQ(Total(service, "", "_count=1"), 0);
}

TEST(SandboxTest, ConcurrentCreatesInOneSessionGetDistinctIds) {
  FhirStore store;
  store.BulkLoad(testing::HandBuiltRecord());
  FhirService service(&store, "http://test/fhir/");
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        for (const char* session : {"", "shared-by-threads"}) {
          const auto r = service.Handle(
              {"POST", "ServiceRequest", {}, Order("P1", "X").dump(), session});
          if (r.status != 201) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Total(service, "shared-by-threads", "code=X&_count=1"), 80);
  EXPECT_EQ(Total(service, "", "code=X&_count=1"), 40);
}

}  // namespace
}  // namespace clinrl::envs::ehr
