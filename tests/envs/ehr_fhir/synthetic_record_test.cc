#include "envs/ehr_fhir/synthetic_record.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "envs/ehr_fhir/fhir_service.h"
#include "envs/ehr_fhir/fhir_time.h"

namespace clinrl::envs::ehr {
namespace {

TEST(SyntheticRecordTest, SeededAndReproducible) {
  const auto a = GenerateSyntheticRecord({20, 7});
  const auto b = GenerateSyntheticRecord({20, 7});
  const auto c = GenerateSyntheticRecord({20, 8});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(SyntheticRecordTest, ClinicallyShapedContent) {
  const auto record = GenerateSyntheticRecord({100, 0});
  const int64_t now = ParseFhirTime(kTaskClock)->lo;
  std::map<std::string, int> types;
  std::map<std::string, std::vector<double>> labs;
  int low_k = 0, after_clock = 0;
  for (const auto& r : record) {
    ++types[r["resourceType"].get<std::string>()];
    if (r["resourceType"] == "Observation" && r.contains("valueQuantity")) {
      const std::string code = r["code"]["coding"][0]["code"];
      const double v = r["valueQuantity"]["value"];
      labs[code].push_back(v);
      if (code == loinc::kPotassium && v < 3.5) ++low_k;
      if (ParseFhirTime(r["effectiveDateTime"].get<std::string>())->lo > now)
        ++after_clock;
    }
  }
  EXPECT_EQ(types["Patient"], 100);
  for (const char* t : {"Observation", "Condition", "MedicationRequest",
                        "Procedure", "Encounter", "AllergyIntolerance"}) {
    EXPECT_GT(types[t], 0) << t;
  }
  EXPECT_EQ(after_clock, 0);
  EXPECT_GT(low_k, 0);
  // Plausible physiological ranges for every analyte.
  const std::map<std::string, std::pair<double, double>> ranges = {
      {loinc::kMagnesium, {0.5, 3.5}},      {loinc::kPotassium, {2.0, 6.5}},
      {loinc::kSodium, {120, 160}},         {loinc::kGlucose, {30, 450}},
      {loinc::kCreatinine, {0.1, 6}},       {loinc::kHbA1c, {3.5, 13}},
      {loinc::kCapillaryGlucose, {30, 450}}};
  for (const auto& [code, range] : ranges) {
    ASSERT_FALSE(labs[code].empty()) << code;
    for (double v : labs[code]) {
      EXPECT_GE(v, range.first) << code;
      EXPECT_LE(v, range.second) << code;
    }
  }
}

TEST(SyntheticRecordTest, NdjsonRoundTripLoadsIntoTheServer) {
  std::string templ =
      (std::filesystem::temp_directory_path() / "clinrl-synth-test-XXXXXX")
          .string();
  ASSERT_NE(mkdtemp(templ.data()), nullptr);
  const std::string dir = templ;
  const auto record = GenerateSyntheticRecord({10, 3});
  WriteNdjsonDir(record, dir, {10, 3});
  auto back = ReadNdjsonDir(dir);
  EXPECT_EQ(back.size(), record.size());
  EXPECT_EQ(back.front()["resourceType"], "Patient");
  FhirStore store;
  store.BulkLoad(back);
  EXPECT_EQ(store.ResourceCount(), static_cast<int64_t>(record.size()));
  for (const char* f :
       {"Patient", "Observation", "Condition", "MedicationRequest", "Procedure",
        "Encounter", "AllergyIntolerance"}) {
    std::remove((dir + "/" + f + ".ndjson").c_str());
  }
  std::remove((dir + "/manifest.json").c_str());
  rmdir(dir.c_str());
  EXPECT_THROW(ReadNdjsonDir(dir), std::exception);
}

}  // namespace
}  // namespace clinrl::envs::ehr
