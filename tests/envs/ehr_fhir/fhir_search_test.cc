// Each search parameter and date prefix against the hand-built record, whose
// matches are known by construction (ehr_test_data.h).
#include <gtest/gtest.h>

#include <set>

#include "envs/ehr_fhir/fhir_service.h"
#include "tests/envs/ehr_fhir/ehr_test_data.h"

namespace clinrl::envs::ehr {
namespace {

using Ids = std::vector<std::string>;

class FhirSearchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    store_ = new FhirStore();
    store_->BulkLoad(testing::HandBuiltRecord());
    service_ = new FhirService(store_, "http://test/fhir/");
  }
  static void TearDownTestSuite() {
    delete service_;
    delete store_;
  }
  // The ids of a search, in the server's order; fails on a non-200 reply.
  static Ids Search(const std::string& type, const std::string& query) {
    const FhirResponse r =
        service_->Handle({"GET", type, ParseQueryString(query), "", ""});
    EXPECT_EQ(r.status, 200) << type << "?" << query << ": " << r.body;
    const json bundle = json::parse(r.body);
    Ids ids;
    for (const auto& e : bundle.value("entry", json::array())) {
      ids.push_back(e["resource"]["id"].get<std::string>());
    }
    EXPECT_EQ(bundle["total"].get<size_t>(), ids.size()) << query;
    return ids;
  }
  static Ids Sorted(const std::string& type, const std::string& query) {
    Ids ids = Search(type, query);
    std::sort(ids.begin(), ids.end());
    return ids;
  }
  static FhirStore* store_;
  static FhirService* service_;
};
FhirStore* FhirSearchTest::store_ = nullptr;
FhirService* FhirSearchTest::service_ = nullptr;

TEST_F(FhirSearchTest, PatientParameters) {
  EXPECT_EQ(Sorted("Patient", "name=smi"), (Ids{"P1", "P2"}));
  EXPECT_EQ(Sorted("Patient", "name=JOHN"), (Ids{"P1"}));
  EXPECT_EQ(Sorted("Patient", "name=jones"), (Ids{"P3"}));
  EXPECT_EQ(Sorted("Patient", "family=Smith"), (Ids{"P1", "P2"}));
  EXPECT_EQ(Sorted("Patient", "family=Smiths"), (Ids{"P2"}));
  EXPECT_EQ(Sorted("Patient", "given=jo"), (Ids{"P1"}));
  EXPECT_EQ(Sorted("Patient", "given=bob&family=jones"), (Ids{"P3"}));
  EXPECT_EQ(Sorted("Patient", "given=bob&family=smith"), Ids{});
  EXPECT_EQ(Sorted("Patient", "identifier=MP1"), (Ids{"P1"}));
  EXPECT_EQ(Sorted("Patient", "identifier=urn:mrn|MP2"), (Ids{"P2"}));
  EXPECT_EQ(Sorted("Patient", "identifier=urn:other|MP2"), Ids{});
  EXPECT_EQ(Sorted("Patient", "gender=female"), (Ids{"P2"}));
  EXPECT_EQ(Sorted("Patient", "gender=male,female"), (Ids{"P1", "P2", "P3"}));
  EXPECT_EQ(Sorted("Patient", "birthdate=1980-05-02"), (Ids{"P1", "P3"}));
  EXPECT_EQ(Sorted("Patient", "birthdate=1980"), (Ids{"P1", "P3"}));
  EXPECT_EQ(Sorted("Patient", "birthdate=gt1985"), (Ids{"P2"}));
  EXPECT_EQ(Sorted("Patient", "birthdate=le1980-05-02"), (Ids{"P1", "P3"}));
  EXPECT_EQ(Sorted("Patient", "name=smi&birthdate=1980-05-02"), (Ids{"P1"}));
  EXPECT_EQ(Sorted("Patient", "_id=P3"), (Ids{"P3"}));
}

TEST_F(FhirSearchTest, ObservationPatientCodeCategory) {
  EXPECT_EQ(Sorted("Observation", "patient=P1&code=2823-3"),
            (Ids{"o1", "o2", "o3", "o6"}));
  EXPECT_EQ(Sorted("Observation", "patient=P1&code=http://loinc.org|2823-3"),
            (Ids{"o1", "o2", "o3"}));
  EXPECT_EQ(Sorted("Observation", "patient=P1&code=http://other|2823-3"),
            (Ids{"o6"}));
  EXPECT_EQ(Sorted("Observation", "subject=Patient/P1&code=2823-3,19123-9"),
            (Ids{"o1", "o2", "o3", "o4", "o6"}));
  EXPECT_EQ(Sorted("Observation", "subject=P2"), (Ids{"o7"}));
  EXPECT_EQ(Sorted("Observation", "code=2823-3&patient=P1,P2"),
            (Ids{"o1", "o2", "o3", "o6", "o7"}));
  EXPECT_EQ(Sorted("Observation", "patient=P1&category=vital-signs"),
            (Ids{"o5"}));
  EXPECT_EQ(Sorted("Observation",
                   "patient=P1&category=http://terminology.hl7.org/CodeSystem/"
                   "observation-category|vital-signs"),
            (Ids{"o5"}));
  EXPECT_EQ(Sorted("Observation", "patient=P3"), Ids{});
}

