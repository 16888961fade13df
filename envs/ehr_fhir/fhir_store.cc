#include "envs/ehr_fhir/fhir_store.h"

#include <fmt/format.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "core/error.h"
#include "envs/ehr_fhir/fhir_time.h"

namespace clinrl::envs::ehr {
namespace {

void CheckSqlite(sqlite3* db, int rc, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    throw InternalError(fmt::format("sqlite {} failed: {} ({})", what,
                                    db ? sqlite3_errmsg(db) : "no handle",
                                    sqlite3_errstr(rc)));
  }
}

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw InternalError(
        fmt::format("sqlite exec '{}' failed: {}", sql.substr(0, 60), msg));
  }
}

std::string Lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct Token {
  std::string param, system, value;
};

struct IndexEntry {
  std::string patient;
  std::optional<TimeRange> date;
  std::vector<Token> tokens;
};

void AddCodings(const json& concept, const std::string& param,
                std::vector<Token>* out) {
  if (!concept.is_object()) return;
  auto codings = concept.find("coding");
  if (codings == concept.end() || !codings->is_array()) return;
  for (const auto& c : *codings) {
    if (!c.is_object() || !c.contains("code") || !c["code"].is_string())
      continue;
    out->push_back(
        {param, c.value("system", ""), c["code"].get<std::string>()});
  }
}

std::string PatientOf(const json& r, const char* field) {
  auto it = r.find(field);
  if (it == r.end() || !it->is_object()) return "";
  const std::string ref = it->value("reference", "");
  return ref.rfind("Patient/", 0) == 0 ? ref.substr(8) : "";
}

std::optional<TimeRange> DateOf(const json& r, const char* field) {
  auto it = r.find(field);
  if (it == r.end()) return std::nullopt;
  if (it->is_string()) return ParseFhirTime(it->get<std::string>());
  if (it->is_object() && it->contains("start") && (*it)["start"].is_string()) {
    return ParseFhirTime((*it)["start"].get<std::string>());
  }
  return std::nullopt;
}

// What the search parameters of fhir_search.cc read from each resource type.
IndexEntry Extract(const json& r) {
  IndexEntry e;
  const std::string type = r.value("resourceType", "");
  if (r.contains("status") && r["status"].is_string()) {
    e.tokens.push_back({"status", "", r["status"].get<std::string>()});
  }
  if (type == "Patient") {
    e.patient = r.value("id", "");
    e.date = DateOf(r, "birthDate");
    if (r.contains("gender") && r["gender"].is_string()) {
      e.tokens.push_back({"gender", "", r["gender"].get<std::string>()});
    }
    for (const auto& id : r.value("identifier", json::array())) {
      if (id.is_object() && id.contains("value") && id["value"].is_string()) {
        e.tokens.push_back({"identifier", id.value("system", ""),
                            id["value"].get<std::string>()});
      }
    }
    for (const auto& n : r.value("name", json::array())) {
      if (!n.is_object()) continue;
      if (n.contains("family") && n["family"].is_string()) {
        const std::string f = Lower(n["family"].get<std::string>());
        e.tokens.push_back({"family", "", f});
        e.tokens.push_back({"name", "", f});
      }
      for (const auto& g : n.value("given", json::array())) {
        if (!g.is_string()) continue;
        e.tokens.push_back({"given", "", Lower(g.get<std::string>())});
        e.tokens.push_back({"name", "", Lower(g.get<std::string>())});
      }
      if (n.contains("text") && n["text"].is_string()) {
        e.tokens.push_back({"name", "", Lower(n["text"].get<std::string>())});
      }
    }
    return e;
  }
  e.patient =
      PatientOf(r, type == "AllergyIntolerance" ? "patient" : "subject");
  if (type == "Observation") {
    e.date = DateOf(r, "effectiveDateTime");
    if (!e.date) e.date = DateOf(r, "effectivePeriod");
    if (!e.date) e.date = DateOf(r, "issued");
  } else if (type == "MedicationRequest" || type == "ServiceRequest") {
    e.date = DateOf(r, "authoredOn");
  } else if (type == "Procedure") {
    e.date = DateOf(r, "performedDateTime");
    if (!e.date) e.date = DateOf(r, "performedPeriod");
  } else if (type == "Encounter") {
    e.date = DateOf(r, "period");
  } else if (type == "Condition") {
    e.date = DateOf(r, "onsetDateTime");
  }
  if (type == "MedicationRequest") {
    AddCodings(r.value("medicationCodeableConcept", json::object()), "code",
               &e.tokens);
    if (r.contains("intent") && r["intent"].is_string()) {
      e.tokens.push_back({"intent", "", r["intent"].get<std::string>()});
    }
  } else {
    AddCodings(r.value("code", json::object()), "code", &e.tokens);
  }
  for (const auto& c : r.value("category", json::array())) {
    AddCodings(c, "category", &e.tokens);
  }
  return e;
}

