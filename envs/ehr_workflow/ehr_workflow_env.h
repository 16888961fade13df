// ehr_workflow: the ehr_fhir environment (the same synthetic FHIR record,
// embedded server, sandboxes and GET/POST/FINISH grammar) with multi-step
// clinical workflows graded per checkpoint (workflow_tasks.h,
// workflow_grader.h): the reward is the fraction of checkpoints met and
// `correct` needs all of them. The turns and the end of an episode are
// EhrEnv's (envs/ehr_fhir/ehr_env.h), as ehr_fhir's are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "envs/ehr_fhir/ehr_env.h"
#include "envs/ehr_fhir/ehr_record.h"
#include "envs/ehr_workflow/workflow_tasks.h"
#include "envs/env.h"

namespace clinrl::envs::ehr {

struct EhrWorkflowOptions {
  EhrRecordSource source;
  std::string grading = "strict_r4";  // strict_r4 | medagentbench
  int64_t max_turns = 12;
  std::vector<std::string> families;   // empty = all three
  int64_t train_tasks_per_family = 0;  // 0 = every eligible train patient
  int64_t eval_tasks_per_family = 10;  // validation and test
  std::string prompt = "full";         // full | brief (as ehr_fhir's)
  std::string action_mode = "text";    // text | tools (as ehr_fhir's)

  template <class V>
  void Visit(V& v) {
    VisitRecordSource(v, source);
    v.Enum("grading", grading, {"strict_r4", "medagentbench"},
           "how the executed writes are checked");
    v.AtLeast("max_turns", max_turns, int64_t{1},
              "actions before the episode is truncated");
    v("families", families, "workflow families to include; empty = all three");
    v.AtLeast("train_tasks_per_family", train_tasks_per_family, int64_t{0},
              "at most this many train tasks per family; 0 = all");
    v.AtLeast("eval_tasks_per_family", eval_tasks_per_family, int64_t{1},
              "at most this many validation and test tasks per family");
    v.Enum("prompt", prompt, {"full", "brief"},
           "full: with the function catalogue; brief: without it");
    v.Enum("action_mode", action_mode, {"text", "tools"},
           "text: the GET/POST/FINISH grammar; tools: tool calls");
  }

  bool tools() const { return action_mode == "tools"; }

  WorkflowSelection Selection(const std::string& split) const {
    return {families,
            split == "train" ? train_tasks_per_family : eval_tasks_per_family};
  }

  // ReadOptions plus the family names; ConfigError names the key.
  static EhrWorkflowOptions FromJson(const json& options,
                                     const std::string& path = "options");
};

class EhrWorkflowEnv : public EhrEnv {
 public:
  explicit EhrWorkflowEnv(EhrWorkflowOptions options);

  // Options: EhrWorkflowOptions. Episodes take no reset options.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;

 private:
  const std::vector<WorkflowTask>& Tasks(const std::string& split) const;
  // Per checkpoint (workflow_grader.h): the reward is the fraction met, and
  // each checkpoint is a metric of its own. A truncated episode has its
  // writes graded, but its answer checkpoints fail (no FINISH), so it is
  // never correct.
  EpisodeGrade Grade(const json& episode) const override;

  EhrWorkflowOptions options_;
  const WorkflowTask* task_ = nullptr;
};

// The reward spec of a task: one exact_match component per checkpoint
// reading the env's final info.metrics.checkpoint_<name> (1 when met),
// weighted 1/k so the composite equals the env's reward, and a weight-0
// component on info.metrics.correct that is the spec's success.
json WorkflowRewardSpec(const json& key);

}  // namespace clinrl::envs::ehr
