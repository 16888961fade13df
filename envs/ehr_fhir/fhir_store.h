// The FHIR record in SQLite. Resources are stored as JSON text with the
// columns searches need (patient, date range) and a token table (codes,
// categories, statuses, identifiers, name parts), indexed by patient and by
// resource so that patient+code searches stay fast on a few hundred thousand
// resources.
//
// Sandboxing: every row carries a session. The shared record is session "";
// a session sees the shared record plus its own rows, and DropSession removes
// its rows, so concurrent episodes never see each other's writes.
//
// Concurrency: WAL mode with one connection per concurrent caller (a pool),
// so readers never block each other; writes are serialised in-process.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "envs/ehr_fhir/fhir_search.h"

struct sqlite3;

namespace clinrl::envs::ehr {

using nlohmann::json;

struct SearchPage {
  int64_t total = 0;
  std::vector<std::string> ids;
  std::vector<std::string> resources;  // JSON text, in page order
};

class FhirStore {
 public:
  // A fresh, empty store in a private temporary directory (removed again by
  // the destructor).
  FhirStore();
  ~FhirStore();
  FhirStore(const FhirStore&) = delete;
  FhirStore& operator=(const FhirStore&) = delete;

  // Adds resources to the shared record in one transaction. Each needs
  // resourceType and id; throws BadRequest naming the index otherwise.
  void BulkLoad(const std::vector<json>& resources);
  // Stores one resource (id already assigned) for `session` ("" = shared).
  void Insert(const json& resource, const std::string& session);

  std::optional<std::string> Read(const std::string& type,
                                  const std::string& id,
                                  const std::string& session) const;
  bool Exists(const std::string& type, const std::string& id,
              const std::string& session) const;
  SearchPage Search(const SearchQuery& query, const std::string& session) const;
  // How many rows a session wrote (used to give its writes stable ids).
  int64_t SessionRowCount(const std::string& session) const;
  void DropSession(const std::string& session);
  int64_t ResourceCount() const;

 private:
  struct Connection;
  class Lease;
  Lease Acquire() const;

  std::string dir_;
  std::string path_;
  mutable std::mutex pool_mu_;
  mutable std::vector<std::unique_ptr<Connection>> idle_;
  std::mutex write_mu_;
};

}  // namespace clinrl::envs::ehr
