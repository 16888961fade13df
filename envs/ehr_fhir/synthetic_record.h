// A seeded synthetic EHR: patients with demographics, problem lists,
// medications (RxNorm + NDC), years of LOINC-coded lab series with trends
// and abnormal episodes, vital signs, encounters (some admissions ongoing at
// the task clock), procedures and allergies. The same (patients, seed) gives
// byte-identical resources on every machine: only integer RNG output and
// explicit arithmetic decide values.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::envs::ehr {

using nlohmann::json;

// MedAgentBench's fixed "now"; every generated date lies before it.
inline constexpr const char* kTaskClock = "2023-11-13T10:15:00+00:00";

// LOINC codes the generator and the task families share.
namespace loinc {
inline constexpr const char* kMagnesium = "19123-9";
inline constexpr const char* kPotassium = "2823-3";
inline constexpr const char* kSodium = "2951-2";
inline constexpr const char* kGlucose = "2345-7";
inline constexpr const char* kCapillaryGlucose = "2339-0";
inline constexpr const char* kCreatinine = "2160-0";
inline constexpr const char* kHbA1c = "4548-4";
inline constexpr const char* kBloodPressurePanel = "85354-9";
inline constexpr const char* kSystolic = "8480-6";
inline constexpr const char* kDiastolic = "8462-4";
}  // namespace loinc

struct SynthOptions {
  int64_t patients = 100;
  uint64_t seed = 0;
};

// All resources, patients first; each has resourceType and id.
std::vector<json> GenerateSyntheticRecord(const SynthOptions& options);

// Writes one NDJSON file per resource type ("Observation.ndjson", ...) and a
// manifest.json into `dir` (created if missing).
void WriteNdjsonDir(const std::vector<json>& resources, const std::string& dir,
                    const SynthOptions& options);
// Reads every *.ndjson in `dir`; errors name the file and line.
std::vector<json> ReadNdjsonDir(const std::string& dir);

}  // namespace clinrl::envs::ehr
