// One loaded synthetic record per process and source, shared by every env
// session: the resources, the embedded FHIR store over them (made on first
// use), and the task lists per (split, mode).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "envs/ehr_fhir/ehr_tasks.h"
#include "envs/ehr_fhir/fhir_service.h"
#include "envs/ehr_fhir/fhir_store.h"

namespace clinrl::envs::ehr {

// The API base agents are shown for the embedded server (MedAgentBench's).
inline constexpr const char* kEmbeddedApiBase = "http://localhost:8080/fhir/";

struct EhrRecordSource {
  std::string data_dir;  // NDJSON from `clinrl ehr synth`; "" = generate
  int64_t patients = 100;
  uint64_t seed = 0;
};

// The EHR envs' record options (patients, data_seed, data), for their
// options' Visit (envs/env_options.h).
template <class V>
void VisitRecordSource(V& v, EhrRecordSource& source) {
  v.AtLeast("patients", source.patients, int64_t{1},
            "synthetic patients to generate (without data)");
  // The record's seed is unsigned; the option is a JSON integer >= 0.
  int64_t data_seed = static_cast<int64_t>(source.seed);
  v.AtLeast("data_seed", data_seed, int64_t{0}, "synthetic record seed");
  source.seed = static_cast<uint64_t>(data_seed);
  v("data", source.data_dir,
    "NDJSON folder from `clinrl ehr synth`; empty = generate");
}

class EhrRecord {
 public:
  explicit EhrRecord(std::vector<json> resources);
  const std::vector<json>& resources() const { return resources_; }
  // The embedded server, loaded on first call.
  const FhirService& Service();
  // Built once per (split, mode, selection) and kept.
  const std::vector<EhrTask>& Tasks(const std::string& split,
                                    const std::string& mode,
                                    const TaskSelection& selection = {});

 private:
  std::vector<json> resources_;
  std::mutex mu_;
  std::unique_ptr<FhirStore> store_;
  std::unique_ptr<FhirService> service_;
  std::map<std::string, std::vector<EhrTask>> tasks_;
};

// Cached per source for the life of the process.
std::shared_ptr<EhrRecord> SharedEhrRecord(const EhrRecordSource& source);

}  // namespace clinrl::envs::ehr
