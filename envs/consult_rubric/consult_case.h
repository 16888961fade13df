// The cases of consult_rubric: HealthBench-format JSONL rows, one open patient
// conversation each, read into splits. A row:
//   {"prompt_id": "...", "prompt": [{"role", "content"}...],
//    "rubrics": [{"criterion", "points", "tags": ["axis:..."], "match":
//    {...}}], "example_tags": ["theme:..."], "ideal_completions_data":
//    {"ideal_completion": "..."},   (HealthBench) "reference_reply": "...",
//    "split": "train"}               (clinrl)
// Other fields (HealthBench's "canary", ...) are ignored. `match` is the rule
// matcher's declaration (rewards/rule_matcher.h, checked by its ValidateMatch
// when the row is read); a criterion without one can only be graded by an
// LLM judge, which the env decides (consult_rubric_env.h).
//
// Splits: a row's "split" field when it has one, else a deterministic
// partition by a hash of prompt_id (70% train, 10% validation, 20% test), so
// HealthBench's own rows, which carry no split, partition the same way on
// every machine, and adding rows never moves the others. Within a split,
// tasks keep file order.
//
// Errors name the file, the line and the field:
//   "rows.jsonl:7: rubrics[2].points: expected a number, got string \"x\"".
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "envs/env.h"
#include "rewards/rubric.h"

namespace clinrl::envs::consult {

struct ConsultCase {
  std::string prompt_id;
  Observation prompt;  // the conversation so far, ending with the patient
  std::vector<rewards::RubricCriterion> rubrics;
  std::vector<std::string> example_tags;
  // The row's reference_reply, else ideal_completions_data.ideal_completion;
  // empty when it has neither.
  std::string reference_reply;
  std::string split;
  std::string where;  // "file:line", for later errors about the row
  // Criteria without a rule `match` (only a judge can grade them).
  size_t judged_criteria = 0;
};

struct ConsultCaseSet {
  std::map<std::string, std::vector<ConsultCase>> splits;  // every split named
};

// How rows without a usable "split" field are assigned.
enum class SplitBy { kFieldOrHash, kHash };

// The split prompt_id hashes to (70/10/20 train/validation/test).
std::string HashSplit(const std::string& prompt_id);

// Reads JSONL text; `source` names it in errors. Blank lines are skipped.
// Throws ConfigError naming source:line and the field.
ConsultCaseSet ParseConsultCases(const std::string& text,
                                 const std::string& source, SplitBy split_by);

// The set in `path` ("" = the shipped set, embedded in the library), read
// once per (path, split_by) and shared. Throws IoError for an unreadable
// file, ConfigError for a bad row.
std::shared_ptr<const ConsultCaseSet> SharedConsultCases(
    const std::string& path, SplitBy split_by);

}  // namespace clinrl::envs::consult
