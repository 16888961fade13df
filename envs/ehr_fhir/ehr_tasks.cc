#include "envs/ehr_fhir/ehr_tasks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/error.h"
#include "envs/ehr_fhir/fhir_time.h"
#include "envs/ehr_fhir/grading/task_grader.h"
#include "envs/ehr_fhir/synthetic_record.h"

namespace clinrl::envs::ehr {
namespace {

constexpr int64_t kDay = 86400;

struct Measurement {
  int64_t time;
  std::string time_text;
  double value;
};

struct PatientFacts {
  std::string id, given, family, birth_date;
  std::map<std::string, std::vector<Measurement>> labs;  // by LOINC, by time
};

std::vector<PatientFacts> Facts(const std::vector<json>& record) {
  std::map<std::string, PatientFacts> by_id;
  for (const auto& r : record) {
    if (r.value("resourceType", "") != "Patient") continue;
    PatientFacts p;
    p.id = r.value("id", "");
    const json& name = r.value("name", json::array());
    if (name.empty()) continue;
    p.family = name[0].value("family", "");
    p.given = name[0].value("given", json::array()).empty()
                  ? ""
                  : name[0]["given"][0].get<std::string>();
    p.birth_date = r.value("birthDate", "");
    by_id.emplace(p.id, std::move(p));
  }
  for (const auto& r : record) {
    if (r.value("resourceType", "") != "Observation") continue;
    const std::string ref =
        r.value("subject", json::object()).value("reference", "");
    auto it = by_id.find(ref.size() > 8 ? ref.substr(8) : "");
    if (it == by_id.end() || !r.contains("valueQuantity")) continue;
    const json& codings = r["code"].value("coding", json::array());
    if (codings.empty()) continue;
    const std::string t = r.value("effectiveDateTime", "");
    auto range = ParseFhirTime(t);
    if (!range) continue;
    it->second.labs[codings[0].value("code", "")].push_back(
        {range->lo, t, r["valueQuantity"].value("value", 0.0)});
  }
  std::vector<PatientFacts> out;
  for (auto& [id, p] : by_id) {
    for (auto& [code, series] : p.labs) {
      std::stable_sort(
          series.begin(), series.end(),
          [](const auto& a, const auto& b) { return a.time < b.time; });
    }
    out.push_back(std::move(p));
  }
  return out;  // ordered by id
}

json Answer(bool check, json expected, bool accept_empty = false,
            double tolerance = 1e-6) {
  return {{"check", check},
          {"expected", std::move(expected)},
          {"accept_empty", accept_empty},
          {"tolerance", tolerance}};
}

const Measurement* Latest(const PatientFacts& p, const char* code,
                          int64_t since, int64_t now) {
  auto it = p.labs.find(code);
  if (it == p.labs.end()) return nullptr;
  for (auto m = it->second.rbegin(); m != it->second.rend(); ++m) {
    if (m->time <= now) return m->time >= since ? &*m : nullptr;
  }
  return nullptr;
}

// Rounds to the precision a clinician would read the number at.
double Round2(double v) { return std::round(v * 100.0) / 100.0; }

struct Candidate {
  std::string branch;
  EhrTask task;
};

const char* kReferralTexts[] = {
    "Situation: acute left knee injury. Background: left knee pain and "
    "swelling "
    "after a fall 3 days ago. Assessment: decreased range of motion, possible "
    "meniscal tear. Recommendation: orthopedic evaluation and MRI.",
    "Situation: chronic right hip pain. Background: progressive pain for 8 "
    "months, worse with walking. Assessment: likely osteoarthritis, failed "
    "conservative therapy. Recommendation: orthopedic evaluation for "
    "injection or arthroplasty.",
    "Situation: right shoulder weakness. Background: pain after lifting 2 "
    "weeks ago. Assessment: suspected rotator cuff tear. Recommendation: "
    "orthopedic consultation and imaging."};

}  // namespace

const std::vector<std::string>& TaskFamilies() {
  static const std::vector<std::string> kFamilies = {
      "patient_lookup",    "patient_age",    "record_vital",
      "latest_lab_24h",    "mg_replacement", "average_24h",
      "most_recent_value", "referral",       "k_replacement_with_followup",
      "a1c_reorder"};
  return kFamilies;
}

bool IsTaskFamily(const std::string& name) {
  const auto& all = TaskFamilies();
  return std::find(all.begin(), all.end(), name) != all.end();
}

int PatientSplitBucket(const std::string& patient) {
  return static_cast<int>(StableHash(patient) % 10);
}

bool IsTestPatient(const std::string& patient) {
  return PatientSplitBucket(patient) < kTestPatientBuckets;
}

std::vector<EhrTask> BuildTasks(const std::vector<json>& record,
                                const std::string& split,
                                const std::string& mode,
                                const TaskSelection& selection) {
  if (split != "train" && split != "test") {
    throw BadRequest(fmt::format(
        "split: expected \"train\" or \"test\", got \"{}\"", split));
  }
  for (const auto& f : selection.families) {
    if (!IsTaskFamily(f)) {
      throw BadRequest(fmt::format(
          "families: unknown task family \"{}\" (expected one of {})", f,
          fmt::join(TaskFamilies(), ", ")));
    }
  }
  const std::vector<PatientFacts> all = Facts(record);
  const std::string clock = kTaskClock;
  const int64_t now = ParseFhirTime(clock)->lo;
  const int64_t day_ago = now - kDay;
  std::map<std::pair<std::string, std::string>, int> name_dob_count;
  for (const auto& p : all)
    ++name_dob_count[{p.given + " " + p.family, p.birth_date}];

  // A patient belongs to one split for good: 30% of patients are test.
  std::vector<const PatientFacts*> patients;
  for (const auto& p : all) {
    if (IsTestPatient(p.id) == (split == "test")) patients.push_back(&p);
  }
  const size_t cap =
      static_cast<size_t>(selection.per_family > 0 ? selection.per_family
                          : split == "test"        ? kDefaultTestTasksPerFamily
                                            : kDefaultTrainTasksPerFamily);

  auto key = [&](const std::string& family, const std::string& patient,
                 json answer, json writes) {
    return json{{"family", family},
                {"mode", mode},
                {"patient", patient},
                {"task_clock", clock},
                {"answer", std::move(answer)},
                {"required_writes", std::move(writes)}};
  };

  std::vector<EhrTask> tasks;
  for (const auto& family : TaskFamilies()) {
    if (!selection.families.empty() &&
        std::find(selection.families.begin(), selection.families.end(),
                  family) == selection.families.end()) {
      continue;
    }
    std::vector<const PatientFacts*> order = patients;
    SortForFamily(order, family);
    std::vector<Candidate> cands;
    int variant = 0;
    for (const PatientFacts* p : order) {
      const std::string& id = p->id;
      const std::string mrn_q = fmt::format("patient {}", id);
      ++variant;
      if (family == "patient_lookup") {
        if (name_dob_count[{p->given + " " + p->family, p->birth_date}] != 1)
          continue;
        const bool missing = variant % 3 == 0;
        std::string dob = p->birth_date;
        if (missing) {
          // Same name, a birth date one day later: a near-miss that exists
          // for no patient.
          dob = FormatDate(ParseFhirTime(dob)->lo + kDay);
          if (name_dob_count.count({p->given + " " + p->family, dob})) continue;
        }
        cands.push_back(
            {missing ? "missing" : "found",
             {family, id,
              fmt::format(
                  "What is the MRN of the patient named {} {} with date "
                  "of birth {}? If no such patient exists, the answer "
                  "is \"Patient not found\".",
                  p->given, p->family, dob),
              key(family, id,
                  Answer(true,
                         json::array({missing ? "Patient not found" : id})),
                  json::array())}});
      } else if (family == "patient_age") {
        cands.push_back(
            {"any",
             {family, id,
              fmt::format(
                  "What is the age of the patient with MRN {}? It is {} "
                  "now; give the age in whole years (rounded down).",
                  id, clock),
              key(family, id,
                  Answer(true, json::array({AgeInYears(p->birth_date, now)})),
                  json::array())}});
      } else if (family == "record_vital") {
        const uint64_t h = StableHash(family + id);
        const int sys = 100 + static_cast<int>(h % 60);
        const int dia = 60 + static_cast<int>((h >> 8) % 35);
        const std::string text = fmt::format("{}/{} mmHg", sys, dia);
        cands.push_back(
            {"any",
             {family, id,
              fmt::format("I just measured the blood pressure of patient {}: "
                          "\"{}\". Record it with the current time ({}) as the "
                          "measurement time.",
                          id, text, clock),
              key(family, id, Answer(false, json::array()),
                  json::array({{{"kind", "vital_sign"},
                                {"patient", id},
                                {"systolic", sys},
                                {"diastolic", dia},
                                {"value_string", text},
                                {"effective", clock}}}))}});
      } else if (family == "latest_lab_24h") {
        const Measurement* m = Latest(*p, loinc::kMagnesium, day_ago, now);
        cands.push_back(
            {m ? "recent" : "none",
             {family, id,
              fmt::format(
                  "What is the most recent magnesium level of {} within "
                  "the last 24 hours? It is {} now. Answer with one "
                  "number in mg/dL, or -1 if there is no measurement "
                  "within the last 24 hours.",
                  mrn_q, clock),
              key(family, id, Answer(true, json::array({m ? m->value : -1.0})),
                  json::array())}});
      } else if (family == "mg_replacement") {
        const Measurement* m = Latest(*p, loinc::kMagnesium, day_ago, now);
        json writes = json::array();
        std::string branch = m ? "normal" : "none";
        if (m && m->value <= 1.9) {
          const double grams = m->value < 1.0 ? 4 : m->value < 1.5 ? 2 : 1;
          writes.push_back(
              {{"kind", "medication_order"},
               {"patient", id},
               {"ndc", "0338-1715-40"},
               {"dose", {{"value", grams}, {"ucum", "g"}, {"unit", "g"}}},
               {"route", "IV"},
               {"route_snomed", "47625008"},
               {"infusion_hours", grams},
               {"authored_on", clock}});
          branch = "low";
        }
        cands.push_back(
            {branch,
             {family, id,
              fmt::format(
                  "Check the last serum magnesium level of {} within the last "
                  "24 "
                  "hours. If it is low, order IV magnesium replacement "
                  "following "
                  "the dosing table; if there is no magnesium level from the "
                  "last 24 hours, order nothing. It is {} now. IV magnesium "
                  "sulfate is NDC 0338-1715-40. Dosing: mild deficiency "
                  "(1.5 to 1.9 mg/dL): 1 g IV over 1 hour; moderate (1 to <1.5 "
                  "mg/dL): 2 g IV over 2 hours; severe (<1 mg/dL): 4 g IV over "
                  "4 "
                  "hours. Answer with the magnesium value in mg/dL, or -1 if "
                  "none.",
                  mrn_q, clock),
              key(family, id,
                  Answer(true, json::array({m ? m->value : -1.0}), true),
                  writes)}});
      } else if (family == "average_24h") {
        auto it = p->labs.find(loinc::kCapillaryGlucose);
        double sum = 0;
        int n = 0;
        if (it != p->labs.end()) {
          for (const auto& m : it->second) {
            if (m.time >= day_ago && m.time <= now) {
              sum += m.value;
              ++n;
            }
          }
        }
        cands.push_back(
            {n ? "recent" : "none",
             {family, id,
              fmt::format(
                  "What is the average capillary blood glucose (CBG, "
                  "LOINC {}) of {} over the last 24 hours? It is {} now. "
                  "Answer with one number in mg/dL, or -1 if there is no "
                  "measurement within the last 24 hours.",
                  loinc::kCapillaryGlucose, mrn_q, clock),
              key(family, id,
                  Answer(true, json::array({n ? Round2(sum / n) : -1.0}), false,
                         0.1),
                  json::array())}});
      } else if (family == "most_recent_value") {
        const Measurement* m = Latest(*p, loinc::kCapillaryGlucose, 0, now);
        if (!m) continue;
        cands.push_back(
            {"any",
             {family, id,
              fmt::format(
                  "What is the most recent capillary blood glucose "
                  "(CBG, LOINC {}) of {}? It is {} now. Answer with one "
                  "number in mg/dL.",
                  loinc::kCapillaryGlucose, mrn_q, clock),
              key(family, id, Answer(true, json::array({m->value})),
                  json::array())}});
      } else if (family == "referral") {
        const std::string text = kReferralTexts[StableHash(family + id) % 3];
        cands.push_back(
            {"any",
             {family, id,
              fmt::format(
                  "Order an orthopedic surgery referral (SNOMED "
                  "306181000000106) for {} with stat priority. Put this "
                  "free text in the referral's note: \"{}\" It is {} now.",
                  mrn_q, text, clock),
              key(family, id, Answer(false, json::array()),
                  json::array({{{"kind", "service_request"},
                                {"patient", id},
                                {"system", "http://snomed.info/sct"},
                                {"code", "306181000000106"},
                                {"priority", "stat"},
                                {"occurrence", nullptr},
                                {"note", text},
                                {"authored_on", clock}}}))}});
      } else if (family == "k_replacement_with_followup") {
        const Measurement* m = Latest(*p, loinc::kPotassium, 0, now);
        json writes = json::array();
        std::string branch = m ? "normal" : "none";
        if (m && m->value < 3.5) {
          const long steps = std::lround((3.5 - m->value) * 10.0);
          writes.push_back(
              {{"kind", "medication_order"},
               {"patient", id},
               {"ndc", "40032-917-01"},
               {"dose",
                {{"value", steps * 10}, {"ucum", "meq"}, {"unit", "mEq"}}},
               {"route", "oral"},
               {"route_snomed", "26643006"},
               {"infusion_hours", nullptr},
               {"authored_on", clock}});
          writes.push_back(
              {{"kind", "service_request"},
               {"patient", id},
               {"system", "http://loinc.org"},
               {"code", loinc::kPotassium},
               {"priority", nullptr},
               {"occurrence", FormatDate(now + kDay) + "T08:00:00+00:00"},
               {"note", nullptr},
               {"authored_on", clock}});
          branch = "low";
        }
        cands.push_back(
            {branch,
             {family, id,
              fmt::format(
                  "Check the most recent potassium level of {}. If it is low "
                  "(below 3.5 mmol/L), order oral potassium replacement and "
                  "pair "
                  "it with a serum potassium lab (LOINC 2823-3) to be drawn "
                  "the "
                  "next morning at 08:00. It is {} now. Replacement potassium "
                  "chloride is NDC 40032-917-01; dose 10 mEq orally for every "
                  "0.1 "
                  "mmol/L below 3.5. Answer with the potassium value, or -1 if "
                  "none.",
                  mrn_q, clock),
              key(family, id,
                  Answer(true, json::array({m ? m->value : -1.0}), true),
                  writes)}});
      } else if (family == "a1c_reorder") {
        const Measurement* m = Latest(*p, loinc::kHbA1c, 0, now);
        const bool stale = !m || m->time < now - 365 * kDay;
        json writes = json::array();
        if (stale) {
          writes.push_back({{"kind", "service_request"},
                            {"patient", id},
                            {"system", "http://loinc.org"},
                            {"code", loinc::kHbA1c},
                            {"priority", "stat"},
                            {"occurrence", nullptr},
                            {"note", nullptr},
                            {"authored_on", clock}});
        }
        cands.push_back(
            {!m      ? "none"
             : stale ? "stale"
                     : "recent",
             {family, id,
              fmt::format(
                  "What is the last HbA1c (LOINC 4548-4) value in the chart of "
                  "{} and when was it recorded? If there is none, or it is "
                  "more "
                  "than one year old, order a new HbA1c lab test with stat "
                  "priority. It is {} now. Answer [value, effectiveDateTime], "
                  "or "
                  "[-1] if there is none.",
                  mrn_q, clock),
              key(family, id,
                  Answer(true,
                         m ? json::array({m->value, m->time_text})
                           : json::array({-1}),
                         true),
                  writes)}});
      }
    }
    for (auto& t : PickRoundRobin(std::move(cands), cap)) {
      tasks.push_back(std::move(t));
    }
  }
  return tasks;
}

}  // namespace clinrl::envs::ehr
