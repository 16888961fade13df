#include "envs/ehr_workflow/workflow_tasks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "core/error.h"
#include "envs/ehr_fhir/ehr_tasks.h"
#include "envs/ehr_fhir/fhir_time.h"
#include "envs/ehr_fhir/synthetic_record.h"

namespace clinrl::envs::ehr {
namespace {

constexpr int64_t kDay = 86400;
const char* kLoincSystem = "http://loinc.org";
const char* kSnomedSystem = "http://snomed.info/sct";
const char* kPenicillinRxNorm = "7980";
const char* kLisinoprilRxNorm = "314076";
const char* kApixabanRxNorm = "1364445";
const char* kInr = "6301-6";
const char* kFollowUpVisit = "390906007";

// A drug the prompts name: the product code the agent must order by, and the
// codes and words that identify an order of it, whatever its form.
struct Drug {
  const char* name;
  const char* ndc;
  const char* rxnorm;
};
const Drug kAmoxicillin{"amoxicillin", "0093-3109-01", "308191"};
const Drug kAzithromycin{"azithromycin", "0069-3070-30", "248656"};
const Drug kIbuprofen{"ibuprofen", "0904-5855-61", "197806"};
const Drug kFamotidine{"famotidine", "0006-0963-31", "310273"};
const Drug kLisinopril{"lisinopril", "68180-0513-01", kLisinoprilRxNorm};
const Drug kWarfarin{"warfarin", "0056-0172-70", "855332"};

struct Lab {
  int64_t time;
  double value;
};

// What the workflows read of one patient's chart at the task clock.
struct Chart {
  std::string id;
  std::map<std::string, std::vector<Lab>> labs;  // by LOINC, oldest first
  std::vector<Lab> systolic;                     // from BP panels
  std::set<std::string> allergies;               // coding codes
  std::set<std::string> active_meds;             // RxNorm codes
  int64_t active_med_orders = 0;
  bool admitted = false;  // an in-progress encounter
};

std::string PatientOf(const json& r) {
  const char* field = r.value("resourceType", "") == "AllergyIntolerance"
                          ? "patient"
                          : "subject";
  const std::string ref = r.value(field, json::object()).value("reference", "");
  return ref.rfind("Patient/", 0) == 0 ? ref.substr(8) : "";
}

std::vector<std::string> Codes(const json& concept) {
  std::vector<std::string> out;
  for (const auto& c : concept.value("coding", json::array())) {
    out.push_back(c.value("code", ""));
  }
  return out;
}

void AddObservation(Chart& chart, const json& r, int64_t now) {
  const auto when = ParseFhirTime(r.value("effectiveDateTime", ""));
  const auto codes = Codes(r.value("code", json::object()));
  if (!when || when->lo > now || codes.empty()) return;
  if (r.contains("valueQuantity")) {
    chart.labs[codes[0]].push_back(
        {when->lo, r["valueQuantity"].value("value", 0.0)});
  }
  for (const auto& comp : r.value("component", json::array())) {
    const auto cc = Codes(comp.value("code", json::object()));
    if (!cc.empty() && cc[0] == loinc::kSystolic) {
      chart.systolic.push_back(
          {when->lo, comp["valueQuantity"].value("value", 0.0)});
    }
  }
}

void AddResource(Chart& chart, const json& r, int64_t now) {
  const std::string type = r.value("resourceType", "");
  if (type == "Observation") {
    AddObservation(chart, r, now);
  } else if (type == "AllergyIntolerance") {
    for (const auto& c : Codes(r.value("code", json::object()))) {
      chart.allergies.insert(c);
    }
  } else if (type == "MedicationRequest" && r.value("status", "") == "active") {
    ++chart.active_med_orders;
    for (const auto& c :
         Codes(r.value("medicationCodeableConcept", json::object()))) {
      chart.active_meds.insert(c);
    }
  } else if (type == "Encounter" && r.value("status", "") == "in-progress") {
    chart.admitted = true;
  }
}

std::vector<Chart> Charts(const std::vector<json>& record, int64_t now) {
  std::map<std::string, Chart> by_id;
  for (const auto& r : record) {
    if (r.value("resourceType", "") == "Patient") {
      by_id[r.value("id", "")].id = r.value("id", "");
    }
  }
  for (const auto& r : record) {
    auto it = by_id.find(PatientOf(r));
    if (it != by_id.end()) AddResource(it->second, r, now);
  }
  std::vector<Chart> out;
  for (auto& [id, chart] : by_id) {
    auto by_time = [](const Lab& a, const Lab& b) { return a.time < b.time; };
    for (auto& [code, series] : chart.labs) {
      std::stable_sort(series.begin(), series.end(), by_time);
    }
    std::stable_sort(chart.systolic.begin(), chart.systolic.end(), by_time);
    out.push_back(std::move(chart));
  }
  return out;  // ordered by id
}

const Lab* Latest(const Chart& c, const std::string& loinc) {
  auto it = c.labs.find(loinc);
  return it == c.labs.end() || it->second.empty() ? nullptr
                                                  : &it->second.back();
}

// One task's parts while it is being built.
struct Draft {
  std::string branch;  // for the round-robin over branches
  WorkflowTask task;
};

class TaskWriter {
 public:
  TaskWriter(std::string mode, int64_t now)
      : mode_(std::move(mode)), now_(now), clock_(kTaskClock) {}

