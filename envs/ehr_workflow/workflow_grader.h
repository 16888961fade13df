// Per-checkpoint grading of an ehr_workflow episode (PhysicianBench-style):
// each checkpoint of the workflow key (workflow_tasks.h) is a predicate over
// the executed writes (the POSTs the server accepted, status 201) and/or the
// FINISH answer. The reward is the fraction of checkpoints met; the episode
// is correct only when all are.
#pragma once

#include <nlohmann/json.hpp>

namespace clinrl::envs::ehr {

using nlohmann::json;

// `episode`: {"finish": [..] or null, "writes": [{"body", "status"}, ..]}
// (the ehr_fhir episode record). Returns
//   {"checkpoints": [{"name", "met", "why"}], "met": n, "total": k,
//    "reward": n / k, "correct": n == k}
// `why` says what was missing or wrong ("" when met).
json GradeWorkflow(const json& key, const json& episode);

}  // namespace clinrl::envs::ehr
