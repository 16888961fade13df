#include "envs/ehr_fhir/ehr_record.h"

#include <fmt/format.h>

#include "envs/ehr_fhir/synthetic_record.h"

namespace clinrl::envs::ehr {

EhrRecord::EhrRecord(std::vector<json> resources)
    : resources_(std::move(resources)) {}

const FhirService& EhrRecord::Service() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!service_) {
    store_ = std::make_unique<FhirStore>();
    store_->BulkLoad(resources_);
    service_ = std::make_unique<FhirService>(store_.get(), kEmbeddedApiBase);
  }
  return *service_;
}

const std::vector<EhrTask>& EhrRecord::Tasks(const std::string& split,
                                             const std::string& mode,
                                             const TaskSelection& selection) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key =
      json{split, mode, selection.families, selection.per_family}.dump();
  auto it = tasks_.find(key);
  if (it == tasks_.end()) {
    it = tasks_.emplace(key, BuildTasks(resources_, split, mode, selection))
             .first;
  }
  return it->second;
}

std::shared_ptr<EhrRecord> SharedEhrRecord(const EhrRecordSource& source) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<EhrRecord>> cache;
  const std::string key =
      source.data_dir.empty()
          ? fmt::format("synth:{}:{}", source.patients, source.seed)
          : "dir:" + source.data_dir;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  std::vector<json> resources =
      source.data_dir.empty()
          ? GenerateSyntheticRecord({source.patients, source.seed})
          : ReadNdjsonDir(source.data_dir);
  auto record = std::make_shared<EhrRecord>(std::move(resources));
  cache.emplace(key, record);
  return record;
}

}  // namespace clinrl::envs::ehr