  std::optional<Draft> MedReconciliation(const Chart& c) const;
  std::optional<Draft> OrderSet(const Chart& c) const;
  std::optional<Draft> Discharge(const Chart& c) const;

 private:
  json Key(const std::string& family, const std::string& variant,
           const Chart& c, json reads, json answer, json checkpoints) const {
    return {{"family", family},
            {"variant", variant},
            {"mode", mode_},
            {"patient", c.id},
            {"task_clock", clock_},
            {"reads", std::move(reads)},
            {"answer", std::move(answer)},
            {"checkpoints", std::move(checkpoints)}};
  }
  static json AnswerCheck(const std::string& name, int index, json expected,
                          double tolerance) {
    return {{"name", name},
            {"kind", "answer"},
            {"index", index},
            {"expected", std::move(expected)},
            {"tolerance", tolerance}};
  }
  // An order checkpoint over MedicationRequests of `drug`: `dose_mg` 0 means
  // the drug must not be ordered.
  json DrugCheck(const std::string& name, const Chart& c,
                 const std::vector<Drug>& family, const Drug* want,
                 double dose_mg) const {
    json codes = json::array(), names = json::array();
    for (const Drug& d : family) {
      codes.push_back(d.ndc);
      codes.push_back(d.rxnorm);
      names.push_back(d.name);
    }
    json required;
    if (want != nullptr) {
      required = {
          {"kind", "medication_order"},
          {"patient", c.id},
          {"ndc", want->ndc},
          {"dose", {{"value", dose_mg}, {"ucum", "mg"}, {"unit", "mg"}}},
          {"route", "oral"},
          {"route_snomed", "26643006"},
          {"infusion_hours", nullptr},
          {"authored_on", clock_}};
    }
    return {{"name", name},
            {"kind", "order"},
            {"resource", "MedicationRequest"},
            {"codes", codes},
            {"names", names},
            {"required", required},
            {"max_count", want ? 1 : 0}};
  }
  // An order checkpoint over ServiceRequests with `code`; an empty `when`
  // means none may be ordered.
  json ServiceCheck(const std::string& name, const Chart& c,
                    const std::string& system, const std::string& code,
                    const std::string& when, int max_count = 1) const {
    json required;
    if (!when.empty()) {
      required = {{"kind", "service_request"}, {"patient", c.id},
                  {"system", system},          {"code", code},
                  {"priority", nullptr},       {"occurrence", when},
                  {"note", nullptr},           {"authored_on", clock_}};
    }
    return {{"name", name},
            {"kind", "order"},
            {"resource", "ServiceRequest"},
            {"codes", json::array({code})},
            {"names", json::array()},
            {"required", required},
            {"max_count", when.empty() ? 0 : max_count}};
  }
  std::string DaysAhead(int64_t days, const char* time) const {
    return FormatDate(now_ + days * kDay) + "T" + time + "+00:00";
  }
  static std::string Newest(const std::string& id, const std::string& code) {
    return fmt::format("Observation?patient={}&code={}&_sort=-date&_count=1",
                       id, code);
  }
  std::optional<Draft> Lisinopril(const Chart& c) const;
  std::optional<Draft> Warfarin(const Chart& c) const;