TEST_F(FhirSearchTest, ObservationDatePrefixes) {
  const std::string p = "patient=P1&code=http://loinc.org|2823-3&date=";
  EXPECT_EQ(Sorted("Observation", p + "2023-11-12"), (Ids{"o2"}));
  EXPECT_EQ(Sorted("Observation", p + "eq2023-11-12"), (Ids{"o2"}));
  EXPECT_EQ(Sorted("Observation", p + "ne2023-11-12"), (Ids{"o1", "o3"}));
  EXPECT_EQ(Sorted("Observation", p + "gt2023-11-12"), (Ids{"o3"}));
  EXPECT_EQ(Sorted("Observation", p + "ge2023-11-12"), (Ids{"o2", "o3"}));
  EXPECT_EQ(Sorted("Observation", p + "lt2023-11-12"), (Ids{"o1"}));
  EXPECT_EQ(Sorted("Observation", p + "le2023-11-12"), (Ids{"o1", "o2"}));
  // Instants: the last 24 hours before the task clock.
  EXPECT_EQ(Sorted("Observation", p + "ge2023-11-12T10:15:00%2B00:00"),
            (Ids{"o3"}));
  EXPECT_EQ(Sorted("Observation", p + "gt2023-11-12T08:00:00Z"), (Ids{"o3"}));
  EXPECT_EQ(Sorted("Observation", p + "ge2023-11-12T08:00:00Z"),
            (Ids{"o2", "o3"}));
  EXPECT_EQ(Sorted("Observation", p + "lt2023-11-12T08:00:00Z"), (Ids{"o1"}));
  EXPECT_EQ(Sorted("Observation", p + "le2023-11-12T08:00:00Z"),
            (Ids{"o1", "o2"}));
  // Repeated parameters AND; a month is a range.
  EXPECT_EQ(Sorted("Observation", p + "ge2023-11-11&date=lt2023-11-13"),
            (Ids{"o2"}));
  EXPECT_EQ(Sorted("Observation", p + "2023-11"), (Ids{"o1", "o2", "o3"}));
}

TEST_F(FhirSearchTest, OtherResourceTypes) {
  EXPECT_EQ(Sorted("MedicationRequest", "patient=P1"), (Ids{"m1", "m2"}));
  EXPECT_EQ(Sorted("MedicationRequest", "patient=P1&status=active"),
            (Ids{"m1"}));
  EXPECT_EQ(Sorted("MedicationRequest", "patient=P1&authoredon=ge2023"),
            (Ids{"m1"}));
  EXPECT_EQ(Sorted("MedicationRequest", "patient=P1&authoredon=lt2023-01-01"),
            (Ids{"m2"}));
  EXPECT_EQ(Sorted("MedicationRequest", "code=0338-1715-40"), (Ids{"m1"}));
  EXPECT_EQ(Sorted("Condition", "patient=P1&code=38341003"), (Ids{"c1"}));
  EXPECT_EQ(Sorted("Condition", "patient=P1&code=44054006"), Ids{});
  EXPECT_EQ(Sorted("Condition", "code=http://snomed.info/sct|44054006"),
            (Ids{"c2"}));
  EXPECT_EQ(Sorted("Procedure", "patient=P1&code=73761001"), (Ids{"pr1"}));
  EXPECT_EQ(Sorted("Procedure", "patient=P2"), Ids{});
}

TEST_F(FhirSearchTest, SortOrders) {
  const std::string q = "patient=P1&code=http://loinc.org|2823-3&_format=json";
  EXPECT_EQ(Search("Observation", q + "&_sort=-date"), (Ids{"o3", "o2", "o1"}));
  EXPECT_EQ(Search("Observation", q + "&_sort=date"), (Ids{"o1", "o2", "o3"}));
  EXPECT_EQ(Search("Observation", q + "&_sort=-_id"), (Ids{"o3", "o2", "o1"}));
  EXPECT_EQ(Search("Patient", "_sort=-birthdate&gender=male,female")[0], "P2");
}

TEST_F(FhirSearchTest, PagingFollowsNextLinks) {
  std::string url = "patient=P1&_count=2&_sort=date";
  std::vector<std::string> seen;
  int pages = 0;
  while (true) {
    const FhirResponse r =
        service_->Handle({"GET", "Observation", ParseQueryString(url), "", ""});
    ASSERT_EQ(r.status, 200);
    const json b = json::parse(r.body);
    EXPECT_EQ(b["resourceType"], "Bundle");
    EXPECT_EQ(b["type"], "searchset");
    EXPECT_EQ(b["total"], 6);
    ++pages;
    for (const auto& e : b["entry"]) {
      const std::string id = e["resource"]["id"];
      seen.push_back(id);
      EXPECT_EQ(e["fullUrl"], "http://test/fhir/Observation/" + id);
      EXPECT_EQ(e["search"]["mode"], "match");
    }
    EXPECT_LE(b["entry"].size(), 2u);
    std::string next;
    bool has_self = false;
    for (const auto& l : b["link"]) {
      if (l["relation"] == "next") next = l["url"];
      if (l["relation"] == "self") has_self = true;
    }
    EXPECT_TRUE(has_self);
    if (next.empty()) break;
    ASSERT_EQ(next.rfind("http://test/fhir/Observation?", 0), 0u) << next;
    url = next.substr(next.find('?') + 1);
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (Ids{"o6", "o1", "o5", "o2", "o4", "o3"}));
}

}  // namespace
}  // namespace clinrl::envs::ehr
