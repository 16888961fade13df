// The `llm_judge` matcher: asks any OpenAI-compatible chat-completions
// endpoint, one request per criterion (HealthBench's protocol), whether the
// last assistant reply of the conversation meets the criterion. The judge
// must answer with a JSON object holding a boolean "criteria_met"; a
// malformed reply or a failed request is retried, and verdicts are cached by
// (model, conversation, criterion) for the life of the process.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rewards/rubric.h"

namespace clinrl::rewards {

struct LlmJudgeOptions {
  std::string url;  // base URL: "http://127.0.0.1:8000" (path added below)
  std::string path = "/v1/chat/completions";
  std::string model = "gpt-4.1";
  // Name of the environment variable holding the bearer token; the token
  // itself never travels in specs or configs.
  std::string api_key_env;
  int64_t max_retries = 3;     // extra attempts after the first
  int64_t concurrency = 8;     // criteria graded in parallel
  int64_t timeout_ms = 60000;  // per HTTP request
  double temperature = 0.0;
  int64_t max_tokens = 512;
};

// From a spec's params.judge (errors name "params.judge.<field>").
LlmJudgeOptions ParseLlmJudgeOptions(const nlohmann::json& judge,
                                     const std::string& path);

// The grading prompt for one criterion. `conversation` ends with the reply
// being graded.
std::string JudgePrompt(const std::vector<Message>& conversation,
                        const RubricCriterion& criterion);

// One verdict per criterion, in order. Throws InternalError (naming the
// endpoint, the criterion and the last problem) when a criterion still has no
// valid verdict after max_retries.
std::vector<CriterionVerdict> JudgeCriteria(
    const std::vector<Message>& conversation,
    const std::vector<RubricCriterion>& criteria,
    const LlmJudgeOptions& options);

// Parses a judge's message content: a JSON object, possibly inside a ```json
// fence or surrounded by prose. Throws BadRequest saying what is wrong.
CriterionVerdict ParseJudgeReply(const std::string& content);

// Cache statistics, for tests and the bench.
struct JudgeCacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  int64_t requests = 0;  // HTTP requests sent, retries included
};
JudgeCacheStats GetJudgeCacheStats();
void ClearJudgeCache();

}  // namespace clinrl::rewards
