// HealthBench-format rubrics and their scoring formula. A row is
//   {"prompt": [{"role", "content"}...], "rubrics": [{"criterion", "points",
//    "tags": ["axis:accuracy", ...], "match": {...}}], "example_tags": [...],
//    "prompt_id": "..."}
// ("match" is clinrl's addition: the rule matcher's declaration,
// rule_matcher.h). An example's score is the sum of the points of met criteria,
// negative ones included, over the sum of positive points; per-tag scores use
// only the criteria carrying the tag. A set's score is the mean over examples,
// clipped to [0, 1] AFTER averaging (so one very negative example is not
// hidden).
//
// Part of clinrl_rubric_scoring (rewards/CMakeLists.txt), which the
// consult_rubric env links too: it may include only core/ and third-party
// headers (docs/design.md, "Exception: `envs/` uses the rubric scoring").
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::rewards {

struct Message {
  std::string role;
  std::string content;
};

struct RubricCriterion {
  std::string criterion;
  double points = 0.0;  // HealthBench uses -10..+10; negative = undesirable
  std::vector<std::string> tags;
  nlohmann::json match;  // rule matcher declaration; null when absent
};

// A matcher's decision on one criterion, with its reason (the judge's
// explanation, or which terms the rule matcher found).
struct CriterionVerdict {
  bool met = false;
  std::string explanation;
};

struct RubricRow {
  std::string prompt_id;
  std::vector<Message> prompt;
  std::vector<RubricCriterion> rubrics;
  std::vector<std::string> example_tags;
};

// Errors name the path ("rubrics[3].points: expected a number ..."). A rubric
// needs at least one criterion with positive points (the denominator).
std::vector<RubricCriterion> ParseCriteria(const nlohmann::json& array,
                                           const std::string& path);
RubricRow ParseRubricRow(const nlohmann::json& row, const std::string& path);
std::vector<Message> ParseMessages(const nlohmann::json& array,
                                   const std::string& path);

struct ExampleScore {
  double score = 0.0;  // achieved / possible; may be negative, never > 1
  double achieved = 0.0;
  double possible = 0.0;
  // Per criterion tag, over the criteria carrying it (tags whose criteria
  // have no positive points are left out: their ratio is undefined).
  std::map<std::string, double> tag_scores;
};

ExampleScore ScoreExample(const std::vector<RubricCriterion>& criteria,
                          const std::vector<bool>& met);

struct SetScore {
  double overall = 0.0;  // clip(mean(example scores), 0, 1)
  int64_t examples = 0;
  // Criterion tags (axis:...) and example tags (theme:...), each the clipped
  // mean over the examples that have it, with how many those are.
  std::map<std::string, double> tags;
  std::map<std::string, int64_t> tag_counts;
};

// example_tags[i] are example i's own tags (may be empty vectors).
SetScore AggregateScores(
    const std::vector<ExampleScore>& examples,
    const std::vector<std::vector<std::string>>& example_tags);

nlohmann::json ToJson(const ExampleScore& s);
nlohmann::json ToJson(const SetScore& s);

}  // namespace clinrl::rewards
