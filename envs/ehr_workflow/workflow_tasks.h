// The ehr_workflow task families: multi-step clinical workflows over the
// ehr_fhir synthetic record, each graded per checkpoint
// (workflow_grader.h). A task is a pure function of (record, split, index).
//
//   family               checkpoints
//   med_reconciliation   creatinine_reported, allergy_reported,
//                        antibiotic_allergy_safe, nsaid_renal_safe,
//                        famotidine_renal_dose
//   order_set_followup   lisinopril: lisinopril_order, potassium_followup,
//                        creatinine_followup, potassium_reported;
//                        warfarin: warfarin_order, inr_day3, inr_day7,
//                        creatinine_reported
//   discharge_check      systolic_reported, potassium_reported,
//                        active_medications_reported, followup_visit,
//                        potassium_recheck
//
// Workflow key (the grader's input, also in the reset info for the oracle):
//   {"family", "variant", "mode", "patient", "task_clock",
//    "reads": ["Observation?patient=..", ..]   GETs the workflow needs,
//    "answer": [..]                            the FINISH list it expects,
//    "checkpoints": [{"name", "kind": "answer" | "order", ..}]}
// An "answer" checkpoint: {"index", "expected", "tolerance"}: FINISH's
// element `index` equals `expected` (numbers within tolerance, strings
// case-insensitively). An "order" checkpoint: {"resource", "codes", "names",
// "required" (a task_grader.h required write, or null), "max_count"}: the
// executed writes of `resource` that mention one of the codes or names
// number at most max_count and, when `required` is set, one of them
// satisfies it; with `required` null there must be none.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::envs::ehr {

using nlohmann::json;

struct WorkflowTask {
  std::string family;
  std::string patient;
  std::string question;
  json key;  // the workflow key above
};

const std::vector<std::string>& WorkflowFamilies();
bool IsWorkflowFamily(const std::string& name);
// train, validation, test: a patient belongs to one split only.
const std::vector<std::string>& WorkflowSplits();

struct WorkflowSelection {
  std::vector<std::string> families;  // empty = all three
  int64_t per_family = 0;             // 0 = every eligible patient
};

// The renal threshold the med_reconciliation prompt states.
inline constexpr double kReducedRenalCreatinine = 1.5;  // mg/dL
// The potassium below which discharge_check asks for a recheck.
inline constexpr double kLowPotassium = 3.5;  // mmol/L

// Tasks of `split` in a fixed order; `mode` (strict_r4 | medagentbench) is
// how the writes are graded. Throws BadRequest naming an unknown split or
// family.
std::vector<WorkflowTask> BuildWorkflowTasks(
    const std::vector<json>& record, const std::string& split,
    const std::string& mode, const WorkflowSelection& selection = {});

// The split a patient id belongs to, by ehr_fhir's patient split
// (ehr_tasks.h): its test patients (30%) are test, two of the other seven
// buckets (20%) validation, the rest (50%) train.
std::string WorkflowSplitOf(const std::string& patient);

}  // namespace clinrl::envs::ehr
