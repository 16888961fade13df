// dx_dialogue: a doctor agent interviews a simulated patient, examines,
// orders tests (each with a price) and commits to a diagnosis. The env keeps
// the case, the patient and the running cost; scoring is the reward
// service's, from info.reward_spec (docs/envs/dx_dialogue.md).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>

#include "envs/dx_dialogue/clinical_case.h"
#include "envs/dx_dialogue/llm_patient.h"
#include "envs/dx_dialogue/patient.h"
#include "envs/env.h"

namespace clinrl::envs::dx {

struct DxDialogueOptions {
  PatientOptions patient;
  int64_t max_turns = 10;
  double cost_budget = 1000.0;  // the cost reward's budget, in dollars
  std::string knowledge_base;   // a JSON file; empty = the built-in one
  std::optional<LlmPatientOptions> llm_patient;

  // Env options (all keys) or, with `per_episode`, reset options (persona,
  // noise, max_turns only), applied on top of `base`. Unknown keys, wrong
  // types and out-of-range values throw ConfigError naming `path.key`.
  static DxDialogueOptions FromJson(const json& j, const std::string& path,
                                    const DxDialogueOptions& base,
                                    bool per_episode);
};

// The text of EnvSpec::action_format and of the system prompt.
extern const char kDxActionFormat[];

class DxDialogueEnv : public Env {
 public:
  static std::unique_ptr<Env> Create(const json& options);
  explicit DxDialogueEnv(DxDialogueOptions options);

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;

  // The reward spec of a case (total_cost filled in at the end).
  json RewardSpec(const ClinicalCase& c, double total_cost) const;
  const KnowledgeBase& kb() const { return *kb_; }

 private:
  std::string Examine(int system, json& revealed);
  json BaseInfo() const;

  DxDialogueOptions options_;
  DxDialogueOptions episode_options_;
  std::shared_ptr<const KnowledgeBase> kb_;
  std::shared_ptr<const CaseBank> bank_;
  const ClinicalCase* case_ = nullptr;
  std::unique_ptr<Patient> patient_;
  bool active_ = false;
  int64_t turn_ = 0;
  int64_t invalid_actions_ = 0;
  double cost_ = 0.0;
  std::string disposition_;
  std::set<std::string> asked_;  // findings the agent asked about
  std::string split_;
  int64_t task_index_ = 0;
};

}  // namespace clinrl::envs::dx