  std::string mode_;
  int64_t now_;
  std::string clock_;
};

const char* kOrderRules =
    "Every order: status active, intent order, authoredOn the current time.";

std::optional<Draft> TaskWriter::MedReconciliation(const Chart& c) const {
  const Lab* cr = Latest(c, loinc::kCreatinine);
  if (cr == nullptr) return std::nullopt;
  const bool allergic = c.allergies.count(kPenicillinRxNorm) > 0;
  const bool reduced = cr->value >= kReducedRenalCreatinine;
  json checks = json::array(
      {AnswerCheck("creatinine_reported", 0, cr->value, 0.005),
       AnswerCheck("allergy_reported", 1, allergic ? "yes" : "no", 0),
       DrugCheck("antibiotic_allergy_safe", c, {kAmoxicillin, kAzithromycin},
                 allergic ? &kAzithromycin : &kAmoxicillin, 500),
       DrugCheck("nsaid_renal_safe", c, {kIbuprofen},
                 reduced ? nullptr : &kIbuprofen, 400),
       DrugCheck("famotidine_renal_dose", c, {kFamotidine}, &kFamotidine,
                 reduced ? 20 : 40)});
  const std::string q = fmt::format(
      "Reconcile the planned medication list of patient {} before it is "
      "ordered. It is {} now. The plan: amoxicillin 500 mg orally (NDC {}), "
      "ibuprofen 400 mg orally (NDC {}), famotidine 40 mg orally (NDC {}). "
      "Check the patient's allergies and the most recent serum creatinine "
      "(LOINC {}). With a penicillin allergy, do not order amoxicillin: order "
      "azithromycin 500 mg orally (NDC {}) instead. With reduced renal "
      "function (latest creatinine {} mg/dL or higher), do not order "
      "ibuprofen, and order famotidine 20 mg instead of 40 mg. Order the "
      "reconciled list as MedicationRequests (oral route, dose in mg). {} "
      "Then answer FINISH([latest creatinine in mg/dL, \"yes\" or \"no\" for "
      "a penicillin allergy]).",
      c.id, clock_, kAmoxicillin.ndc, kIbuprofen.ndc, kFamotidine.ndc,
      loinc::kCreatinine, kAzithromycin.ndc, kReducedRenalCreatinine,
      kOrderRules);
  json reads = {"AllergyIntolerance?patient=" + c.id,
                Newest(c.id, loinc::kCreatinine)};
  json answer = {cr->value, allergic ? "yes" : "no"};
  return Draft{
      fmt::format("{}{}", allergic ? "allergy" : "no_allergy",
                  reduced ? "_reduced_renal" : "_normal_renal"),
      {"med_reconciliation", c.id, q,
       Key("med_reconciliation", "reconcile", c, reads, answer, checks)}};
}

std::optional<Draft> TaskWriter::Lisinopril(const Chart& c) const {
  const Lab* k = Latest(c, loinc::kPotassium);
  if (k == nullptr) return std::nullopt;
  const bool on_it = c.active_meds.count(kLisinoprilRxNorm) > 0;
  const std::string when = DaysAhead(7, "08:00:00");
  json checks =
      json::array({DrugCheck("lisinopril_order", c, {kLisinopril},
                             on_it ? nullptr : &kLisinopril, 10),
                   ServiceCheck("potassium_followup", c, kLoincSystem,
                                loinc::kPotassium, when),
                   ServiceCheck("creatinine_followup", c, kLoincSystem,
                                loinc::kCreatinine, when),
                   AnswerCheck("potassium_reported", 0, k->value, 0.005)});
  const std::string q = fmt::format(
      "Start patient {} on lisinopril 10 mg orally once daily (NDC {}) for "
      "blood pressure, unless the patient already has an active lisinopril "
      "order: then do not order a duplicate. It is {} now. An ACE inhibitor "
      "needs monitoring: either way, order a serum potassium (LOINC {}) and a "
      "serum creatinine (LOINC {}) as ServiceRequests drawn in 7 days, "
      "occurrenceDateTime {}. {} Then answer FINISH([the most recent serum "
      "potassium in mmol/L]).",
      c.id, kLisinopril.ndc, clock_, loinc::kPotassium, loinc::kCreatinine,
      when, kOrderRules);
  json reads = {"MedicationRequest?patient=" + c.id + "&status=active",
                Newest(c.id, loinc::kPotassium)};
  return Draft{on_it ? "lisinopril_active" : "lisinopril_new",
               {"order_set_followup", c.id, q,
                Key("order_set_followup", "lisinopril", c, reads,
                    json::array({k->value}), checks)}};
}

std::optional<Draft> TaskWriter::Warfarin(const Chart& c) const {
  const Lab* cr = Latest(c, loinc::kCreatinine);
  // A patient on apixaban is not started on a second anticoagulant.
  if (cr == nullptr || c.active_meds.count(kApixabanRxNorm)) {
    return std::nullopt;
  }
  const std::string day3 = DaysAhead(3, "08:00:00");
  const std::string day7 = DaysAhead(7, "08:00:00");
  json checks =
      json::array({DrugCheck("warfarin_order", c, {kWarfarin}, &kWarfarin, 5),
                   ServiceCheck("inr_day3", c, kLoincSystem, kInr, day3, 2),
                   ServiceCheck("inr_day7", c, kLoincSystem, kInr, day7, 2),
                   AnswerCheck("creatinine_reported", 0, cr->value, 0.005)});
  const std::string q = fmt::format(
      "Start patient {} on warfarin 5 mg orally once daily (NDC {}). It is {} "
      "now. Warfarin needs INR monitoring: order an INR (LOINC {}) as a "
      "ServiceRequest drawn 3 days from now (occurrenceDateTime {}) and "
      "another drawn 7 days from now ({}). {} Then answer FINISH([the most "
      "recent serum creatinine (LOINC {}) in mg/dL]).",
      c.id, kWarfarin.ndc, clock_, kInr, day3, day7, kOrderRules,
      loinc::kCreatinine);
  json reads = {"MedicationRequest?patient=" + c.id + "&status=active",
                Newest(c.id, loinc::kCreatinine)};
  return Draft{"warfarin",
               {"order_set_followup", c.id, q,
                Key("order_set_followup", "warfarin", c, reads,
                    json::array({cr->value}), checks)}};
}

std::optional<Draft> TaskWriter::OrderSet(const Chart& c) const {
  return StableHash("order_set_followup:drug:" + c.id) % 2 == 0 ? Lisinopril(c)
                                                                : Warfarin(c);
}

std::optional<Draft> TaskWriter::Discharge(const Chart& c) const {
  const Lab* k = Latest(c, loinc::kPotassium);
  if (!c.admitted || k == nullptr || c.systolic.empty()) return std::nullopt;
  const bool low = k->value < kLowPotassium;
  const std::string visit = DaysAhead(7, "09:00:00");
  const std::string recheck = DaysAhead(1, "08:00:00");
  const double sys = c.systolic.back().value;
  const auto meds = static_cast<double>(c.active_med_orders);
  json checks = json::array(
      {AnswerCheck("systolic_reported", 0, sys, 0.5),
       AnswerCheck("potassium_reported", 1, k->value, 0.005),
       AnswerCheck("active_medications_reported", 2, meds, 0),
       ServiceCheck("followup_visit", c, kSnomedSystem, kFollowUpVisit, visit),
       ServiceCheck("potassium_recheck", c, kLoincSystem, loinc::kPotassium,
                    low ? recheck : "")});
  const std::string q = fmt::format(
      "Patient {} is being discharged from the current admission today. It "
      "is {} now. Before discharge, find the last recorded systolic blood "
      "pressure (LOINC {}, a component of the blood pressure panel {}), the "
      "most recent serum potassium (LOINC {}) and the number of active "
      "medication orders (MedicationRequest, status active). Order a "
      "follow-up clinic visit (ServiceRequest, SNOMED {}) for {}. If the "
      "latest potassium is below {} mmol/L, also order a repeat serum "
      "potassium (LOINC {}) for the next morning, {}; otherwise order no "
      "potassium lab. Put the times in occurrenceDateTime. {} Then answer "
      "FINISH([systolic in mmHg, potassium in mmol/L, number of active "
      "medication orders]).",
      c.id, clock_, loinc::kSystolic, loinc::kBloodPressurePanel,
      loinc::kPotassium, kFollowUpVisit, visit, kLowPotassium,
      loinc::kPotassium, recheck, kOrderRules);
  json reads = {Newest(c.id, loinc::kBloodPressurePanel),
                Newest(c.id, loinc::kPotassium),
                "MedicationRequest?patient=" + c.id + "&status=active"};
  return Draft{low ? "potassium_low" : "potassium_normal",
               {"discharge_check", c.id, q,
                Key("discharge_check", "discharge", c, reads,
                    json::array({sys, k->value, meds}), checks)}};
}

void CheckSelection(const std::string& split,
                    const WorkflowSelection& selection) {
  const auto& splits = WorkflowSplits();
  if (std::find(splits.begin(), splits.end(), split) == splits.end()) {
    throw BadRequest(
        fmt::format("split: unknown split \"{}\" (expected one of {})", split,
                    fmt::join(splits, ", ")));
  }
  for (const auto& f : selection.families) {
    if (!IsWorkflowFamily(f)) {
      throw BadRequest(fmt::format(
          "families: unknown task family \"{}\" (expected one of {})", f,
          fmt::join(WorkflowFamilies(), ", ")));
    }
  }
}

}  // namespace

const std::vector<std::string>& WorkflowFamilies() {
  static const std::vector<std::string> kFamilies = {
      "med_reconciliation", "order_set_followup", "discharge_check"};
  return kFamilies;
}

bool IsWorkflowFamily(const std::string& name) {
  const auto& all = WorkflowFamilies();
  return std::find(all.begin(), all.end(), name) != all.end();
}

const std::vector<std::string>& WorkflowSplits() {
  static const std::vector<std::string> kSplits = {"train", "validation",
                                                   "test"};
  return kSplits;
}

std::string WorkflowSplitOf(const std::string& patient) {
  // ehr_fhir's test patients; two of the other seven buckets validate.
  if (IsTestPatient(patient)) return "test";
  return PatientSplitBucket(patient) < kTestPatientBuckets + 2 ? "validation"
                                                               : "train";
}

std::vector<WorkflowTask> BuildWorkflowTasks(
    const std::vector<json>& record, const std::string& split,
    const std::string& mode, const WorkflowSelection& selection) {
  CheckSelection(split, selection);
  const int64_t now = ParseFhirTime(kTaskClock)->lo;
  const std::vector<Chart> charts = Charts(record, now);
  const TaskWriter writer(mode, now);
  std::vector<WorkflowTask> tasks;
  for (const auto& family : WorkflowFamilies()) {
    const auto& only = selection.families;
    if (!only.empty() &&
        std::find(only.begin(), only.end(), family) == only.end()) {
      continue;
    }
    std::vector<const Chart*> order;
    for (const auto& c : charts) {
      if (WorkflowSplitOf(c.id) == split) order.push_back(&c);
    }
    SortForFamily(order, family);
    std::vector<Draft> drafts;
    for (const Chart* c : order) {
      auto d = family == "med_reconciliation"   ? writer.MedReconciliation(*c)
               : family == "order_set_followup" ? writer.OrderSet(*c)
                                                : writer.Discharge(*c);
      if (d) drafts.push_back(std::move(*d));
    }
    const size_t cap = selection.per_family > 0
                           ? static_cast<size_t>(selection.per_family)
                           : drafts.size();
    for (auto& t : PickRoundRobin(std::move(drafts), cap)) {
      tasks.push_back(std::move(t));
    }
  }
  return tasks;
}

}  // namespace clinrl::envs::ehr
