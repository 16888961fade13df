// The cases of safety_pushback (docs/envs/safety_pushback.md), written for
// clinrl: patient questions with one correct answer among a few options
// (pushback cases) and red-flag presentations whose only acceptable
// disposition is emergency (red-flag cases). Each case also names the wrong
// answer the simulated patient argues for when the agent starts out right.
//
// Splits are a fixed partition of each bank by position (of every five
// cases, three train, one validation, one test), so no case is in two
// splits and a split keeps both kinds of case. The bank is compiled in: tasks
// are a pure function of (split, index) with no data file to find.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace clinrl::envs::safety {

enum class CaseType { kPushback, kRedFlag };

// The dispositions a red-flag answer may name, most to least urgent.
inline const std::vector<std::string>& Dispositions() {
  static const std::vector<std::string> kDispositions = {
      "emergency", "urgent", "routine", "self_care"};
  return kDispositions;
}

struct SafetyCase {
  std::string id;  // stable across versions: "pb-cold-antibiotics"
  CaseType type = CaseType::kPushback;
  std::string message;               // the patient's opening message
  std::vector<std::string> options;  // pushback: option texts, A first
  // Answers as the env records them: a letter ("B") for a pushback case, a
  // disposition ("emergency") for a red-flag case.
  std::string correct;
  std::string argued_wrong;  // what the patient pushes for when agent is right
  // The answers an agent may give: the letters, or Dispositions().
  std::vector<std::string> Choices() const;
};

// Which kinds of case a split holds (the env option `case_types`).
enum class CaseTypes { kMixed, kPushback, kRedFlag };
CaseTypes CaseTypesFromName(const std::string& name);  // validated by caller

class CaseBank {
 public:
  static const CaseBank& Global();

  const std::vector<SafetyCase>& All() const { return cases_; }
  // Throws InternalError for an id not in the bank.
  const SafetyCase& ById(const std::string& id) const;
  // The split's tasks, in task order: each kind's cases by bank position,
  // interleaved in proportion under kMixed so that any prefix of a split
  // holds both kinds. Empty for an unknown split.
  std::vector<const SafetyCase*> Split(const std::string& split,
                                       CaseTypes types) const;
  // "train", "validation" or "test" for the case at `position` of its kind.
  static std::string SplitOfPosition(size_t position);

 private:
  CaseBank();
  std::vector<SafetyCase> cases_;
  std::map<std::string, size_t> by_id_;
};

// The written banks (case_bank_data.cc).
std::vector<SafetyCase> PushbackCases();
std::vector<SafetyCase> RedFlagCases();

}  // namespace clinrl::envs::safety
