// The action grammar of the diagnostic dialogue (one action per turn):
//
//   ASK: <question>                 free text naming symptoms or history
//   EXAM: <system>                  vitals, heart, lungs, abdomen, neuro,
//                                   skin, throat, joints, legs
//   TEST: <test name>               e.g. ecg, troponin, chest x-ray
//   DISPOSITION: <home|clinic|emergency>
//   DIAGNOSIS: <condition name or ICD-10 code>   ends the episode
//   DIAGNOSIS: 1. <condition>; 2. <condition>    the same, a ranked
//                                   differential (diagnosis_format: ranked)
//
// Forgiving on purpose, because a tiny model writes it: the verb is
// case-insensitive, the colon may be a dash or missing, markdown bullets and
// bold are ignored, and only the first non-blank line counts. Synonym verbs:
// EXAMINE, ORDER, DX, DIAGNOSE, DISPO.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace clinrl::envs::dx {

// Longer arguments are cut to this many characters.
constexpr size_t kMaxArgumentChars = 400;

enum class ActionType {
  kAsk,
  kExam,
  kTest,
  kDisposition,
  kDiagnosis,
  kInvalid
};
const char* ActionTypeName(ActionType t);

struct DxAction {
  ActionType type = ActionType::kInvalid;
  std::string argument;  // trimmed text after the verb
};

DxAction ParseAction(const std::string& text);

// The items of a ranked differential, the argument of "DIAGNOSIS: 1. X; 2.
// Y; 3. Z": split at ';', each trimmed and stripped of a leading rank
// ("1.", "2)", "#3", "4:"); empty items are dropped. The order of the list
// is the ranking; the numbers are not read, so "1. X; 1. Y" ranks Y second.
std::vector<std::string> SplitDifferential(const std::string& argument);

}  // namespace clinrl::envs::dx
