#include "envs/ehr_fhir/fhir_service.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace clinrl::envs::ehr {
namespace {

using nlohmann::json;

// A resource cut to `elements` for _elements (R4 3.1.1.5.9): resourceType,
// id and meta stay, and meta is tagged SUBSETTED so that no client mistakes
// the entry for the whole resource.
std::string Subset(const std::string& resource_json,
                   const std::vector<std::string>& elements) {
  const json full = json::parse(resource_json);
  json out = json::object();
  for (const char* kept : {"resourceType", "id", "meta"}) {
    if (full.contains(kept)) out[kept] = full[kept];
  }
  for (const auto& e : elements) {
    if (full.contains(e)) out[e] = full[e];
  }
  out["meta"]["tag"].push_back(
      {{"system", "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"},
       {"code", "SUBSETTED"}});
  return out.dump();
}

std::string Join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

FhirResponse Outcome(int status, const std::string& code,
                     const std::string& diagnostics) {
  return {status, OperationOutcome(code, diagnostics), ""};
}

// R4 value sets of the status/intent elements the server validates.
const std::map<std::string, std::vector<std::string>>& StatusCodes() {
  static const std::map<std::string, std::vector<std::string>> kCodes = {
      {"Observation",
       {"registered", "preliminary", "final", "amended", "corrected",
        "cancelled", "entered-in-error", "unknown"}},
      {"MedicationRequest",
       {"active", "on-hold", "cancelled", "completed", "entered-in-error",
        "stopped", "draft", "unknown"}},
      {"ServiceRequest",
       {"draft", "active", "on-hold", "revoked", "completed",
        "entered-in-error", "unknown"}},
      {"Procedure",
       {"preparation", "in-progress", "not-done", "on-hold", "stopped",
        "completed", "entered-in-error", "unknown"}},
      {"Encounter",
       {"planned", "arrived", "triaged", "in-progress", "onleave", "finished",
        "cancelled", "entered-in-error", "unknown"}}};
  return kCodes;
}

const std::map<std::string, std::vector<std::string>>& IntentCodes() {
  static const std::map<std::string, std::vector<std::string>> kCodes = {
      {"MedicationRequest",
       {"proposal", "plan", "order", "original-order", "reflex-order",
        "filler-order", "instance-order", "option"}},
      {"ServiceRequest",
       {"proposal", "plan", "directive", "order", "original-order",
        "reflex-order", "filler-order", "instance-order", "option"}}};
  return kCodes;
}

std::string CheckCode(const json& r, const char* field,
                      const std::vector<std::string>& allowed) {
  const std::string type = r["resourceType"].get<std::string>();
  auto it = r.find(field);
  if (it == r.end()) {
    return fmt::format("{}.{}: required field is missing (expected one of {})",
                       type, field, Join(allowed));
  }
  if (!it->is_string() || std::find(allowed.begin(), allowed.end(),
                                    it->get<std::string>()) == allowed.end()) {
    return fmt::format("{}.{}: {} is not a valid code (expected one of {})",
                       type, field, it->dump(), Join(allowed));
  }
  return "";
}

// The element that points at the patient, if the type has one.
const char* PatientField(const std::string& type) {
  if (type == "Patient") return nullptr;
  return type == "AllergyIntolerance" ? "patient" : "subject";
}

bool PatientFieldRequired(const std::string& type) {
  return type == "MedicationRequest" || type == "ServiceRequest" ||
         type == "Procedure" || type == "Condition" ||
         type == "AllergyIntolerance";
}

}  // namespace

std::string OperationOutcome(const std::string& code,
                             const std::string& diagnostics) {
  return json{{"resourceType", "OperationOutcome"},
              {"issue", json::array({{{"severity", "error"},
                                      {"code", code},
                                      {"diagnostics", diagnostics}}})}}
      .dump();
}

