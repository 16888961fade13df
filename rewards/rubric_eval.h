// Offline rubric evaluation (`clinrl rubric eval`): a JSONL file of
// HealthBench-format rows and a JSONL file of responses, scored with the rule
// matcher or an LLM judge, aggregated with HealthBench's clip-after-mean rule.
// Response rows: {"prompt_id": "...", "response": "text"}, or "completion"
// as text or as a list of messages whose last assistant message is graded.
// Rows pair by prompt_id when every response row has one, else by line.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rewards/llm_judge.h"
#include "rewards/rubric.h"
#include "rewards/rule_matcher.h"

namespace clinrl::rewards {

struct RubricEvalOptions {
  std::string matcher = "rule";  // rule | llm_judge
  RuleMatcherOptions rules;
  LlmJudgeOptions judge;
};

struct RubricEvalResult {
  SetScore set;
  std::vector<nlohmann::json> examples;  // one per response, in file order
};

// The graded text of one response row; errors name `path`.
std::string ResponseText(const nlohmann::json& row, const std::string& path);

RubricEvalResult EvaluateRubrics(const std::vector<RubricRow>& rows,
                                 const std::vector<nlohmann::json>& responses,
                                 const RubricEvalOptions& options);
RubricEvalResult EvaluateRubricFiles(const std::string& rubrics_path,
                                     const std::string& responses_path,
                                     const RubricEvalOptions& options);

}  // namespace clinrl::rewards
