// The action grammar of the diagnostic dialogue (one action per turn):
//
//   ASK: <question>                 free text naming symptoms or history
//   EXAM: <system>                  vitals, heart, lungs, abdomen, neuro,
//                                   skin, throat, joints, legs
//   TEST: <test name>               e.g. ecg, troponin, chest x-ray
//   DISPOSITION: <home|clinic|emergency>
//   DIAGNOSIS: <condition name or ICD-10 code>   ends the episode
//
// Forgiving on purpose, because a tiny model writes it: the verb is
// case-insensitive, the colon may be a dash or missing, markdown bullets and
// bold are ignored, and only the first non-blank line counts. Synonym verbs:
// EXAMINE, ORDER, DX, DIAGNOSE, DISPO.
#pragma once

#include <cstddef>
#include <string>

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

}  // namespace clinrl::envs::dx
