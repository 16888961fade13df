// MedAgentBench's ten task categories, generated from a synthetic record at
// a fixed task clock (kTaskClock). Each task carries its question and the
// answer key the grader (grading/task_grader.h) checks.
//
//   family                      MedAgentBench  what the agent must do
//   patient_lookup              task1          MRN from name + DOB, or "Patient
//   not found" patient_age                 task2          age in whole years
//   record_vital                task3          POST a blood-pressure
//   Observation latest_lab_24h              task4          magnesium within 24
//   h, or -1 mg_replacement              task5          IV magnesium order from
//   a dosing table if low average_24h                 task6          mean
//   capillary glucose over 24 h, or -1 most_recent_value           task7 last
//   capillary glucose referral                    task8          POST a
//   ServiceRequest with free text k_replacement_with_followup task9 oral
//   potassium order + next-morning lab if low a1c_reorder task10         last
//   HbA1c [value, time]; reorder if > 1 year old
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "envs/ehr_fhir/splitmix.h"

namespace clinrl::envs::ehr {

using nlohmann::json;

struct EhrTask {
  std::string family;
  std::string patient;
  std::string question;
  json answer_key;  // grader params (task_grader.h)
};

const std::vector<std::string>& TaskFamilies();
// True for a name in TaskFamilies().
bool IsTaskFamily(const std::string& name);

// Which tasks a split holds: the families (empty = all ten, in
// TaskFamilies() order) and at most `per_family` tasks of each (0 = the
// split's default, kDefaultTestTasksPerFamily or kDefaultTrainTasksPerFamily).
struct TaskSelection {
  std::vector<std::string> families;
  int64_t per_family = 0;
};
inline constexpr int64_t kDefaultTestTasksPerFamily = 10;
inline constexpr int64_t kDefaultTrainTasksPerFamily = 30;

// Tasks of `split` ("train" or "test": disjoint patients) for the record, in
// a fixed order; `mode` is stored in each answer key. A larger `per_family`
// keeps the smaller selection as its prefix. Throws BadRequest naming an
// unknown family.
std::vector<EhrTask> BuildTasks(const std::vector<json>& record,
                                const std::string& split,
                                const std::string& mode,
                                const TaskSelection& selection = {});

// The patient split of the EHR envs. A patient's bucket, 0..9, is a stable
// hash of the id; buckets below kTestPatientBuckets (30% of patients) are
// test patients, in ehr_fhir and in ehr_workflow, so no env trains on them.
// An env may divide the other buckets as it likes.
inline constexpr int kTestPatientBuckets = 3;
int PatientSplitBucket(const std::string& patient);
bool IsTestPatient(const std::string& patient);

// Orders the patients a task family visits: by StableHash(family + id), so
// each family takes the split's patients in its own fixed order.
template <class Patient>
void SortForFamily(std::vector<const Patient*>& patients,
                   const std::string& family) {
  std::sort(patients.begin(), patients.end(),
            [&](const Patient* a, const Patient* b) {
              return StableHash(family + a->id) < StableHash(family + b->id);
            });
}

// At most `cap` tasks of `candidates` (each with a `branch` and a `task`),
// round-robin over the branches in name order, so that a split mixes the
// cases ("act" and "do nothing", allergic or not, ...) instead of whatever
// the data favours.
template <class Candidate>
auto PickRoundRobin(std::vector<Candidate> candidates, size_t cap)
    -> std::vector<decltype(Candidate::task)> {
  std::map<std::string, std::vector<Candidate*>> by_branch;
  for (auto& c : candidates) by_branch[c.branch].push_back(&c);
  std::vector<decltype(Candidate::task)> picked;
  for (size_t round = 0; picked.size() < cap; ++round) {
    bool any = false;
    for (auto& [branch, list] : by_branch) {
      if (round < list.size() && picked.size() < cap) {
        picked.push_back(std::move(list[round]->task));
        any = true;
      }
    }
    if (!any) break;
  }
  return picked;
}

}  // namespace clinrl::envs::ehr
