// One simulated patient and the seeded generator that makes it. A case is a
// pure function of (knowledge base, seed): the condition, demographics, the
// chief complaint, the state of every finding (present, known absent, or
// unknown to the patient), every test's result and the vital signs. The
// case bank assigns cases to splits by a hash of their content, so identical
// cases can never land in two splits, and drops duplicates.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "envs/dx_dialogue/knowledge_base.h"

namespace clinrl::envs::dx {

enum class FindingState { kAbsent, kPresent, kUnknown };

struct VitalSigns {
  double temperature_c = 36.8;
  int heart_rate = 78;
  int systolic = 124, diastolic = 76;
  int respiratory_rate = 14;
  int spo2 = 98;
};

struct ClinicalCase {
  uint64_t seed = 0;
  int condition = -1;
  int age = 0;
  bool male = false;
  int chief_complaint = -1;
  std::vector<FindingState> findings;  // per knowledge-base finding
  std::vector<int> test_results;       // per test: index into its results
  VitalSigns vitals;
  std::vector<int> red_flags;        // rules that fire on the true facts
  std::string required_disposition;  // emergency when a red flag fires
  std::vector<int> must_ask;         // askable findings a good history needs

  bool Has(int finding) const {
    return findings[finding] == FindingState::kPresent;
  }
  // FNV-1a over the clinical content (not the seed): equal cases, equal hash.
  uint64_t Fingerprint() const;
};

ClinicalCase GenerateCase(const KnowledgeBase& kb, uint64_t seed);

// Red-flag rules that fire given which findings are present and which test
// results are known (-1 = not known).
std::vector<int> FiredRedFlags(const KnowledgeBase& kb,
                               const std::vector<bool>& present,
                               const std::vector<int>& test_results);

// The askable findings that best separate `condition` from the conditions
// sharing its chief complaint, plus askable red-flag findings of that group.
std::vector<int> MustAskFindings(const KnowledgeBase& kb, int condition,
                                 int chief_complaint);

// "54-year-old man"
std::string Demographics(const ClinicalCase& c);

struct SplitSizes {
  int64_t train = 2400;
  int64_t validation = 240;
  int64_t test = 240;
};

class CaseBank {
 public:
  CaseBank(std::shared_ptr<const KnowledgeBase> kb, SplitSizes sizes,
           uint64_t base_seed = 0x636c696e726c6478ULL);
  // Shared, built once per knowledge base (envs of one process share it).
  static std::shared_ptr<const CaseBank> For(
      std::shared_ptr<const KnowledgeBase> kb);

  // Throws BadRequest naming the split or index and the allowed values.
  const ClinicalCase& Get(const std::string& split, int64_t index) const;
  int64_t Size(const std::string& split) const;
  std::map<std::string, int64_t> Sizes() const;
  const KnowledgeBase& kb() const { return *kb_; }
  std::shared_ptr<const KnowledgeBase> kb_ptr() const { return kb_; }

 private:
  const std::vector<ClinicalCase>& Split(const std::string& split) const;
  std::shared_ptr<const KnowledgeBase> kb_;
  std::vector<ClinicalCase> train_, validation_, test_;
};

// splitmix64: the seed mixer used everywhere in this env.
uint64_t MixSeed(uint64_t x);
// Uniform double in [0, 1) from a 64-bit word; exact and portable.
double UnitInterval(uint64_t word);

}  // namespace clinrl::envs::dx
