// The EHR env: MedAgentBench-style clinical tasks over real FHIR R4 REST.
// The agent's GETs and POSTs run against the embedded server (in-process,
// in this session's sandbox) or against `base_url`; FINISH ends the episode
// and the shared grader scores the answer and the writes that were executed.
// The turns and the end of an episode are EhrEnv's (ehr_env.h), as
// ehr_workflow's are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "envs/ehr_fhir/ehr_env.h"
#include "envs/ehr_fhir/ehr_record.h"
#include "envs/env.h"

namespace clinrl::envs::ehr {

// The env options, declared for the config schema (envs/env_options.h).
struct EhrFhirOptions {
  EhrRecordSource source;
  std::string grading = "strict_r4";  // strict_r4 | medagentbench
  int64_t max_turns = 8;
  std::string base_url;  // "" = the embedded server
  bool dry_run = false;  // with base_url: POSTs are graded but not sent
  // Which tasks the splits hold (ehr_tasks.h): families, and tasks per family.
  std::vector<std::string> families;  // empty = all ten
  int64_t train_tasks_per_family = kDefaultTrainTasksPerFamily;
  int64_t test_tasks_per_family = kDefaultTestTasksPerFamily;
  // full: MedAgentBench's prompt with the function catalogue (~3.5k chars);
  // brief: the action format, API base, clock and question only, for small
  // models with short contexts that learn the API from demonstrations.
  std::string prompt = "full";
  // text: MedAgentBench's grammar (GET / POST / FINISH lines); tools: the
  // tools fhir_get, fhir_post and finish (agent_tool_call.h).
  std::string action_mode = "text";

  template <class V>
  void Visit(V& v) {
    VisitRecordSource(v, source);
    v.Enum("grading", grading, {"strict_r4", "medagentbench"},
           "how answers and writes are graded");
    v.AtLeast("max_turns", max_turns, int64_t{1},
              "actions before the episode is truncated");
    v("base_url", base_url, "a FHIR server's base URL; empty = embedded");
    v("dry_run", dry_run, "with base_url: grade POSTs without sending them");
    v("families", families, "task families to include; empty = all ten");
    v.AtLeast("train_tasks_per_family", train_tasks_per_family, int64_t{1},
              "at most this many train tasks per family");
    v.AtLeast("test_tasks_per_family", test_tasks_per_family, int64_t{1},
              "at most this many test tasks per family");
    v.Enum("prompt", prompt, {"full", "brief"},
           "full: with the function catalogue; brief: without it");
    v.Enum("action_mode", action_mode, {"text", "tools"},
           "text: the GET/POST/FINISH grammar; tools: tool calls");
  }

  bool tools() const { return action_mode == "tools"; }

  TaskSelection Selection(const std::string& split) const {
    return {families,
            split == "test" ? test_tasks_per_family : train_tasks_per_family};
  }

  // Reads `options` (naming keys under `path`) and checks what the schema
  // cannot: base_url is an http(s) URL, dry_run needs base_url. Throws
  // ConfigError naming an unknown key, a wrong type or a bad value.
  static EhrFhirOptions FromJson(const json& options,
                                 const std::string& path = "options");
};

class EhrFhirEnv : public EhrEnv {
 public:
  explicit EhrFhirEnv(EhrFhirOptions options);

  // Options: EhrFhirOptions. Episodes take no reset options.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;

 private:
  // The shared grader (grading/task_grader.h): reward 1 when correct.
  EpisodeGrade Grade(const json& episode) const override;

  EhrFhirOptions options_;
  const EhrTask* task_ = nullptr;
};

// The prompt: the action grammar (or, with `tools`, kAgentToolInstruction),
// the functions (unless `brief`) and the question.
std::string TaskPrompt(const EhrTask& task, const std::string& api_base,
                       const std::string& mode, bool brief = false,
                       bool tools = false);

}  // namespace clinrl::envs::ehr
