// Read, create, metadata, and every bad request answered by an
// OperationOutcome with the right status and a message naming the problem.
#include "envs/ehr_fhir/fhir_service.h"

#include <gtest/gtest.h>

#include "tests/envs/ehr_fhir/ehr_test_data.h"

namespace clinrl::envs::ehr {
namespace {

class FhirServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { store_.BulkLoad(testing::HandBuiltRecord()); }
  FhirResponse Get(const std::string& path, const std::string& query = "") {
    return service_.Handle({"GET", path, ParseQueryString(query), "", ""});
  }
  FhirResponse Post(const std::string& path, const std::string& body,
                    const std::string& session = "") {
    return service_.Handle({"POST", path, {}, body, session});
  }
  // Asserts an OperationOutcome with `status` whose diagnostics mention
  // every one of `words`.
  void ExpectOutcome(const FhirResponse& r, int status,
                     std::vector<std::string> words) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = json::parse(r.body);
    ASSERT_EQ(j["resourceType"], "OperationOutcome") << r.body;
    const std::string diag = j["issue"][0]["diagnostics"];
    EXPECT_EQ(j["issue"][0]["severity"], "error");
    for (const auto& w : words) {
      EXPECT_NE(diag.find(w), std::string::npos)
          << "'" << w << "' not in: " << diag;
    }
  }
  json GoodObservation() {
    return {{"resourceType", "Observation"},
            {"status", "final"},
            {"code", {{"text", "BP"}}},
            {"subject", {{"reference", "Patient/P1"}}},
            {"effectiveDateTime", "2023-11-13T10:15:00+00:00"},
            {"valueString", "120/80 mmHg"}};
  }
  FhirStore store_;
  FhirService service_{&store_, "http://test/fhir/"};
};

TEST_F(FhirServiceTest, MetadataAndRead) {
  const FhirResponse meta = Get("metadata");
  ASSERT_EQ(meta.status, 200);
  const json cs = json::parse(meta.body);
  EXPECT_EQ(cs["resourceType"], "CapabilityStatement");
  EXPECT_EQ(cs["fhirVersion"], "4.0.1");
  EXPECT_EQ(cs["rest"][0]["resource"].size(), 8u);
  const FhirResponse p = Get("/fhir/Patient/P2");
  ASSERT_EQ(p.status, 200);
  EXPECT_EQ(json::parse(p.body)["name"][0]["family"], "Smithson");
  ExpectOutcome(Get("Patient/NOPE"), 404, {"Patient/NOPE"});
}

TEST_F(FhirServiceTest, CreateReturns201WithLocationAndIsSearchable) {
  const FhirResponse r = Post("Observation", GoodObservation().dump(), "sess");
  ASSERT_EQ(r.status, 201) << r.body;
  const json created = json::parse(r.body);
  const std::string id = created["id"];
  EXPECT_EQ(r.location, "http://test/fhir/Observation/" + id + "/_history/1");
  const FhirResponse read =
      service_.Handle({"GET", "Observation/" + id, {}, "", "sess"});
  EXPECT_EQ(read.status, 200);
  EXPECT_EQ(json::parse(read.body)["valueString"], "120/80 mmHg");
  const FhirResponse found = service_.Handle(
      {"GET", "Observation",
       ParseQueryString("patient=P1&date=2023-11-13T10:15:00Z"), "", "sess"});
  EXPECT_EQ(json::parse(found.body)["total"], 1);
}

// _elements (R4 3.1.1.5.9) keeps the named top-level elements of each
// entry, with resourceType, id and a SUBSETTED tag; links repeat it.
TEST_F(FhirServiceTest, ElementsCutEachEntryToTheNamedElements) {
  const FhirResponse r =
      Get("Observation",
          "patient=P1&code=2823-3&_sort=-date&_count=1&_elements="
          "effectiveDateTime,valueQuantity,notAnElement");
  ASSERT_EQ(r.status, 200) << r.body;
  const json bundle = json::parse(r.body);
  ASSERT_EQ(bundle["entry"].size(), 1u);
  const json& resource = bundle["entry"][0]["resource"];
  const FhirResponse whole =
      Get("Observation/" + resource["id"].get<std::string>());
  const json full = json::parse(whole.body);
  json expected = {{"resourceType", "Observation"},
                   {"id", full["id"]},
                   {"effectiveDateTime", full["effectiveDateTime"]},
                   {"valueQuantity", full["valueQuantity"]}};
  expected["meta"]["tag"] = json::array(
      {{{"system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"},
        {"code", "SUBSETTED"}}});
  EXPECT_EQ(resource, expected);
  EXPECT_NE(bundle["link"][1]["url"].get<std::string>().find(
                "_elements=effectiveDateTime%2CvalueQuantity%2CnotAnElement"),
            std::string::npos)
      << bundle["link"].dump();
  // Without it, whole resources.
  const json plain = json::parse(
      Get("Observation", "patient=P1&code=2823-3&_sort=-date&_count=1").body);
  EXPECT_EQ(plain["entry"][0]["resource"], full);
}