std::string NextPrefix(const std::string& s) {
  // The smallest string greater than every string starting with s: bump the
  // last byte (prefix search as an index range instead of LIKE).
  std::string out = s;
  while (!out.empty() && static_cast<unsigned char>(out.back()) == 0xFF) {
    out.pop_back();
  }
  if (out.empty()) return std::string(1, '\xFF');
  out.back() = static_cast<char>(static_cast<unsigned char>(out.back()) + 1);
  return out;
}

const char* kSchema = R"sql(
CREATE TABLE resources(
  seq INTEGER PRIMARY KEY,
  rtype TEXT NOT NULL,
  id TEXT NOT NULL,
  session TEXT NOT NULL,
  patient TEXT,
  date_lo INTEGER,
  date_hi INTEGER,
  json TEXT NOT NULL,
  UNIQUE(rtype, id, session));
CREATE INDEX resources_by_patient ON resources(rtype, patient, date_lo);
CREATE INDEX resources_by_session ON resources(session);
CREATE TABLE tokens(
  seq INTEGER NOT NULL,
  param TEXT NOT NULL,
  value TEXT NOT NULL,
  system TEXT NOT NULL,
  PRIMARY KEY(seq, param, value, system)) WITHOUT ROWID;
)sql";

}  // namespace

struct FhirStore::Connection {
  sqlite3* db = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements;

  explicit Connection(const std::string& path) {
    const int rc = sqlite3_open_v2(
        path.c_str(), &db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
        nullptr);
    if (rc != SQLITE_OK) {
      const std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      throw IoError(fmt::format("sqlite open '{}' failed: {}", path, msg));
    }
    CheckSqlite(db, sqlite3_busy_timeout(db, 10000), "busy_timeout");
    Exec(db,
         "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; "
         "PRAGMA cache_size=-32000; PRAGMA temp_store=MEMORY;");
  }
  ~Connection() {
    for (auto& [sql, stmt] : statements) sqlite3_finalize(stmt);
    sqlite3_close(db);
  }
  // Prepared once per connection and reused: parsing the SQL costs more than
  // running a patient+code search.
  sqlite3_stmt* Prepare(const std::string& sql) {
    auto it = statements.find(sql);
    if (it != statements.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* stmt = nullptr;
    CheckSqlite(db, sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr),
                "prepare");
    statements.emplace(sql, stmt);
    return stmt;
  }
};

class FhirStore::Lease {
 public:
  Lease(const FhirStore* store, std::unique_ptr<Connection> c)
      : store_(store), c_(std::move(c)) {}
  Lease(Lease&&) = default;
  ~Lease() {
    if (!c_) return;
    std::lock_guard<std::mutex> lock(store_->pool_mu_);
    store_->idle_.push_back(std::move(c_));
  }
  Connection* operator->() { return c_.get(); }

 private:
  const FhirStore* store_;
  std::unique_ptr<Connection> c_;
};

FhirStore::Lease FhirStore::Acquire() const {
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c));
    }
  }
  return Lease(this, std::make_unique<Connection>(path_));
}

FhirStore::FhirStore() {
  // temp_directory_path honours TMPDIR.
  const std::string templ =
      (std::filesystem::temp_directory_path() / "clinrl-fhir-XXXXXX").string();
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  CLINRL_CHECK_ERRNO(mkdtemp(buf.data()) != nullptr, "mkdtemp",
                     "creating the FHIR store directory from '{}'", templ);
  dir_ = buf.data();
  path_ = dir_ + "/fhir.sqlite";
  auto lease = Acquire();
  Exec(lease->db, kSchema);
}

