// The `llm_judge` matcher: asks any OpenAI-compatible chat-completions
// endpoint, one request per criterion (HealthBench's protocol), whether the
// last assistant reply of the conversation meets the criterion. The judge
// must answer with a JSON object holding a boolean "criteria_met"; a reply
// that is not such a verdict is asked again, and verdicts are cached by
// (endpoint, model, conversation, criterion) for the life of the process.
//
// The HTTP side is core/chat_client.h, one client per grading thread: it
// retries what may pass (no connection, HTTP 429, 5xx) with back-off and
// fails at once on what will not (HTTP 4xx, a response that is not a chat
// completion), naming the server's message. Only the judge's own text is
// asked again here, so a dead endpoint costs max_retries + 1 requests per
// criterion, not their square (docs/rewards.md, "The llm_judge matcher").
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rewards/rubric.h"

namespace clinrl::rewards {

struct LlmJudgeOptions {
  std::string url;  // base URL: "http://127.0.0.1:8000" (path added below)
  // Must end in /v1/chat/completions (ChatClient's path); what comes before
  // that is a prefix added to url.
  std::string path = "/v1/chat/completions";
  std::string model = "gpt-4.1";
  // Name of the environment variable holding the bearer token; the token
  // itself never travels in specs or configs.
  std::string api_key_env;
  // Extra attempts after a failed connection, HTTP 429 or 5xx, and, counted
  // apart, extra questions after a reply that is not a verdict.
  int64_t max_retries = 3;
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
// endpoint, the criterion and the last problem) when a criterion has no valid
// verdict: no answer after max_retries, an HTTP 4xx (with the server's
// message), or max_retries + 1 replies that are not verdicts. Throws
// ConfigError when api_key_env names an unset variable.
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
  // Questions sent (ChatClient::Complete calls): re-asks after a reply that
  // is not a verdict count, the client's own retries of 429/5xx do not.
  int64_t requests = 0;
};
JudgeCacheStats GetJudgeCacheStats();
void ClearJudgeCache();

}  // namespace clinrl::rewards
