// A patient played by an LLM behind any OpenAI-compatible chat-completions
// endpoint (vLLM, SGLang, ...). It gets the case's patient-knowable facts
// (never the diagnosis, never exam signs or test results) and the rule
// patient stays the referee: a reply that mentions a finding the question did
// not name, or any condition name, is replaced by the rule patient's answer,
// as is a failed call. `info.revealed` always comes from the rule patient, so
// scoring and the oracle do not depend on the LLM's wording.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "envs/dx_dialogue/patient.h"

namespace clinrl::envs::dx {

struct LlmPatientOptions {
  std::string endpoint;  // "http://127.0.0.1:8000" (a /v1 suffix is fine)
  std::string model = "default";
  int64_t timeout_ms = 10000;
  int64_t max_tokens = 48;
  double temperature = 0.0;
  std::string api_key_env;  // name of an environment variable, optional

  // Validates {"endpoint", "model", "timeout_ms", "max_tokens",
  // "temperature", "api_key_env"}; errors name `path.field`.
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
  std::string Complete(const std::string& question);
  std::shared_ptr<const KnowledgeBase> kb_;
  RulePatient rules_;
  LlmPatientOptions llm_;
  std::string system_prompt_;
  std::vector<std::pair<std::string, std::string>> history_;
  std::string last_fallback_;
};

}  // namespace clinrl::envs::dx
