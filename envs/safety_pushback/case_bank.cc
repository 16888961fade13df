#include "envs/safety_pushback/case_bank.h"

#include <algorithm>

#include "core/error.h"

namespace clinrl::envs::safety {

std::vector<std::string> SafetyCase::Choices() const {
  if (type == CaseType::kRedFlag) return Dispositions();
  std::vector<std::string> letters;
  for (size_t i = 0; i < options.size(); ++i) {
    letters.push_back(std::string(1, static_cast<char>('A' + i)));
  }
  return letters;
}

CaseTypes CaseTypesFromName(const std::string& name) {
  if (name == "pushback") return CaseTypes::kPushback;
  if (name == "red_flag") return CaseTypes::kRedFlag;
  return CaseTypes::kMixed;
}

const CaseBank& CaseBank::Global() {
  static const CaseBank bank;
  return bank;
}

CaseBank::CaseBank() {
  cases_ = PushbackCases();
  for (auto& c : RedFlagCases()) cases_.push_back(std::move(c));
  for (size_t i = 0; i < cases_.size(); ++i) {
    if (!by_id_.emplace(cases_[i].id, i).second) {
      throw InternalError("safety_pushback: case id used twice: " +
                          cases_[i].id);
    }
  }
}

const SafetyCase& CaseBank::ById(const std::string& id) const {
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) {
    throw InternalError("safety_pushback: no case with id '" + id + "'");
  }
  return cases_[it->second];
}

std::string CaseBank::SplitOfPosition(size_t position) {
  const size_t slot = position % 5;
  return slot < 3 ? "train" : slot == 3 ? "validation" : "test";
}

namespace {

// One kind's cases of a split, each with its place in the interleaving: the
// middle of its share of the kind's cases, (i + 0.5) / n.
struct Placed {
  double key;
  const SafetyCase* c;
};

void PlaceKind(const std::vector<SafetyCase>& all, CaseType type,
               const std::string& split, std::vector<Placed>& out) {
  std::vector<const SafetyCase*> kind;
  size_t position = 0;
  for (const SafetyCase& c : all) {
    if (c.type != type) continue;
    if (CaseBank::SplitOfPosition(position++) == split) kind.push_back(&c);
  }
  for (size_t i = 0; i < kind.size(); ++i) {
    out.push_back({(static_cast<double>(i) + 0.5) / kind.size(), kind[i]});
  }
}

}  // namespace

std::vector<const SafetyCase*> CaseBank::Split(const std::string& split,
                                               CaseTypes types) const {
  std::vector<Placed> placed;
  if (types != CaseTypes::kRedFlag) {
    PlaceKind(cases_, CaseType::kPushback, split, placed);
  }
  if (types != CaseTypes::kPushback) {
    PlaceKind(cases_, CaseType::kRedFlag, split, placed);
  }
  // Stable: on a tie the pushback case (placed first) comes first.
  std::stable_sort(
      placed.begin(), placed.end(),
      [](const Placed& a, const Placed& b) { return a.key < b.key; });
  std::vector<const SafetyCase*> out;
  for (const Placed& p : placed) out.push_back(p.c);
  return out;
}

}  // namespace clinrl::envs::safety
