// The env's own grading of a reply against a HealthBench-format rubric: the
// rule matcher's decisions and HealthBench's example score. The `rubric`
// reward plug-in (rewards/rubric.h, rewards/rule_matcher.h) grades the same
// reward spec; this copy exists because envs/ may not include rewards/ (the
// layering rule of docs/design.md), and the env needs the score for its step
// reward and `metrics.correct`. It follows docs/rewards.md ("The rule
// matcher") term for term, and tests/envs/consult_rubric/ checks that the two
// agree on every shipped case and on each matching rule (negation scope,
// polarity, synonyms, regex), so a change to one that the other lacks fails
// there.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace clinrl::envs::consult {

struct RubricCriterion {
  std::string criterion;
  double points = 0.0;  // HealthBench: -10..+10; negative = undesirable
  std::vector<std::string> tags;
  nlohmann::json match;  // the rule declaration; null when the judge grades it
};

// HealthBench's example score: (points of met criteria, negative included) /
// (sum of positive points). `raw` is at most 1 and may be negative; `clipped`
// is raw clipped to [0, 1]. Per criterion tag, the same ratio over the
// criteria carrying the tag; tags without positive points are left out.
struct RubricScore {
  double raw = 0.0;
  double clipped = 0.0;
  double achieved = 0.0;
  double possible = 0.0;
  std::map<std::string, double> tags;
};

// Throws BadRequest naming `path` (the criterion's "...match") when the
// declaration is not one the rule matcher accepts.
void ValidateMatch(const nlohmann::json& match, const std::string& path);

// Whether the response meets each criterion; every criterion must have a
// valid `match`.
std::vector<bool> MatchCriteria(const std::string& response,
                                const std::vector<RubricCriterion>& criteria);

// `met[i]` for criteria[i]; the criteria must hold positive points.
RubricScore ScoreRubric(const std::vector<RubricCriterion>& criteria,
                        const std::vector<bool>& met);

}  // namespace clinrl::envs::consult
