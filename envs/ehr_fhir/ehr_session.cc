#include "envs/ehr_fhir/ehr_session.h"

#include <fmt/format.h>
#include <httplib.h>

#include <map>
#include <mutex>
#include <utility>

#include "core/error.h"
#include "envs/ehr_fhir/fhir_search.h"
#include "envs/ehr_fhir/grading/json_string.h"
#include "envs/ehr_fhir/grading/task_grader.h"

namespace clinrl::envs::ehr {
namespace {

std::string NextSessionId(const std::string& prefix) {
  static std::mutex mu;
  static std::map<std::string, int64_t> next;
  std::lock_guard<std::mutex> lock(mu);
  return fmt::format("{}{}", prefix, ++next[prefix]);
}

std::string Shorten(const std::string& s, size_t max) {
  return s.size() <= max ? s : s.substr(0, max) + "...";
}

}  // namespace

EhrSession::EhrSession(std::shared_ptr<EhrRecord> record,
                       const std::string& id_prefix, std::string base_url,
                       bool dry_run)
    : record_(std::move(record)),
      id_(NextSessionId(id_prefix)),
      base_url_(std::move(base_url)),
      dry_run_(dry_run) {}

EhrSession::~EhrSession() {
  try {
    DropSandbox();
  } catch (const std::exception& e) {
    // A destructor must not throw; the rows stay until the process ends.
    (void)e;
  }
}

std::string EhrSession::ApiBase() const {
  return base_url_.empty() ? kEmbeddedApiBase : base_url_;
}

void EhrSession::DropSandbox() {
  if (base_url_.empty() && !writes_.empty()) {
    record_->Service().store()->DropSession(id_);
  }
  writes_ = json::array();
}

void EhrSession::Restart() {
  DropSandbox();
  invalid_actions_ = 0;
  dry_run_ids_ = 0;
}

int64_t EhrSession::ExecutedWrites() const {
  int64_t executed = 0;
  for (const auto& w : writes_) executed += w.value("status", 0) == 201 ? 1 : 0;
  return executed;
}

json EhrSession::Episode(const json& answer) const {
  return {{"finish", answer}, {"writes", writes_}};
}

std::string EhrSession::Run(const AgentAction& action) {
  CLINRL_CHECK(action.kind != AgentAction::Kind::kFinish,
               "EhrSession::Run: FINISH is the env's to handle");
  if (action.kind == AgentAction::Kind::kGet) return Get(action.url);
  if (action.kind == AgentAction::Kind::kPost) {
    return Post(action.url, action.body);
  }
  return Invalid("Invalid action: " + action.error + ".");
}

std::string EhrSession::Invalid(const std::string& reply) {
  ++invalid_actions_;
  return reply;
}

std::string EhrSession::Get(const std::string& url) {
  std::string path, query, error;
  if (!SplitApiUrl(url, ApiBase(), &path, &query, &error)) {
    return Invalid("Invalid action: " + error + ".");
  }
  const Reply r = Send("GET", path, query, "");
  return r.status == 200
             ? "Here is the response from the GET request:\n" + r.body
             : fmt::format("The GET request failed with status {}:\n{}",
                           r.status, r.body);
}

std::string EhrSession::Post(const std::string& url, const std::string& text) {
  std::string path, query, error;
  if (!SplitApiUrl(url, ApiBase(), &path, &query, &error)) {
    return Invalid("Invalid action: " + error + ".");
  }
  json body;
  try {
    body = json::parse(text);
  } catch (const json::parse_error& e) {
    return Invalid(
        fmt::format("Invalid POST request: the body is not JSON ({}).",
                    Shorten(e.what(), 200)));
  }
  std::string type = path;
  while (!type.empty() && type.back() == '/') type.pop_back();
  Reply r;
  if (dry_run_) {
    // Nothing is sent: the write is recorded and graded as if created.
    body["id"] = fmt::format("dry-run-{}", ++dry_run_ids_);
    r = {201, body.dump()};
  } else {
    r = Send("POST", path, query, text);
  }
  writes_.push_back({{"resourceType", StringField(body, "resourceType", type)},
                     {"url", type},
                     {"body", body},
                     {"status", r.status}});
  return r.status == 201
             ? std::string(kPostAccepted) + " The server created:\n" + r.body
             : fmt::format("The POST request failed with status {}:\n{}",
                           r.status, r.body);
}

EhrSession::Reply EhrSession::Send(const std::string& method,
                                   const std::string& path,
                                   const std::string& query,
                                   const std::string& body) const {
  if (!base_url_.empty()) return SendRemote(method, path, query, body);
  FhirRequest r{method, path, ParseQueryString(query), body, id_};
  const FhirResponse resp = record_->Service().Handle(r);
  return {resp.status, resp.body};
}

EhrSession::Reply EhrSession::SendRemote(const std::string& method,
                                         const std::string& path,
                                         const std::string& query,
                                         const std::string& body) const {
  // base_url = scheme://host[:port]/prefix/
  const size_t host_end = base_url_.find('/', base_url_.find("//") + 2);
  const std::string origin = base_url_.substr(0, host_end);
  const std::string prefix = base_url_.substr(host_end);
  std::string target = prefix + path;
  if (!query.empty()) {
    std::string encoded;
    for (const auto& [k, v] : ParseQueryString(query)) {
      encoded += (encoded.empty() ? "" : "&") + PercentEncode(k) + "=" +
                 PercentEncode(v);
    }
    target += "?" + encoded;
  }
  httplib::Client client(origin);
  client.set_connection_timeout(10);
  client.set_read_timeout(60);
  client.set_tcp_nodelay(true);
  const httplib::Headers headers = {{"Accept", "application/fhir+json"},
                                    {"X-Clinrl-Session", id_}};
  httplib::Result res =
      method == "GET"
          ? client.Get(target.c_str(), headers)
          : client.Post(target.c_str(), headers, body, "application/fhir+json");
  if (!res) {
    return {0, fmt::format("{} {}{} failed: {}", method, origin, target,
                           httplib::to_string(res.error()))};
  }
  return {res->status, res->body};
}

}  // namespace clinrl::envs::ehr