FhirStore::~FhirStore() {
  idle_.clear();
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::remove((path_ + suffix).c_str());
  }
  rmdir(dir_.c_str());
}

namespace {

void InsertRow(sqlite3* db, sqlite3_stmt* res, sqlite3_stmt* tok, const json& r,
               const std::string& session) {
  const IndexEntry e = Extract(r);
  const std::string type = r.at("resourceType").get<std::string>();
  const std::string id = r.at("id").get<std::string>();
  const std::string text = r.dump();
  sqlite3_reset(res);
  sqlite3_bind_text(res, 1, type.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(res, 2, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(res, 3, session.c_str(), -1, SQLITE_TRANSIENT);
  if (e.patient.empty()) {
    sqlite3_bind_null(res, 4);
  } else {
    sqlite3_bind_text(res, 4, e.patient.c_str(), -1, SQLITE_TRANSIENT);
  }
  if (e.date) {
    sqlite3_bind_int64(res, 5, e.date->lo);
    sqlite3_bind_int64(res, 6, e.date->hi);
  } else {
    sqlite3_bind_null(res, 5);
    sqlite3_bind_null(res, 6);
  }
  sqlite3_bind_text(res, 7, text.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(res);
  if (rc == SQLITE_CONSTRAINT) {
    throw BadRequest(fmt::format("{}/{} already exists", type, id));
  }
  CheckSqlite(db, rc, "insert resource");
  const int64_t seq = sqlite3_last_insert_rowid(db);
  for (const auto& t : e.tokens) {
    sqlite3_reset(tok);
    sqlite3_bind_int64(tok, 1, seq);
    sqlite3_bind_text(tok, 2, t.param.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(tok, 3, t.value.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(tok, 4, t.system.c_str(), -1, SQLITE_TRANSIENT);
    CheckSqlite(db, sqlite3_step(tok), "insert token");
  }
}

const char* kInsertResource =
    "INSERT INTO resources(rtype, id, session, patient, date_lo, date_hi, "
    "json) "
    "VALUES(?,?,?,?,?,?,?)";
const char* kInsertToken =
    "INSERT OR IGNORE INTO tokens(seq, param, value, system) VALUES(?,?,?,?)";

void CheckResourceShape(const json& r, const std::string& where) {
  if (!r.is_object() || !r.contains("resourceType") ||
      !r["resourceType"].is_string() || !r.contains("id") ||
      !r["id"].is_string()) {
    throw BadRequest(fmt::format(
        "{}: expected a FHIR resource with string resourceType and id", where));
  }
}

}  // namespace

void FhirStore::BulkLoad(const std::vector<json>& resources) {
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto c = Acquire();
  Exec(c->db, "BEGIN IMMEDIATE");
  try {
    sqlite3_stmt* res = c->Prepare(kInsertResource);
    sqlite3_stmt* tok = c->Prepare(kInsertToken);
    for (size_t i = 0; i < resources.size(); ++i) {
      CheckResourceShape(resources[i], fmt::format("resources[{}]", i));
      InsertRow(c->db, res, tok, resources[i], "");
    }
    Exec(c->db, "COMMIT");
  } catch (...) {
    sqlite3_exec(c->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  // Statistics let the planner pick the patient index over the token table.
  Exec(c->db, "ANALYZE");
}

void FhirStore::Insert(const json& resource, const std::string& session) {
  CheckResourceShape(resource, "resource");
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto c = Acquire();
  Exec(c->db, "BEGIN IMMEDIATE");
  try {
    InsertRow(c->db, c->Prepare(kInsertResource), c->Prepare(kInsertToken),
              resource, session);
    Exec(c->db, "COMMIT");
  } catch (...) {
    sqlite3_exec(c->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<std::string> FhirStore::Read(const std::string& type,
                                           const std::string& id,
                                           const std::string& session) const {
  auto c = Acquire();
  // The session's own row shadows a shared one with the same id.
  sqlite3_stmt* s = c->Prepare(
      "SELECT json FROM resources WHERE rtype=? AND id=? AND "
      "(session='' OR session=?) ORDER BY session DESC LIMIT 1");
  sqlite3_bind_text(s, 1, type.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 2, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(s, 3, session.c_str(), -1, SQLITE_TRANSIENT);
  const int rc = sqlite3_step(s);
  CheckSqlite(c->db, rc, "read");
  if (rc != SQLITE_ROW) return std::nullopt;
  std::string out(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
                  sqlite3_column_bytes(s, 0));
  sqlite3_reset(s);
  return out;
}

bool FhirStore::Exists(const std::string& type, const std::string& id,
                       const std::string& session) const {
  return Read(type, id, session).has_value();
}

SearchPage FhirStore::Search(const SearchQuery& q,
                             const std::string& session) const {
  std::string where = "r.rtype=? AND (r.session='' OR r.session=?)";
  // Binds are positional; collect them as strings or ints in order.
  struct Bind {
    bool is_int;
    std::string text;
    int64_t number;
  };
  std::vector<Bind> all = {{false, q.type, 0}, {false, session, 0}};
  auto text = [&](const std::string& s) { all.push_back({false, s, 0}); };
  auto number = [&](int64_t n) { all.push_back({true, "", n}); };
  if (!q.ids.empty()) {
    where += " AND r.id IN (";
    for (size_t i = 0; i < q.ids.size(); ++i) {
      where += i ? ",?" : "?";
      text(q.ids[i]);
    }
    where += ")";
  }
  for (const auto& c : q.clauses) {
    switch (c.kind) {
      case ParamKind::kReference:
        where += " AND r.patient IN (";
        for (size_t i = 0; i < c.references.size(); ++i) {
          where += i ? ",?" : "?";
          text(c.references[i]);
        }
        where += ")";
        break;
      case ParamKind::kToken:
        where +=
            " AND EXISTS(SELECT 1 FROM tokens t WHERE t.seq=r.seq AND "
            "t.param=? AND (";
        text(c.param);
        for (size_t i = 0; i < c.tokens.size(); ++i) {
          if (i) where += " OR ";
          if (c.tokens[i].system) {
            where += "(t.value=? AND t.system=?)";
            text(c.tokens[i].code);
            text(*c.tokens[i].system);
          } else {
            where += "t.value=?";
            text(c.tokens[i].code);
          }
        }
        where += "))";
        break;
      case ParamKind::kString:
        where +=
            " AND EXISTS(SELECT 1 FROM tokens t WHERE t.seq=r.seq AND "
            "t.param=? AND (";
        text(c.param);
        for (size_t i = 0; i < c.prefixes.size(); ++i) {
          if (i) where += " OR ";
          where += "(t.value>=? AND t.value<?)";
          text(c.prefixes[i]);
          text(NextPrefix(c.prefixes[i]));
        }
        where += "))";
        break;
      case ParamKind::kDate:
        where += " AND r.date_lo IS NOT NULL AND (";
        for (size_t i = 0; i < c.dates.size(); ++i) {
          if (i) where += " OR ";
          const auto& d = c.dates[i];
          // The resource's period [date_lo, date_hi) against the parameter's
          // period [lo, hi) (FHIR R4 search, "date" prefixes).
          switch (d.prefix) {
            case DatePrefix::kEq:
              where += "(r.date_lo>=? AND r.date_hi<=?)";
              number(d.range.lo);
              number(d.range.hi);
              break;
            case DatePrefix::kNe:
              where += "NOT (r.date_lo>=? AND r.date_hi<=?)";
              number(d.range.lo);
              number(d.range.hi);
              break;
            case DatePrefix::kGt:
              where += "r.date_hi>?";
              number(d.range.hi);
              break;
            case DatePrefix::kLt:
              where += "r.date_lo<?";
              number(d.range.lo);
              break;
            case DatePrefix::kGe:
              where += "(r.date_hi>? OR (r.date_lo>=? AND r.date_hi<=?))";
              number(d.range.hi);
              number(d.range.lo);
              number(d.range.hi);
              break;
            case DatePrefix::kLe:
              where += "(r.date_lo<? OR (r.date_lo>=? AND r.date_hi<=?))";
              number(d.range.lo);
              number(d.range.lo);
              number(d.range.hi);
              break;
          }
        }
        where += ")";
        break;
    }
  }
  std::string order = "r.seq";
  if (q.sort == "date") order = "r.date_lo, r.seq";
  if (q.sort == "-date") order = "r.date_lo DESC, r.seq DESC";
  if (q.sort == "_id") order = "r.id";
  if (q.sort == "-_id") order = "r.id DESC";

  auto bind_all = [&](sqlite3_stmt* s) {
    for (size_t i = 0; i < all.size(); ++i) {
      const int pos = static_cast<int>(i) + 1;
      if (all[i].is_int) {
        sqlite3_bind_int64(s, pos, all[i].number);
      } else {
        sqlite3_bind_text(s, pos, all[i].text.c_str(),
                          static_cast<int>(all[i].text.size()), SQLITE_STATIC);
      }
    }
  };

  SearchPage page;
  auto c = Acquire();
  sqlite3_stmt* count =
      c->Prepare("SELECT COUNT(*) FROM resources r WHERE " + where);
  bind_all(count);
  CheckSqlite(c->db, sqlite3_step(count), "search count");
  page.total = sqlite3_column_int64(count, 0);
  sqlite3_reset(count);
  if (page.total <= q.offset) return page;

  sqlite3_stmt* rows =
      c->Prepare("SELECT r.id, r.json FROM resources r WHERE " + where +
                 " ORDER BY " + order + " LIMIT ? OFFSET ?");
  bind_all(rows);
  sqlite3_bind_int64(rows, static_cast<int>(all.size()) + 1, q.count);
  sqlite3_bind_int64(rows, static_cast<int>(all.size()) + 2, q.offset);
  while (true) {
    const int rc = sqlite3_step(rows);
    CheckSqlite(c->db, rc, "search");
    if (rc != SQLITE_ROW) break;
    page.ids.emplace_back(
        reinterpret_cast<const char*>(sqlite3_column_text(rows, 0)),
        sqlite3_column_bytes(rows, 0));
    page.resources.emplace_back(
        reinterpret_cast<const char*>(sqlite3_column_text(rows, 1)),
        sqlite3_column_bytes(rows, 1));
  }
  sqlite3_reset(rows);
  return page;
}

int64_t FhirStore::SessionRowCount(const std::string& session) const {
  auto c = Acquire();
  sqlite3_stmt* s =
      c->Prepare("SELECT COUNT(*) FROM resources WHERE session=?");
  sqlite3_bind_text(s, 1, session.c_str(), -1, SQLITE_TRANSIENT);
  CheckSqlite(c->db, sqlite3_step(s), "session count");
  const int64_t n = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  return n;
}

void FhirStore::DropSession(const std::string& session) {
  CLINRL_CHECK(!session.empty(),
               "DropSession needs a session, not the shared record");
  std::lock_guard<std::mutex> wlock(write_mu_);
  auto c = Acquire();
  Exec(c->db, "BEGIN IMMEDIATE");
  try {
    for (const char* sql :
         {"DELETE FROM tokens WHERE seq IN (SELECT seq FROM resources WHERE "
          "session=?)",
          "DELETE FROM resources WHERE session=?"}) {
      sqlite3_stmt* s = c->Prepare(sql);
      sqlite3_bind_text(s, 1, session.c_str(), -1, SQLITE_TRANSIENT);
      CheckSqlite(c->db, sqlite3_step(s), "drop session");
      sqlite3_reset(s);
    }
    Exec(c->db, "COMMIT");
  } catch (...) {
    sqlite3_exec(c->db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

int64_t FhirStore::ResourceCount() const {
  auto c = Acquire();
  sqlite3_stmt* s =
      c->Prepare("SELECT COUNT(*) FROM resources WHERE session=''");
  CheckSqlite(c->db, sqlite3_step(s), "count");
  const int64_t n = sqlite3_column_int64(s, 0);
  sqlite3_reset(s);
  return n;
}

}  // namespace clinrl::envs::ehr
