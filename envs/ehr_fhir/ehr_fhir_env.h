// The EHR env: MedAgentBench-style clinical tasks over real FHIR R4 REST.
// The agent's GETs and POSTs run against the embedded server (in-process,
// in this session's sandbox) or against `base_url`; FINISH ends the episode
// and the shared grader scores the answer and the writes that were executed.
#pragma once

#include <memory>
#include <string>

#include "envs/ehr_fhir/ehr_record.h"
#include "envs/env.h"

namespace clinrl::envs::ehr {

struct EhrFhirOptions {
  EhrRecordSource source;
  std::string grading = "strict_r4";  // strict_r4 | medagentbench
  int64_t max_turns = 8;
  std::string base_url;  // "" = the embedded server
  bool dry_run = false;  // with base_url: POSTs are graded but not sent

  // Throws ConfigError naming an unknown key, a wrong type or a bad value.
  static EhrFhirOptions FromJson(const json& options);
};

class EhrFhirEnv : public Env {
 public:
  explicit EhrFhirEnv(EhrFhirOptions options);
  ~EhrFhirEnv() override;  // drops this session's sandbox

  static std::unique_ptr<Env> Create(const json& options);

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };
  Reply Send(const std::string& method, const std::string& path,
             const std::string& query, const std::string& body);
  StepResult Finish(StepResult out, const json& answer, bool truncated);
  void DropSandbox();
  std::string ApiBase() const;

  EhrFhirOptions options_;
  std::shared_ptr<EhrRecord> record_;
  std::string session_;
  const EhrTask* task_ = nullptr;
  int64_t turns_ = 0;
  int64_t invalid_actions_ = 0;
  int64_t dry_run_ids_ = 0;
  bool done_ = true;
  json writes_ = json::array();
};

// The prompt: the action grammar, the functions and the question.
std::string TaskPrompt(const EhrTask& task, const std::string& api_base,
                       const std::string& mode);

}  // namespace clinrl::envs::ehr