std::string ValidateRequiredFields(const json& r) {
  const std::string type = r["resourceType"].get<std::string>();
  if (auto it = StatusCodes().find(type); it != StatusCodes().end()) {
    if (auto p = CheckCode(r, "status", it->second); !p.empty()) return p;
  }
  if (auto it = IntentCodes().find(type); it != IntentCodes().end()) {
    if (auto p = CheckCode(r, "intent", it->second); !p.empty()) return p;
  }
  if (type == "Observation" &&
      (!r.contains("code") || !r["code"].is_object())) {
    return "Observation.code: required CodeableConcept is missing or not an "
           "object";
  }
  if (type == "MedicationRequest" &&
      !(r.contains("medicationCodeableConcept") &&
        r["medicationCodeableConcept"].is_object()) &&
      !(r.contains("medicationReference") &&
        r["medicationReference"].is_object())) {
    return "MedicationRequest.medication[x]: required; expected "
           "medicationCodeableConcept or medicationReference (an object)";
  }
  if (type == "Encounter" &&
      (!r.contains("class") || !r["class"].is_object())) {
    return "Encounter.class: required Coding is missing or not an object";
  }
  if (const char* field = PatientField(type)) {
    auto it = r.find(field);
    if (it == r.end()) {
      if (PatientFieldRequired(type)) {
        return fmt::format(
            "{}.{}: required reference to the patient is "
            "missing (expected {{\"reference\": "
            "\"Patient/[id]\"}})",
            type, field);
      }
    } else if (!it->is_object() || !it->contains("reference") ||
               !(*it)["reference"].is_string() ||
               (*it)["reference"].get<std::string>().rfind("Patient/", 0) !=
                   0) {
      return fmt::format(
          "{}.{}: {} is not a patient reference (expected "
          "{{\"reference\": \"Patient/[id]\"}})",
          type, field, it->dump());
    }
  }
  return "";
}

FhirService::FhirService(FhirStore* store, std::string base_url)
    : store_(store), base_url_(std::move(base_url)) {
  if (base_url_.empty() || base_url_.back() != '/') base_url_ += '/';
}

FhirResponse FhirService::Handle(const FhirRequest& r) const {
  try {
    std::string path = r.path;
    while (!path.empty() && path.front() == '/') path.erase(0, 1);
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (path.rfind("fhir/", 0) == 0) path = path.substr(5);
    if (path == "fhir") path.clear();
    const size_t slash = path.find('/');
    const std::string type = path.substr(0, slash);
    const std::string id =
        slash == std::string::npos ? "" : path.substr(slash + 1);
    if (type == "metadata" && id.empty()) {
      if (r.method != "GET") {
        return Outcome(
            405, "not-supported",
            fmt::format("{} /metadata: only GET is allowed", r.method));
      }
      return Capability();
    }
    if (!IsSupportedResourceType(type)) {
      return Outcome(404, "not-supported",
                     fmt::format("unknown resource type '{}' (supported: {})",
                                 type, Join(SupportedResourceTypes())));
    }
    if (id.find('/') != std::string::npos) {
      return Outcome(
          400, "not-supported",
          fmt::format("path '{}': expected [type] or [type]/[id]", r.path));
    }
    if (r.method == "GET") {
      return id.empty() ? Search(type, r) : Read(type, id, r.session);
    }
    if (r.method == "POST" && id.empty()) return Create(type, r);
    return Outcome(405, "not-supported",
                   fmt::format("{} {}: the server supports GET /[type], GET "
                               "/[type]/[id] and POST /[type]",
                               r.method, r.path));
  } catch (const BadRequest& e) {
    return Outcome(400, "invalid", e.what());
  } catch (const std::exception& e) {
    return Outcome(500, "exception", e.what());
  }
}

FhirResponse FhirService::Read(const std::string& type, const std::string& id,
                               const std::string& session) const {
  auto text = store_->Read(type, id, session);
  if (!text) {
    return Outcome(404, "not-found",
                   fmt::format("Resource {}/{} is not known", type, id));
  }
  return {200, std::move(*text), ""};
}

