// The offline `rule` matcher: each criterion declares how to recognise it in
// the response, and negated mentions do not count ("no need for aspirin"
// does not meet "recommends aspirin"). Declaration (criterion.match):
//   {"any":  ["call 911", "emergency department"],  // at least one
//    "all":  ["aspirin"],                           // every one
//    "none": ["wait and see"],                      // none, affirmed
//    "regex": ["\\b\\d+ ?mg\\b"],                   // every one matches
//    "synonyms": {"emergency department": ["er", "a&e"]},
//    "polarity": "affirmed" | "negated" | "either", // default affirmed
//    "window": 5}                                   // negation scope, words
// Terms match whole words, case-insensitively, after the same normalisation
// as the response. A mention is negated when a negation cue (no, not,
// without, denies, never, avoid, don't, ...) occurs within `window` words
// before it in the same sentence, with no "but"/"however" in between
// (NegEx-style). Regexes see the raw response and are not negation-aware.
//
// Part of clinrl_rubric_scoring (rewards/CMakeLists.txt), which the
// consult_rubric env links too: it may include only core/ and third-party
// headers (docs/design.md, "Exception: `envs/` uses the rubric scoring").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rewards/rubric.h"

namespace clinrl::rewards {

struct RuleMatcherOptions {
  // Shared by every criterion; merged with each criterion's own synonyms.
  nlohmann::json synonyms = nlohmann::json::object();
  // Replaces the built-in negation cues when non-empty.
  std::vector<std::string> negation_cues;
  int64_t window = 5;
};

// Checks every criterion's declaration; errors name `path`[i].match.
void ValidateRules(const std::vector<RubricCriterion>& criteria,
                   const RuleMatcherOptions& options, const std::string& path);

// Checks one declaration (a criterion's non-null `match`); errors name `path`
// and the field ("rubrics[2].match.window: expected an integer >= 1, got 0").
void ValidateMatch(const nlohmann::json& match,
                   const RuleMatcherOptions& options, const std::string& path);

std::vector<CriterionVerdict> MatchRules(
    const std::string& response, const std::vector<RubricCriterion>& criteria,
    const RuleMatcherOptions& options);

}  // namespace clinrl::rewards
