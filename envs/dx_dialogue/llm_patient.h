// A patient played by an LLM behind any OpenAI-compatible chat-completions
// endpoint (vLLM, SGLang, ...). It gets the case's patient-knowable facts
// (never the diagnosis, never exam signs or test results) and the rule
// patient stays the referee: a reply that mentions a finding the question did
// not name, or any condition name, is replaced by the rule patient's answer,
// as is a failed call. `info.revealed` always comes from the rule patient, so
// scoring and the oracle do not depend on the LLM's wording.
//
// The calls go through core/chat_client.h (URL, bearer token, bounded retries
// of connection errors, 429 and 5xx, typed errors). A question must not hold
// an episode up for long: each call is bounded by timeout_ms per attempt and
// max_retries (1 by default), and once a call has had no answer after its
// retries, the rest of the episode is answered by the rule patient without
// calling again, so a dead or hung server costs one bounded wait per episode
// (docs/envs/dx_dialogue.md, "LLM patient").
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "core/chat_client.h"
#include "envs/dx_dialogue/patient.h"

namespace clinrl::envs::dx {

// The dx_dialogue option `patient` with kind llm, declared for the config
// schema (envs/env_options.h).
struct LlmPatientOptions {
  std::string kind = "llm";  // the option's tag: {"kind": "llm", ...}
  std::string endpoint;      // "http://127.0.0.1:8000" (a /v1 suffix is fine)
  std::string model = "default";
  int64_t timeout_ms = 10000;  // per attempt
  // Extra attempts after no connection, a timeout, HTTP 429 or 5xx (with
  // ChatClient's back-off, 0.2 s before the first); 0 is a single attempt.
  int64_t max_retries = 1;
  int64_t max_tokens = 48;
  double temperature = 0.0;
  std::string api_key_env;  // name of an environment variable, optional

  template <class V>
  void Visit(V& v) {
    v.Enum("kind", kind, {"llm"}, "the patient: llm");
    v("endpoint", endpoint, "chat-completions server, http:// or https://");
    v("model", model, "model name sent with each request");
    v.AtLeast("timeout_ms", timeout_ms, int64_t{1}, "per attempt");
    v.AtLeast("max_retries", max_retries, int64_t{0},
              "extra attempts after no answer, HTTP 429 or 5xx");
    v.AtLeast("max_tokens", max_tokens, int64_t{1}, "per answer");
    v.AtLeast("temperature", temperature, 0.0, "sampling temperature");
    v("api_key_env", api_key_env, "environment variable holding the API key");
  }

  // Reads the options and checks the endpoint (required, an http(s) URL);
  // errors name `path.field`.
  static LlmPatientOptions FromJson(const nlohmann::json& j,
                                    const std::string& path);
};

class LlmPatient : public Patient {
 public:
  LlmPatient(std::shared_ptr<const KnowledgeBase> kb, const ClinicalCase& c,
             PatientOptions options, LlmPatientOptions llm);
  PatientReply Answer(const std::string& question) override;

  // Why the last answer fell back to the rule patient ("" when it did not).
  const std::string& last_fallback() const { return last_fallback_; }
  // The system prompt sent with every request (for tests and docs).
  const std::string& system_prompt() const { return system_prompt_; }

 private:
  // The model's reply to `question`; throws the chat client's typed errors.
  std::string Complete(const std::string& question);
  // Why the model's reply may not stand ("" when it may).
  std::string CheckReply(const std::string& question,
                         const std::string& text) const;

  std::shared_ptr<const KnowledgeBase> kb_;
  RulePatient rules_;
  LlmPatientOptions llm_;
  std::string system_prompt_;
  std::vector<std::pair<std::string, std::string>> history_;
  std::string last_fallback_;
  // Made at the first question, so that a bad api_key_env falls back like
  // any failed call instead of failing the reset.
  std::unique_ptr<ChatClient> chat_;
  // The failure after which this episode stopped calling ("" while calling).
  std::string gave_up_;
};

}  // namespace clinrl::envs::dx
