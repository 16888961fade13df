#include "envs/ehr_workflow/workflow_grader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "envs/ehr_fhir/grading/json_string.h"
#include "envs/ehr_fhir/grading/task_grader.h"

namespace clinrl::envs::ehr {
namespace {

std::string Lower(std::string s) {
  for (auto& ch : s)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

std::string Trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r\n");
  const size_t b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A number, or a string that is one number and nothing else.
std::optional<double> AsNumber(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  const std::string s = Trim(v.get<std::string>());
  try {
    size_t used = 0;
    const double d = std::stod(s, &used);
    if (used == s.size()) return d;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::string CheckAnswer(const json& cp, const json& finish) {
  if (!finish.is_array()) return "the episode ended without FINISH([...])";
  const size_t index = cp.at("index").get<size_t>();
  const json& want = cp.at("expected");
  if (index >= finish.size()) {
    return fmt::format("FINISH has no element {} (expected {})", index,
                       want.dump());
  }
  const json& got = finish[index];
  bool ok = false;
  if (want.is_number()) {
    const auto value = AsNumber(got);
    ok = value && std::fabs(*value - want.get<double>()) <=
                      cp.value("tolerance", 0.0) + 1e-9;
  } else {
    ok = got.is_string() &&
         Lower(Trim(got.get<std::string>())) == Lower(want.get<std::string>());
  }
  return ok ? ""
            : fmt::format("FINISH element {} is {}, expected {}", index,
                          got.dump(), want.dump());
}

// Every code and word of the order's coded concept (medication or code).
bool Mentions(const json& cp, const json& body) {
  const char* field = cp.at("resource") == "MedicationRequest"
                          ? "medicationCodeableConcept"
                          : "code";
  const json concept = body.value(field, json::object());
  if (!concept.is_object()) return false;
  std::string words = Lower(StringField(concept, "text"));
  for (const auto& c : concept.value("coding", json::array())) {
    if (!c.is_object()) continue;
    for (const auto& code : cp.at("codes")) {
      if (StringField(c, "code") == code) return true;
    }
    words += " " + Lower(StringField(c, "display"));
  }
  for (const auto& name : cp.at("names")) {
    if (words.find(name.get<std::string>()) != std::string::npos) return true;
  }
  return false;
}

std::string CheckOrders(const json& cp, const json& writes,
                        const std::string& mode) {
  const json& required = cp.at("required");
  const int64_t max_count = cp.at("max_count").get<int64_t>();
  int64_t count = 0;
  bool satisfied = false;
  std::vector<std::string> nearest;
  for (const auto& w : writes) {
    if (!w.is_object() || w.value("status", 0) != 201) continue;
    const json body = w.value("body", json::object());
    if (!body.is_object() ||
        StringField(body, "resourceType") != cp.at("resource") ||
        !Mentions(cp, body)) {
      continue;
    }
    ++count;
    if (required.is_null() || satisfied) continue;
    auto problems = CheckWrite(required, body, mode);
    satisfied = problems.empty();
    if (!satisfied && (nearest.empty() || problems.size() < nearest.size())) {
      nearest = std::move(problems);
    }
  }
  if (required.is_null()) {
    return count == 0
               ? ""
               : fmt::format("{} {} order(s) that should not be there", count,
                             cp.at("resource").get<std::string>());
  }
  if (!satisfied) {
    std::string why = count == 0 ? "no such order was executed"
                                 : "no executed order matches: ";
    for (size_t i = 0; i < nearest.size(); ++i) {
      why += (i ? "; " : "") + nearest[i];
    }
    return why;
  }
  return count <= max_count
             ? ""
             : fmt::format("{} orders where {} expected", count, max_count);
}

}  // namespace

json GradeWorkflow(const json& key, const json& episode) {
  const std::string mode = key.at("mode").get<std::string>();
  const json finish =
      episode.is_object() ? episode.value("finish", json()) : json();
  const json writes = episode.is_object()
                          ? episode.value("writes", json::array())
                          : json::array();
  json checkpoints = json::array();
  int64_t met = 0;
  for (const auto& cp : key.at("checkpoints")) {
    const std::string why = cp.at("kind") == "answer"
                                ? CheckAnswer(cp, finish)
                                : CheckOrders(cp, writes, mode);
    met += why.empty() ? 1 : 0;
    checkpoints.push_back(
        {{"name", cp.at("name")}, {"met", why.empty()}, {"why", why}});
  }
  const auto total = static_cast<int64_t>(checkpoints.size());
  return {{"checkpoints", checkpoints},
          {"met", met},
          {"total", total},
          {"reward", total ? static_cast<double>(met) / total : 0.0},
          {"correct", total > 0 && met == total}};
}

}  // namespace clinrl::envs::ehr
