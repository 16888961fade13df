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

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

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

}  // namespace clinrl::envs::ehr
