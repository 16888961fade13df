// Hand-built FHIR data whose search results are known by construction.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::envs::ehr::testing {

using nlohmann::json;

inline json Patient(const std::string& id, const std::string& given,
                    const std::string& family, const std::string& birth,
                    const std::string& gender) {
  return {
      {"resourceType", "Patient"},
      {"id", id},
      {"identifier",
       json::array({{{"system", "urn:mrn"}, {"value", "M" + id}}})},
      {"name",
       json::array({{{"family", family}, {"given", json::array({given})}}})},
      {"birthDate", birth},
      {"gender", gender}};
}

inline json Obs(const std::string& id, const std::string& patient,
                const std::string& system, const std::string& code,
                const std::string& when, const std::string& category,
                double value) {
  return {
      {"resourceType", "Observation"},
      {"id", id},
      {"status", "final"},
      {"category",
       json::array(
           {{{"coding", json::array({{{"system",
                                       "http://terminology.hl7.org/CodeSystem/"
                                       "observation-category"},
                                      {"code", category}}})}}})},
      {"code",
       {{"coding", json::array({{{"system", system}, {"code", code}}})}}},
      {"subject", {{"reference", "Patient/" + patient}}},
      {"effectiveDateTime", when},
      {"valueQuantity", {{"value", value}}}};
}

// Patients P1 John Smith 1980-05-02 male, P2 Jane Smithson 1990-01-15
// female, P3 Bob Jones 1980-05-02 male. P1 has potassium (LOINC 2823-3) on
// 11-10, 11-12 08:00, 11-13 06:00, magnesium on 11-12 09:00, a vital sign on
// 11-11 and a code 2823-3 of another system on 2023-01-01; P2 has potassium
// on 11-12.
inline std::vector<json> HandBuiltRecord() {
  const std::string loinc = "http://loinc.org";
  return {Patient("P1", "John", "Smith", "1980-05-02", "male"),
          Patient("P2", "Jane", "Smithson", "1990-01-15", "female"),
          Patient("P3", "Bob", "Jones", "1980-05-02", "male"),
          Obs("o1", "P1", loinc, "2823-3", "2023-11-10T08:00:00+00:00",
              "laboratory", 3.9),
          Obs("o2", "P1", loinc, "2823-3", "2023-11-12T08:00:00+00:00",
              "laboratory", 3.4),
          Obs("o3", "P1", loinc, "2823-3", "2023-11-13T06:00:00+00:00",
              "laboratory", 3.2),
          Obs("o4", "P1", loinc, "19123-9", "2023-11-12T09:00:00+00:00",
              "laboratory", 1.6),
          Obs("o5", "P1", loinc, "8867-4", "2023-11-11T12:00:00+00:00",
              "vital-signs", 72),
          Obs("o6", "P1", "http://other", "2823-3", "2023-01-01T00:00:00+00:00",
              "laboratory", 1),
          Obs("o7", "P2", loinc, "2823-3", "2023-11-12T07:00:00+00:00",
              "laboratory", 4.4),
          {{"resourceType", "MedicationRequest"},
           {"id", "m1"},
           {"status", "active"},
           {"intent", "order"},
           {"medicationCodeableConcept",
            {{"coding", json::array({{{"system", "http://hl7.org/fhir/sid/ndc"},
                                      {"code", "0338-1715-40"}}})}}},
           {"subject", {{"reference", "Patient/P1"}}},
           {"authoredOn", "2023-01-01T10:00:00+00:00"}},
          {{"resourceType", "MedicationRequest"},
           {"id", "m2"},
           {"status", "stopped"},
           {"intent", "order"},
           {"medicationCodeableConcept", {{"text", "old"}}},
           {"subject", {{"reference", "Patient/P1"}}},
           {"authoredOn", "2022-06-01"}},
          {{"resourceType", "Condition"},
           {"id", "c1"},
           {"code",
            {{"coding", json::array({{{"system", "http://snomed.info/sct"},
                                      {"code", "38341003"}}})}}},
           {"subject", {{"reference", "Patient/P1"}}}},
          {{"resourceType", "Condition"},
           {"id", "c2"},
           {"code",
            {{"coding", json::array({{{"system", "http://snomed.info/sct"},
                                      {"code", "44054006"}}})}}},
           {"subject", {{"reference", "Patient/P2"}}}},
          {{"resourceType", "Procedure"},
           {"id", "pr1"},
           {"status", "completed"},
           {"code",
            {{"coding", json::array({{{"system", "http://snomed.info/sct"},
                                      {"code", "73761001"}}})}}},
           {"subject", {{"reference", "Patient/P1"}}},
           {"performedDateTime", "2020-03-03"}}};
}

}  // namespace clinrl::envs::ehr::testing