FhirResponse FhirService::Search(const std::string& type,
                                 const FhirRequest& r) const {
  const SearchQuery q = ParseSearch(type, r.query);
  const SearchPage page = store_->Search(q, r.session);
  // Links repeat the request's own parameters with the page window made
  // explicit, so following `next` needs no server-side state.
  std::string params;
  for (const auto& [k, v] : r.query) {
    if (k == "_count" || k == "_offset") continue;
    params += PercentEncode(k) + "=" + PercentEncode(v) + "&";
  }
  auto link = [&](int64_t offset) {
    return base_url_ + type + "?" + params +
           "_count=" + std::to_string(q.count) +
           "&_offset=" + std::to_string(offset);
  };
  // The stored JSON is spliced in as text: parsing and re-serialising every
  // entry would cost more than the query itself.
  std::string out = R"({"resourceType":"Bundle","type":"searchset","total":)";
  out += std::to_string(page.total);
  out += R"(,"link":[{"relation":"self","url":)" + json(link(q.offset)).dump() +
         "}";
  if (q.offset + static_cast<int64_t>(page.ids.size()) < page.total) {
    out += R"(,{"relation":"next","url":)" +
           json(link(q.offset + q.count)).dump() + "}";
  }
  if (q.offset > 0) {
    out += R"(,{"relation":"previous","url":)" +
           json(link(std::max<int64_t>(0, q.offset - q.count))).dump() + "}";
  }
  out += "]";
  if (!page.ids.empty()) {
    out += R"(,"entry":[)";
    for (size_t i = 0; i < page.ids.size(); ++i) {
      if (i) out += ",";
      out +=
          R"({"fullUrl":)" + json(base_url_ + type + "/" + page.ids[i]).dump();
      out += R"(,"resource":)";
      out += q.elements.empty() ? page.resources[i]
                                : Subset(page.resources[i], q.elements);
      out += R"(,"search":{"mode":"match"}})";
    }
    out += "]";
  }
  out += "}";
  return {200, std::move(out), ""};
}

FhirResponse FhirService::Create(const std::string& type,
                                 const FhirRequest& r) const {
  json resource;
  try {
    resource = json::parse(r.body);
  } catch (const json::parse_error& e) {
    return Outcome(400, "structure",
                   fmt::format("request body is not valid JSON: {}", e.what()));
  }
  if (!resource.is_object()) {
    return Outcome(400, "structure",
                   fmt::format("request body: expected a JSON object (a FHIR "
                               "resource), got {}",
                               resource.type_name()));
  }
  auto rt = resource.find("resourceType");
  if (rt == resource.end() || !rt->is_string() || *rt != type) {
    return Outcome(
        400, "invalid",
        fmt::format("resourceType: expected \"{}\" to match POST /{}, got {}",
                    type, type, rt == resource.end() ? "nothing" : rt->dump()));
  }
  if (auto problem = ValidateRequiredFields(resource); !problem.empty()) {
    return Outcome(422, "required", problem);
  }
  if (const char* field = PatientField(type);
      field && resource.contains(field)) {
    const std::string ref = resource[field]["reference"].get<std::string>();
    if (!store_->Exists("Patient", ref.substr(8), r.session)) {
      return Outcome(422, "processing",
                     fmt::format("{}.{}: reference target {} does not exist",
                                 type, field, ref));
    }
  }
  // Server-assigned ids: a session's writes are numbered within the session
  // so the same episode replays to the same ids.
  std::lock_guard<std::mutex> lock(create_mu_);
  const int64_t n = store_->SessionRowCount(r.session) + 1;
  const std::string id = r.session.empty()
                             ? fmt::format("c{}", store_->ResourceCount() + 1)
                             : fmt::format("w{}", n);
  resource["id"] = id;
  resource["meta"] = {{"versionId", "1"}};
  store_->Insert(resource, r.session);
  return {201, resource.dump(), base_url_ + type + "/" + id + "/_history/1"};
}

FhirResponse FhirService::Capability() const {
  json rest_resources = json::array();
  for (const auto& type : SupportedResourceTypes()) {
    json params = json::array();
    for (const auto& [name, kind] : SearchParams(type)) {
      static const char* kKinds[] = {"reference", "token", "string", "date"};
      params.push_back(
          {{"name", name}, {"type", kKinds[static_cast<int>(kind)]}});
    }
    rest_resources.push_back(
        {{"type", type},
         {"interaction", json::array({{{"code", "read"}},
                                      {{"code", "search-type"}},
                                      {{"code", "create"}}})},
         {"searchParam", params}});
  }
  json cs = {
      {"resourceType", "CapabilityStatement"},
      {"status", "active"},
      {"date", "2024-01-01"},
      {"kind", "instance"},
      {"software", {{"name", "clinrl ehr_fhir"}, {"version", "1.0"}}},
      {"implementation",
       {{"description", "clinrl embedded FHIR R4 server"}, {"url", base_url_}}},
      {"fhirVersion", "4.0.1"},
      {"format", json::array({"application/fhir+json", "json"})},
      {"rest",
       json::array({{{"mode", "server"}, {"resource", rest_resources}}})}};
  return {200, cs.dump(), ""};
}

}  // namespace clinrl::envs::ehr
