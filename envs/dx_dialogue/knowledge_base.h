// The clinical knowledge base of the diagnostic dialogue env: conditions with
// their ICD-10-CM codes, age/sex priors, finding likelihoods and test result
// distributions; the finding vocabulary with lay synonyms; exam systems and
// tests with prices; red-flag rules. It ships as JSON
// (data/knowledge_base.json, compiled into the library) and is validated on
// load: every name a condition uses must exist, every distribution must sum
// to one, and no phrase may name two concepts.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "envs/dx_dialogue/phrase_matcher.h"

namespace clinrl::envs::dx {

enum class FindingKind { kSymptom, kHistory, kSign };
const char* FindingKindName(FindingKind kind);

struct Finding {
  std::string name;
  FindingKind kind = FindingKind::kSymptom;
  int system = -1;  // signs: the exam system that reveals them
  std::string lay;  // the patient's own words (lay_terms noise)
  std::vector<std::string> synonyms;
  bool female_only = false;  // e.g. heavy periods
  bool askable() const { return kind != FindingKind::kSign; }
};

struct ExamSystem {
  std::string name;
  std::vector<std::string> synonyms;
  double cost = 0.0;
  std::vector<int> signs;  // findings this exam reveals
};

struct MedicalTest {
  std::string name;
  std::vector<std::string> synonyms;
  double cost = 0.0;
  std::vector<std::string> results;  // results[0]: the unremarkable result
};

// Fires on a case's true facts: all of all_findings present, at least one of
// any_findings present (when listed), and the test result (when given).
struct RedFlagRule {
  std::string name;
  std::vector<int> all_findings;
  std::vector<int> any_findings;
  int test = -1;
  int result = -1;
};

struct Condition {
  std::string name;
  std::string icd10;
  std::string specialty;
  std::vector<std::string> aliases;
  int age_min = 0, age_max = 0;
  double p_male = 0.5;
  std::string disposition;  // home | clinic | emergency
  std::string source;       // keys of KnowledgeBase::sources
  std::vector<int> chief_complaints;
  std::vector<double> finding_p;            // per finding; unlisted = leak rate
  std::vector<bool> finding_listed;         // per finding
  std::vector<std::vector<double>> test_p;  // per test, per result
};

class KnowledgeBase {
 public:
  // Throws ConfigError naming the offending path ("conditions[3].findings.
  // chest pian: unknown finding; ...").
  static std::shared_ptr<const KnowledgeBase> FromJson(const nlohmann::json& j);
  static std::shared_ptr<const KnowledgeBase> FromFile(const std::string& path);
  // The knowledge base compiled into the library, parsed once.
  static std::shared_ptr<const KnowledgeBase> Default();
  // Default() for an empty path, else FromFile(path) parsed once per path
  // and process: every session of an env shares one knowledge base and so
  // one case bank.
  static std::shared_ptr<const KnowledgeBase> Shared(const std::string& path);

  std::vector<Finding> findings;
  std::vector<ExamSystem> systems;
  std::vector<MedicalTest> tests;
  std::vector<RedFlagRule> red_flags;
  std::vector<Condition> conditions;
  std::map<std::string, std::string> sources;
  std::string version;
  double unknown_rate[3] = {0, 0, 0};  // by FindingKind

  PhraseMatcher finding_matcher;
  PhraseMatcher system_matcher;
  PhraseMatcher test_matcher;
  PhraseMatcher condition_matcher;  // names and aliases, not codes

  int FindingIndex(const std::string& name) const;  // -1 when unknown
  int TestIndex(const std::string& name) const;
  int SystemIndex(const std::string& name) const;
  int ConditionByCode(const std::string& code) const;  // "i21.9", "I219"
  // P(finding present | condition, sex): a female-only finding is never
  // present in a man.
  double FindingProbability(int condition, int finding, bool male) const;
  double UnknownRate(int finding, bool male) const;
  std::vector<int> AskableFindings() const;
};

// "I21.9", "i21.9" and "I219" all give "I219"; empty when not code-shaped.
std::string CanonicalIcd10(const std::string& text);

}  // namespace clinrl::envs::dx
