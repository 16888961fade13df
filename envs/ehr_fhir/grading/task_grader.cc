#include "envs/ehr_fhir/grading/task_grader.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "core/tool_call_text.h"
#include "core/wire.h"
#include "envs/ehr_fhir/fhir_time.h"
#include "envs/ehr_fhir/grading/json_string.h"

namespace clinrl::envs::ehr {
namespace {

const char* kNdc = "http://hl7.org/fhir/sid/ndc";
const char* kSnomed = "http://snomed.info/sct";
const char* kUcum = "http://unitsofmeasure.org";
const char* kLoinc = "http://loinc.org";
const char* kR4ObsCategory =
    "http://terminology.hl7.org/CodeSystem/observation-category";
// MedAgentBench's reference solution posts the DSTU2-era category system.
const char* kMabObsCategory = "http://hl7.org/fhir/observation-category";

// Null when any step of the path is missing: the checks below then report
// the path that was expected.
const json& At(const json& j, std::initializer_list<const char*> path) {
  static const json kNull;
  const json* cur = &j;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

const json& First(const json& j) {
  static const json kNull;
  return j.is_array() && !j.empty() ? j[0] : kNull;
}

std::string Show(const json& j) {
  if (j.is_null()) return "nothing";
  std::string s = j.dump();
  return s.size() > 100 ? s.substr(0, 97) + "..." : s;
}

bool HasCoding(const json& concept, const std::string& system,
               const std::string& code) {
  const json& codings = At(concept, {"coding"});
  if (!codings.is_array()) return false;
  for (const auto& c : codings) {
    if (StringField(c, "system") == system && StringField(c, "code") == code) {
      return true;
    }
  }
  return false;
}

bool SameInstant(const json& got, const std::string& want) {
  if (!got.is_string()) return false;
  auto a = ParseFhirTime(got.get<std::string>());
  auto b = ParseFhirTime(want);
  return a && b && a->lo == b->lo && (a->hi - a->lo) <= 60;
}

bool SameNumber(const json& got, double want) {
  return got.is_number() && std::fabs(got.get<double>() - want) < 1e-6;
}

class Checks {
 public:
  void Expect(bool ok, const std::string& field, const std::string& wanted,
              const json& got) {
    if (!ok) {
      problems.push_back(
          fmt::format("{}: expected {}, got {}", field, wanted, Show(got)));
    }
  }
  std::vector<std::string> problems;
};

void CommonOrder(Checks& c, const json& req, const json& body,
                 const std::string& type) {
  const std::string patient = req.at("patient").get<std::string>();
  c.Expect(StringField(body, "resourceType") == type, "resourceType", type,
           At(body, {"resourceType"}));
  c.Expect(At(body, {"subject", "reference"}) == "Patient/" + patient,
           "subject.reference", "Patient/" + patient,
           At(body, {"subject", "reference"}));
  if (type != "Observation") {
    c.Expect(At(body, {"status"}) == "active", "status", "active",
             At(body, {"status"}));
    c.Expect(At(body, {"intent"}) == "order", "intent", "order",
             At(body, {"intent"}));
  }
}

void CheckAuthored(Checks& c, const json& req, const json& body,
                   const std::string& mode) {
  const std::string when = req.at("authored_on").get<std::string>();
  const json& got = At(body, {"authoredOn"});
  if (mode == kStrictR4) {
    c.Expect(SameInstant(got, when), "authoredOn", "the task clock " + when,
             got);
  } else {
    // MedAgentBench checks the minute of the timestamp only.
    c.Expect(got.is_string() &&
                 got.get<std::string>().rfind(when.substr(0, 16), 0) == 0,
             "authoredOn", "a time starting " + when.substr(0, 16), got);
  }
}

void CheckVital(Checks& c, const json& req, const json& body,
                const std::string& mode) {
  CommonOrder(c, req, body, "Observation");
  c.Expect(At(body, {"status"}) == "final", "status", "final",
           At(body, {"status"}));
  const std::string when = req.at("effective").get<std::string>();
  if (mode == kStrictR4) {
    bool category = false;
    for (const auto& cat : At(body, {"category"}).is_array()
                               ? At(body, {"category"})
                               : json::array()) {
      category |= HasCoding(cat, kR4ObsCategory, "vital-signs");
    }
    c.Expect(category, "category", std::string(kR4ObsCategory) + "|vital-signs",
             At(body, {"category"}));
    c.Expect(HasCoding(At(body, {"code"}), kLoinc, "85354-9"), "code",
             "LOINC 85354-9 (blood pressure panel)", At(body, {"code"}));
    c.Expect(SameInstant(At(body, {"effectiveDateTime"}), when),
             "effectiveDateTime", when, At(body, {"effectiveDateTime"}));
    for (const auto& [code, field] :
         {std::pair<const char*, const char*>{"8480-6", "systolic"},
          {"8462-4", "diastolic"}}) {
      const double want = req.at(field).get<double>();
      bool ok = false;
      const json& comps = At(body, {"component"});
      for (const auto& comp : comps.is_array() ? comps : json::array()) {
        if (!HasCoding(At(comp, {"code"}), kLoinc, code)) continue;
        const json& q = At(comp, {"valueQuantity"});
        ok = SameNumber(At(q, {"value"}), want) && At(q, {"system"}) == kUcum &&
             At(q, {"code"}) == "mm[Hg]";
      }
      c.Expect(ok, fmt::format("component[{}]", code),
               fmt::format("valueQuantity {} mm[Hg] (UCUM)", want), comps);
    }
  } else {
    const json want_cat = {{"system", kMabObsCategory},
                           {"code", "vital-signs"},
                           {"display", "Vital Signs"}};
    c.Expect(First(At(First(At(body, {"category"})), {"coding"})) == want_cat,
             "category[0].coding[0]", want_cat.dump(), At(body, {"category"}));
    c.Expect(At(body, {"code"}) == json{{"text", "BP"}}, "code",
             R"({"text":"BP"})", At(body, {"code"}));
    c.Expect(At(body, {"effectiveDateTime"}) == when, "effectiveDateTime", when,
             At(body, {"effectiveDateTime"}));
    const std::string value = req.at("value_string").get<std::string>();
    c.Expect(At(body, {"valueString"}) == value, "valueString", value,
             At(body, {"valueString"}));
  }
}

void CheckMedication(Checks& c, const json& req, const json& body,
                     const std::string& mode) {
  CommonOrder(c, req, body, "MedicationRequest");
  CheckAuthored(c, req, body, mode);
  const std::string ndc = req.at("ndc").get<std::string>();
  const json& med = At(body, {"medicationCodeableConcept"});
  const json& dosage = First(At(body, {"dosageInstruction"}));
  const json& dose = At(First(At(dosage, {"doseAndRate"})), {"doseQuantity"});
  const double dose_value = req.at("dose").at("value").get<double>();
  const json& hours = req.at("infusion_hours");
  if (mode == kStrictR4) {
    c.Expect(HasCoding(med, kNdc, ndc), "medicationCodeableConcept",
             fmt::format("a coding {}|{}", kNdc, ndc), med);
    const std::string route = req.at("route_snomed").get<std::string>();
    c.Expect(HasCoding(At(dosage, {"route"}), kSnomed, route),
             "dosageInstruction[0].route",
             fmt::format("a CodeableConcept with SNOMED {} ({})", route,
                         req.at("route").get<std::string>()),
             At(dosage, {"route"}));
    const std::string ucum = req.at("dose").at("ucum").get<std::string>();
    c.Expect(SameNumber(At(dose, {"value"}), dose_value) &&
                 At(dose, {"system"}) == kUcum && At(dose, {"code"}) == ucum,
             "dosageInstruction[0].doseAndRate[0].doseQuantity",
             fmt::format("value {} with UCUM code {}", dose_value, ucum), dose);
    if (!hours.is_null()) {
      const json& repeat = At(dosage, {"timing", "repeat"});
      c.Expect(SameNumber(At(repeat, {"duration"}), hours.get<double>()) &&
                   At(repeat, {"durationUnit"}) == "h",
               "dosageInstruction[0].timing.repeat",
               fmt::format("duration {} durationUnit h (infused over {} h)",
                           hours.get<double>(), hours.get<double>()),
               repeat);
    }
  } else {
    const json& coding = First(At(med, {"coding"}));
    c.Expect(At(coding, {"system"}) == kNdc && At(coding, {"code"}) == ndc,
             "medicationCodeableConcept.coding[0]",
             fmt::format("{}|{}", kNdc, ndc), coding);
    const std::string route = req.at("route").get<std::string>();
    c.Expect(At(dosage, {"route"}) == route, "dosageInstruction[0].route",
             "\"" + route + "\"", At(dosage, {"route"}));
    const std::string unit = req.at("dose").at("unit").get<std::string>();
    c.Expect(dose.is_object() && dose.size() == 2 &&
                 SameNumber(At(dose, {"value"}), dose_value) &&
                 At(dose, {"unit"}) == unit,
             "dosageInstruction[0].doseAndRate[0].doseQuantity",
             fmt::format(R"({{"value":{},"unit":"{}"}})", dose_value, unit),
             dose);
    if (!hours.is_null()) {
      const json& rate =
          At(First(At(dosage, {"doseAndRate"})), {"rateQuantity"});
      c.Expect(rate.is_object() &&
                   SameNumber(At(rate, {"value"}), hours.get<double>()) &&
                   At(rate, {"unit"}) == "h",
               "dosageInstruction[0].doseAndRate[0].rateQuantity",
               fmt::format(R"({{"value":{},"unit":"h"}})", hours.get<double>()),
               rate);
    }
  }
}

void CheckService(Checks& c, const json& req, const json& body,
                  const std::string& mode) {
  CommonOrder(c, req, body, "ServiceRequest");
  CheckAuthored(c, req, body, mode);
  const std::string system = req.at("system").get<std::string>();
  const std::string code = req.at("code").get<std::string>();
  if (mode == kStrictR4) {
    c.Expect(HasCoding(At(body, {"code"}), system, code), "code",
             fmt::format("a coding {}|{}", system, code), At(body, {"code"}));
  } else {
    const json& coding = First(At(body, {"code", "coding"}));
    c.Expect(At(coding, {"system"}) == system && At(coding, {"code"}) == code,
             "code.coding[0]", fmt::format("{}|{}", system, code), coding);
  }
  if (req.contains("priority") && !req["priority"].is_null()) {
    c.Expect(At(body, {"priority"}) == req["priority"], "priority",
             req["priority"].get<std::string>(), At(body, {"priority"}));
  }
  if (req.contains("occurrence") && !req["occurrence"].is_null()) {
    const std::string when = req["occurrence"].get<std::string>();
    const json& got = At(body, {"occurrenceDateTime"});
    c.Expect(mode == kStrictR4 ? SameInstant(got, when) : got == when,
             "occurrenceDateTime", when, got);
  }
  if (req.contains("note") && !req["note"].is_null()) {
    const std::string want = req["note"].get<std::string>();
    const json& note = At(body, {"note"});
    bool ok = false;
    if (note.is_array()) {
      for (const auto& n : note) ok |= At(n, {"text"}) == want;
    } else if (mode == kMedAgentBench) {
      // MedAgentBench's reference posts note as one object, not a list.
      ok = At(note, {"text"}) == want;
    }
    c.Expect(ok, "note",
             mode == kStrictR4 ? "an Annotation list with text \"" + want + "\""
                               : "a note with text \"" + want + "\"",
             note);
  }
}

bool AnswerMatches(const json& expected, const json& got, double tolerance) {
  if (!got.is_array() || got.size() != expected.size()) return false;
  for (size_t i = 0; i < expected.size(); ++i) {
    const json& e = expected[i];
    const json& g = got[i];
    if (e.is_number()) {
      double value = 0;
      if (g.is_number()) {
        value = g.get<double>();
      } else if (g.is_string()) {
        try {
          size_t used = 0;
          value = std::stod(g.get<std::string>(), &used);
          if (used != g.get<std::string>().size()) return false;
        } catch (const std::exception&) {
          return false;
        }
      } else {
        return false;
      }
      if (std::fabs(value - e.get<double>()) > tolerance + 1e-9) return false;
    } else if (e.is_string()) {
      if (!g.is_string()) return false;
      const std::string want = e.get<std::string>();
      const std::string have = g.get<std::string>();
      auto a = ParseFhirTime(want), b = ParseFhirTime(have);
      const bool both_times = want.size() > 10 && a && b;
      if (both_times ? a->lo != b->lo : want != have) return false;
    } else if (e != g) {
      return false;
    }
  }
  return true;
}

}  // namespace

void ValidateAnswerKey(const json& key) {
  const wire::Fields f(key, "params");
  f.String("family");
  const std::string mode = f.String("mode");
  if (mode != kStrictR4 && mode != kMedAgentBench) {
    throw BadRequest(fmt::format(
        "params.mode: expected \"strict_r4\" or \"medagentbench\", got \"{}\"",
        mode));
  }
  f.String("patient");
  const wire::Fields answer(f.Object("answer"), "params.answer");
  answer.Bool("check");
  answer.Array("expected");
  const json& writes = f.Array("required_writes");
  for (size_t i = 0; i < writes.size(); ++i) {
    const wire::Fields w(writes[i],
                         fmt::format("params.required_writes[{}]", i));
    const std::string kind = w.String("kind");
    w.String("patient");
    if (kind == "vital_sign") {
      w.Double("systolic");
      w.Double("diastolic");
      w.String("value_string");
      w.String("effective");
    } else if (kind == "medication_order") {
      w.String("ndc");
      const wire::Fields dose(w.Object("dose"), w.path() + ".dose");
      dose.Double("value");
      dose.String("ucum");
      dose.String("unit");
      w.String("route");
      w.String("route_snomed");
      w.Get("authored_on");
      if (!writes[i].contains("infusion_hours")) {
        throw BadRequest(w.path() +
                         ".infusion_hours: required (a number or null)");
      }
    } else if (kind == "service_request") {
      w.String("system");
      w.String("code");
      w.String("authored_on");
    } else {
      throw BadRequest(fmt::format(
          "{}.kind: expected vital_sign, medication_order or service_request, "
          "got \"{}\"",
          w.path(), kind));
    }
  }
}

std::vector<std::string> CheckWrite(const json& required, const json& body,
                                    const std::string& mode) {
  Checks c;
  if (!body.is_object()) {
    c.problems.push_back("body: expected a JSON object");
    return c.problems;
  }
  const std::string kind = required.at("kind").get<std::string>();
  if (kind == "vital_sign") CheckVital(c, required, body, mode);
  if (kind == "medication_order") CheckMedication(c, required, body, mode);
  if (kind == "service_request") CheckService(c, required, body, mode);
  return c.problems;
}

json GradeEpisode(const json& key, const json& episode) {
  ValidateAnswerKey(key);
  const std::string mode = key["mode"].get<std::string>();
  json reasons = json::array();
  const json finish =
      episode.is_object() ? episode.value("finish", json()) : json();
  // Answer.
  const json& answer = key["answer"];
  bool answer_ok = true;
  if (!finish.is_array()) {
    answer_ok = false;
    reasons.push_back("the episode ended without FINISH([...])");
  } else if (answer["check"].get<bool>()) {
    const bool empty_ok = answer.value("accept_empty", false) && finish.empty();
    if (!empty_ok && !AnswerMatches(answer["expected"], finish,
                                    answer.value("tolerance", 1e-6))) {
      answer_ok = false;
      reasons.push_back(
          fmt::format("FINISH answer {} does not match the expected {}",
                      finish.dump(), answer["expected"].dump()));
    }
  }
  // Writes: each executed write must satisfy a distinct required write.
  const json& required = key["required_writes"];
  std::vector<bool> used(required.size(), false);
  int64_t extra = 0, matched = 0;
  const json writes = episode.is_object()
                          ? episode.value("writes", json::array())
                          : json::array();
  for (const auto& w : writes) {
    if (!w.is_object() || w.value("status", 0) != 201) continue;
    const json body = w.value("body", json::object());
    bool found = false;
    std::vector<std::string> nearest;
    for (size_t i = 0; i < required.size() && !found; ++i) {
      if (used[i]) continue;
      auto problems = CheckWrite(required[i], body, mode);
      if (problems.empty()) {
        used[i] = found = true;
        ++matched;
      } else if (nearest.empty() || problems.size() < nearest.size()) {
        nearest = problems;
      }
    }
    if (!found) {
      ++extra;
      std::string why =
          fmt::format("{} write not asked for",
                      StringField(body, "resourceType", "unknown"));
      if (!nearest.empty()) {
        why += " (closest required write: ";
        for (size_t i = 0; i < nearest.size(); ++i) {
          why += (i ? "; " : "") + nearest[i];
        }
        why += ")";
      }
      reasons.push_back(why);
    }
  }
  for (size_t i = 0; i < required.size(); ++i) {
    if (!used[i]) {
      reasons.push_back(
          fmt::format("missing required write: {} {}",
                      required[i]["kind"].get<std::string>(),
                      required[i].value("code", required[i].value("ndc", ""))));
    }
  }
  const bool writes_ok =
      extra == 0 && matched == static_cast<int64_t>(required.size());
  return {{"correct", answer_ok && writes_ok},
          {"answer_ok", answer_ok},
          {"writes_ok", writes_ok},
          {"matched_writes", matched},
          {"required_writes", required.size()},
          {"extra_writes", extra},
          {"reasons", reasons}};
}

json CanonicalWrite(const json& req, const std::string& mode) {
  const std::string kind = req.at("kind").get<std::string>();
  const json subject = {
      {"reference", "Patient/" + req.at("patient").get<std::string>()}};
  const bool strict = mode == kStrictR4;
  if (kind == "vital_sign") {
    const std::string when = req.at("effective").get<std::string>();
    if (!strict) {
      return {{"resourceType", "Observation"},
              {"category",
               json::array({{{"coding",
                              json::array({{{"system", kMabObsCategory},
                                            {"code", "vital-signs"},
                                            {"display", "Vital Signs"}}})}}})},
              {"code", {{"text", "BP"}}},
              {"effectiveDateTime", when},
              {"status", "final"},
              {"valueString", req.at("value_string")},
              {"subject", subject}};
    }
    auto component = [&](const char* code, const char* display, const json& v) {
      return json{{"code",
                   {{"coding", json::array({{{"system", kLoinc},
                                             {"code", code},
                                             {"display", display}}})}}},
                  {"valueQuantity",
                   {{"value", v},
                    {"unit", "mmHg"},
                    {"system", kUcum},
                    {"code", "mm[Hg]"}}}};
    };
    return {{"resourceType", "Observation"},
            {"status", "final"},
            {"category",
             json::array(
                 {{{"coding", json::array({{{"system", kR4ObsCategory},
                                            {"code", "vital-signs"},
                                            {"display", "Vital Signs"}}})}}})},
            {"code",
             {{"coding", json::array({{{"system", kLoinc},
                                       {"code", "85354-9"},
                                       {"display", "Blood pressure panel"}}})},
              {"text", "Blood pressure"}}},
            {"subject", subject},
            {"effectiveDateTime", when},
            {"component",
             json::array({component("8480-6", "Systolic blood pressure",
                                    req.at("systolic")),
                          component("8462-4", "Diastolic blood pressure",
                                    req.at("diastolic"))})}};
  }
  if (kind == "medication_order") {
    const json& dose = req.at("dose");
    const json& hours = req.at("infusion_hours");
    json dosage;
    if (strict) {
      dosage = {
          {"route",
           {{"coding", json::array({{{"system", kSnomed},
                                     {"code", req.at("route_snomed")}}})},
            {"text", req.at("route")}}},
          {"doseAndRate", json::array({{{"doseQuantity",
                                         {{"value", dose.at("value")},
                                          {"unit", dose.at("unit")},
                                          {"system", kUcum},
                                          {"code", dose.at("ucum")}}}}})}};
      if (!hours.is_null()) {
        dosage["timing"] = {
            {"repeat", {{"duration", hours}, {"durationUnit", "h"}}}};
      }
    } else {
      json rate = {{"doseQuantity",
                    {{"value", dose.at("value")}, {"unit", dose.at("unit")}}}};
      if (!hours.is_null())
        rate["rateQuantity"] = {{"value", hours}, {"unit", "h"}};
      dosage = {{"route", req.at("route")},
                {"doseAndRate", json::array({rate})}};
    }
    return {{"resourceType", "MedicationRequest"},
            {"medicationCodeableConcept",
             {{"coding",
               json::array({{{"system", kNdc}, {"code", req.at("ndc")}}})}}},
            {"authoredOn", req.at("authored_on")},
            {"dosageInstruction", json::array({dosage})},
            {"status", "active"},
            {"intent", "order"},
            {"subject", subject}};
  }
  json out = {{"resourceType", "ServiceRequest"},
              {"code",
               {{"coding", json::array({{{"system", req.at("system")},
                                         {"code", req.at("code")}}})}}},
              {"authoredOn", req.at("authored_on")},
              {"status", "active"},
              {"intent", "order"},
              {"subject", subject}};
  if (req.contains("priority") && !req["priority"].is_null()) {
    out["priority"] = req["priority"];
  }
  if (req.contains("occurrence") && !req["occurrence"].is_null()) {
    out["occurrenceDateTime"] = req["occurrence"];
  }
  if (req.contains("note") && !req["note"].is_null()) {
    const json note = {{"text", req["note"]}};
    out["note"] = strict ? json::array({note}) : note;
  }
  return out;
}

json ParseFinish(const std::string& action) {
  size_t start = 0;
  while (start < action.size() &&
         std::isspace(static_cast<unsigned char>(action[start])))
    ++start;
  size_t end = action.size();
  while (end > start &&
         std::isspace(static_cast<unsigned char>(action[end - 1])))
    --end;
  const std::string text = action.substr(start, end - start);
  if (text.rfind("FINISH(", 0) != 0 || text.back() != ')') return json();
  const std::string inner = text.substr(7, text.size() - 8);
  try {
    json parsed = json::parse(inner);
    return parsed.is_array() ? parsed : json();
  } catch (const json::parse_error&) {
    return json();
  }
}

namespace {

// An assistant turn of action_mode "tools" (envs/ehr_fhir/agent_tool_call.h)
// as the text action it stands for: exactly one tool call (read by the
// envs' own reader, core/tool_call_text.h, so the grader and the env agree
// on what a call is) calling fhir_post or finish with well-typed arguments,
// as the env accepts it. Anything else is returned unchanged.
std::string TextActionOfToolCall(const std::string& text) {
  const ParsedToolCalls parsed = ParseToolCalls(text);
  if (!parsed.error.empty() || parsed.calls.size() != 1) return text;
  const std::string& name = parsed.calls[0].name;
  const json& args = parsed.calls[0].arguments;
  if (name == "fhir_post" && args.contains("url") && args["url"].is_string() &&
      args.contains("payload") && args["payload"].is_object()) {
    return "POST " + args["url"].get<std::string>() + "\n" +
           args["payload"].dump();
  }
  if (name == "finish" && args.contains("answer") &&
      args["answer"].is_array()) {
    return "FINISH(" + args["answer"].dump() + ")";
  }
  return text;
}

}  // namespace

json EpisodeFromTranscript(
    const std::vector<std::pair<std::string, std::string>>& turns) {
  json episode = {{"finish", nullptr}, {"writes", json::array()}};
  for (size_t i = 0; i < turns.size(); ++i) {
    if (turns[i].first != "assistant") continue;
    const std::string text = TextActionOfToolCall(turns[i].second);
    const size_t start = text.find_first_not_of(" \t\r\n");
    if (start == std::string::npos) continue;
    if (text.compare(start, 5, "POST ") == 0) {
      const size_t nl = text.find('\n', start);
      json body;
      try {
        body = json::parse(nl == std::string::npos ? "" : text.substr(nl + 1));
      } catch (const json::parse_error&) {
        continue;
      }
      const bool accepted = i + 1 < turns.size() &&
                            turns[i + 1].second.rfind(kPostAccepted, 0) == 0;
      episode["writes"].push_back(
          {{"resourceType",
            body.is_object() ? body.value("resourceType", "") : ""},
           {"body", body},
           {"status", accepted ? 201 : 400}});
    } else {
      json answer = ParseFinish(text);
      if (answer.is_array()) episode["finish"] = answer;
    }
  }
  return episode;
}

}  // namespace clinrl::envs::ehr
