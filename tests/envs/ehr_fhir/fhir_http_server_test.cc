// The FHIR service over real HTTP on 127.0.0.1 (an ephemeral port).
#include "envs/ehr_fhir/fhir_http_server.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include "tests/envs/ehr_fhir/ehr_test_data.h"

namespace clinrl::envs::ehr {
namespace {

TEST(FhirHttpServerTest, ServesReadSearchCreateAndErrors) {
  FhirStore store;
  store.BulkLoad(testing::HandBuiltRecord());
  FhirHttpServer server(&store, {"127.0.0.1", 0, 4});
  server.Start();
  ASSERT_GT(server.port(), 0);
  httplib::Client client("127.0.0.1", server.port());
  client.set_keep_alive(true);

  auto meta = client.Get("/fhir/metadata");
  ASSERT_TRUE(meta) << httplib::to_string(meta.error());
  EXPECT_EQ(meta->status, 200);
  EXPECT_EQ(meta->get_header_value("Content-Type"), "application/fhir+json");

  auto search = client.Get(
      "/fhir/"
      "Observation?patient=P1&code=http%3A%2F%2Floinc.org%7C2823-3&_format="
      "json");
  ASSERT_TRUE(search);
  EXPECT_EQ(search->status, 200);
  const json bundle = json::parse(search->body);
  EXPECT_EQ(bundle["total"], 3);
  EXPECT_EQ(bundle["entry"][0]["fullUrl"].get<std::string>().rfind(
                server.base_url(), 0),
            0u);

  const json obs = {{"resourceType", "Observation"},
                    {"status", "final"},
                    {"code", {{"text", "BP"}}},
                    {"subject", {{"reference", "Patient/P2"}}}};
  const httplib::Headers sandbox = {{"X-Clinrl-Session", "h1"}};
  auto created = client.Post("/fhir/Observation", sandbox, obs.dump(),
                             "application/fhir+json");
  ASSERT_TRUE(created);
  EXPECT_EQ(created->status, 201) << created->body;
  EXPECT_EQ(created->get_header_value("Location"),
            server.base_url() + "Observation/w1/_history/1");
  auto mine = client.Get("/fhir/Observation?patient=P2", sandbox);
  auto shared = client.Get("/fhir/Observation?patient=P2");
  ASSERT_TRUE(mine && shared);
  EXPECT_EQ(json::parse(mine->body)["total"], 2);
  EXPECT_EQ(json::parse(shared->body)["total"], 1);

  auto bad = client.Get("/fhir/Observation?colour=red");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["resourceType"], "OperationOutcome");
  auto missing = client.Get("/fhir/Patient/NOPE");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto unprocessable =
      client.Post("/fhir/Observation", "{\"resourceType\":\"Observation\"}",
                  "application/fhir+json");
  ASSERT_TRUE(unprocessable);
  EXPECT_EQ(unprocessable->status, 422);
  // Closing the keep-alive connection first lets Stop() return at once.
  client.stop();
  server.Stop();
}

TEST(FhirHttpServerTest, UnbindableAddressIsAClearError) {
  FhirStore store;
  FhirHttpServer server(&store, {"256.0.0.1", 0, 2});
  try {
    server.Start();
    FAIL() << "bound an invalid address";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("256.0.0.1"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace clinrl::envs::ehr
