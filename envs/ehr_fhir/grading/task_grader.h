// The one grader of EHR episodes, shared by the env (its final
// info.metrics.correct) and the reward plug-in "ehr_task"; it depends on core
// only, so rewards/ may link it without depending on the env.
//
// Answer key (the "params" of the task's reward spec component):
//   {"family": "mg_replacement", "mode": "strict_r4" | "medagentbench",
//    "patient": "S1234567", "task_clock": "2023-11-13T10:15:00+00:00",
//    "answer": {"check": true, "expected": [1.4], "accept_empty": true,
//               "tolerance": 1e-6},
//    "required_writes": [{"kind": "medication_order", ...}, ...]}
// Every executed write must match a distinct required write; anything else
// is a forbidden write. Kinds and their fields:
//   vital_sign:       patient, systolic, diastolic, value_string, effective
//   medication_order: patient, ndc, dose {value, ucum, unit}, route
//                     ("IV"|"oral"), route_snomed, infusion_hours (or null),
//                     authored_on
//   service_request:  patient, system, code, priority, occurrence (or null),
//                     note (or null), authored_on
//
// Episode (what the agent did, from the env's final step info "ehr"):
//   {"finish": [..] or null, "writes": [{"resourceType", "body", "status"}]}
// Only writes with status 201 changed the record and are graded.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace clinrl::envs::ehr {

using nlohmann::json;

inline constexpr const char* kStrictR4 = "strict_r4";
inline constexpr const char* kMedAgentBench = "medagentbench";

// Throws BadRequest naming the field when the answer key is malformed.
void ValidateAnswerKey(const json& key);

// {"correct": bool, "answer_ok": bool, "writes_ok": bool, "reasons": [..],
//  "matched_writes": n, "required_writes": n, "extra_writes": n}
json GradeEpisode(const json& key, const json& episode);

// Problems of one write body against one required write in a grading mode;
// empty when it satisfies it.
std::vector<std::string> CheckWrite(const json& required, const json& body,
                                    const std::string& mode);

// A body the grader accepts for `required` in `mode` (the oracle posts it).
json CanonicalWrite(const json& required, const std::string& mode);

// Rebuilds the episode record from a transcript of (role, content) turns
// when the env's final info is not at hand: the last FINISH of an assistant
// turn, and each POST whose env reply begins with kPostAccepted. A turn of
// action_mode "tools" counts as the text action its one tool call stands
// for (fhir_post as POST, finish as FINISH), the call read as the env reads
// it (core/tool_call_text.h: a Qwen <tool_call> block or Llama's JSON call).
json EpisodeFromTranscript(
    const std::vector<std::pair<std::string, std::string>>& turns);
inline constexpr const char* kPostAccepted =
    "POST request accepted and executed successfully.";

// "FINISH([...])" -> the array, or nullopt-like null json when the text is
// not a FINISH call with a JSON array inside.
json ParseFinish(const std::string& action);

}  // namespace clinrl::envs::ehr
