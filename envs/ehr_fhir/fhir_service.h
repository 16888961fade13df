// The FHIR R4 REST interactions over a FhirStore, independent of transport:
// the HTTP server (fhir_http_server.h) and the env's in-process calls both go
// through Handle, so they answer identically.
//
//   GET  /metadata                CapabilityStatement
//   GET  /[type]/[id]             read
//   GET  /[type]?params           search, Bundle searchset with paging links
//   POST /[type]                  create: 201 + Location, or 400/422
//                                 OperationOutcome
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "envs/ehr_fhir/fhir_search.h"
#include "envs/ehr_fhir/fhir_store.h"

namespace clinrl::envs::ehr {

struct FhirRequest {
  std::string method;  // GET | POST | ...
  std::string path;    // "Observation", "Patient/S1", "metadata" (no base)
  QueryParams query;
  std::string body;
  std::string session;  // "" = the shared record
};

struct FhirResponse {
  int status = 200;
  std::string body;      // application/fhir+json
  std::string location;  // for 201 Created
};

class FhirService {
 public:
  // `base_url` ends with '/' and prefixes fullUrl, Location and paging links.
  FhirService(FhirStore* store, std::string base_url);

  // Never throws for a bad request: every failure is an OperationOutcome.
  FhirResponse Handle(const FhirRequest& request) const;

  const std::string& base_url() const { return base_url_; }
  FhirStore* store() const { return store_; }

 private:
  FhirResponse Read(const std::string& type, const std::string& id,
                    const std::string& session) const;
  FhirResponse Search(const std::string& type, const FhirRequest& r) const;
  FhirResponse Create(const std::string& type, const FhirRequest& r) const;
  FhirResponse Capability() const;

  FhirStore* store_;
  std::string base_url_;
  // Id assignment reads the row count and then inserts: two creates in the
  // same session must not interleave there.
  mutable std::mutex create_mu_;
};

// {"resourceType": "OperationOutcome", "issue": [{severity, code,
// diagnostics}]}
std::string OperationOutcome(const std::string& code,
                             const std::string& diagnostics);

// Checks the fields R4 requires of a resource before it is stored (cardinality
// 1..1 elements and status/intent codes); returns "" or the first problem,
// naming the field, the value and what was expected.
std::string ValidateRequiredFields(const nlohmann::json& resource);

}  // namespace clinrl::envs::ehr