TEST_F(FhirServiceTest, BadSearchesAre400) {
  ExpectOutcome(Get("Observation", "patient=P1&colour=red"), 400,
                {"colour", "Observation", "supported"});
  ExpectOutcome(Get("Observation", "date=xx2023"), 400,
                {"date", "xx", "prefix"});
  ExpectOutcome(Get("Observation", "date=2023-13-01"), 400,
                {"date", "2023-13-01"});
  ExpectOutcome(Get("Observation", "_count=0"), 400, {"_count", "'0'"});
  ExpectOutcome(Get("Observation", "_count=ten"), 400, {"_count", "ten"});
  ExpectOutcome(Get("Observation", "_sort=colour"), 400, {"_sort", "colour"});
  ExpectOutcome(Get("Observation", "_format=xml"), 400, {"_format", "xml"});
  ExpectOutcome(Get("Observation", "_elements=code.coding"), 400,
                {"_elements", "code.coding", "top-level"});
  ExpectOutcome(Get("Patient", "patient=P1"), 400, {"patient", "Patient"});
  ExpectOutcome(Get("Observation", "patient=Encounter/1"), 400,
                {"Encounter/1"});
  ExpectOutcome(Get("Medication", ""), 404, {"Medication"});
  ExpectOutcome(Get("Observation/a/b", ""), 400, {"Observation/a/b"});
}

TEST_F(FhirServiceTest, BadCreatesAre400Or422) {
  ExpectOutcome(Post("Observation", "{not json"), 400, {"not valid JSON"});
  ExpectOutcome(Post("Observation", "[1,2]"), 400, {"JSON object", "array"});
  json wrong_type = GoodObservation();
  wrong_type["resourceType"] = "Condition";
  ExpectOutcome(Post("Observation", wrong_type.dump()), 400,
                {"resourceType", "Observation", "Condition"});
  json no_status = GoodObservation();
  no_status.erase("status");
  ExpectOutcome(Post("Observation", no_status.dump()), 422,
                {"Observation.status", "missing", "final"});
  json bad_status = GoodObservation();
  bad_status["status"] = "done";
  ExpectOutcome(Post("Observation", bad_status.dump()), 422,
                {"Observation.status", "\"done\"", "final"});
  json no_code = GoodObservation();
  no_code.erase("code");
  ExpectOutcome(Post("Observation", no_code.dump()), 422, {"Observation.code"});
  json ghost = GoodObservation();
  ghost["subject"]["reference"] = "Patient/GHOST";
  ExpectOutcome(Post("Observation", ghost.dump()), 422,
                {"Observation.subject", "Patient/GHOST", "does not exist"});
  json not_ref = GoodObservation();
  not_ref["subject"] = "P1";
  ExpectOutcome(Post("Observation", not_ref.dump()), 422,
                {"Observation.subject", "reference"});
  const json med = {{"resourceType", "MedicationRequest"},
                    {"status", "active"},
                    {"subject", {{"reference", "Patient/P1"}}},
                    {"medicationCodeableConcept", {{"text", "x"}}}};
  ExpectOutcome(Post("MedicationRequest", med.dump()), 422,
                {"MedicationRequest.intent", "order"});
  json no_subject = med;
  no_subject["intent"] = "order";
  no_subject.erase("subject");
  ExpectOutcome(Post("MedicationRequest", no_subject.dump()), 422,
                {"MedicationRequest.subject", "missing"});
  ExpectOutcome(service_.Handle({"PUT", "Observation/o1", {}, "{}", ""}), 405,
                {"PUT"});
  ExpectOutcome(Post("Observation/o1", GoodObservation().dump()), 405,
                {"POST"});
  // Nothing above was stored.
  EXPECT_EQ(store_.SessionRowCount(""), 15);
}

}  // namespace
}  // namespace clinrl::envs::ehr
