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
#include "envs/dx_dialogue/diagnostic_posterior.h"
#include "envs/dx_dialogue/llm_patient.h"
#include "envs/dx_dialogue/patient.h"
#include "envs/env.h"

namespace clinrl::envs::dx {

// The options of one episode: a reset's `options` may set them, and the env
// options give every episode's defaults. Declared for the config schema
// (envs/env_options.h); Check adds the bounds it cannot express.
struct DxEpisodeOptions {
  std::string persona = "plain";
  PatientNoise noise;
  int64_t max_turns = 10;

  template <class V>
  void Visit(V& v) {
    v.Enum("persona", persona, {"terse", "plain", "talkative", "anxious"},
           "how the patient talks");
    v("noise", noise, "how the patient blurs the facts");
    v("max_turns", max_turns, "actions before truncation, 2..64");
  }

  // Throws ConfigError naming `path.<key>` for a value out of range.
  void Check(const std::string& path) const;
  PatientOptions patient() const;  // persona and noise

  // Reset options on top of `base` (the env options). A `noise` object
  // replaces the whole noise rather than merging into it. Unknown keys,
  // wrong types and out-of-range values throw ConfigError naming
  // `path.<key>`.
  static DxEpisodeOptions FromJson(const json& j, const std::string& path,
                                   const DxEpisodeOptions& base);
};

// The env options (`envs[i].options`): every episode's defaults and what is
// fixed for the env's life.
struct DxDialogueOptions : DxEpisodeOptions {
  double cost_budget = 1000.0;  // the cost reward's budget, in dollars
  // Dense step rewards for per-turn credit (trainer.credit: turn): an ask,
  // exam or test that brings new evidence earns info_gain_reward per nat of
  // its expected information gain about the diagnosis (the entropy drop the
  // diagnostic posterior expects before seeing the answer); one that brings
  // nothing new (a repeat) or is invalid costs redundant_penalty. The
  // diagnosis itself is the reward service's to score.
  double info_gain_reward = 0.1;
  double redundant_penalty = 0.05;
  std::string knowledge_base;  // a JSON file; empty = the built-in one
  // The option `patient`: {"kind": "rules"} (the default) or an LLM patient
  // ({"kind": "llm", ...}: LlmPatientOptions), read into llm_patient.
  json patient_choice = json::object();
  std::optional<LlmPatientOptions> llm_patient;

  template <class V>
  void Visit(V& v) {
    DxEpisodeOptions::Visit(v);
    v("cost_budget", cost_budget, "the cost reward's budget, dollars, > 0");
    v("info_gain_reward", info_gain_reward,
      "step reward per nat of expected information gain, >= 0");
    v("redundant_penalty", redundant_penalty,
      "step reward -penalty for an action that reveals nothing new, >= 0");
    v("knowledge_base", knowledge_base, "JSON file; empty = built-in");
    v("patient", patient_choice, "{\"kind\": \"rules\"} or an LLM patient");
  }

  // Unknown keys, wrong types and out-of-range values throw ConfigError
  // naming `path.<key>`.
  static DxDialogueOptions FromJson(const json& j, const std::string& path);
};

// The text of EnvSpec::action_format and of the system prompt.
extern const char kDxActionFormat[];

class DxDialogueEnv : public Env {
 public:
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");
  explicit DxDialogueEnv(DxDialogueOptions options);

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  // Ends the episode as the turn limit would: no diagnosis, so `correct` 0;
  // the cost so far in the metrics and the final reward_spec.
  StepResult Truncate() override;

  // The reward spec of a case (total_cost filled in at the end).
  json RewardSpec(const ClinicalCase& c, double total_cost) const;
  const KnowledgeBase& kb() const { return *kb_; }

 private:
  std::string Examine(int system, json& revealed);
  // The step reward of an action that revealed `revealed` (entries as in
  // info.revealed): information gain of the new evidence, or the redundancy
  // penalty; the posterior then takes the evidence. Sets info fields.
  double EvidenceReward(const std::string& type, int exam_system,
                        const json& revealed, json& info);
  json BaseInfo() const;
  // The info only the last reply of an episode carries (metrics, answer,
  // the reward spec with the total cost), the same for every way it ends.
  void AddEpisodeEndInfo(bool correct, const std::string& given_code,
                         json& info) const;

  DxDialogueOptions options_;
  DxEpisodeOptions episode_options_;
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
  // What the agent has learned, for the information-gain reward: the
  // posterior over conditions and the evidence it already holds.
  std::unique_ptr<DiagnosticPosterior> posterior_;
  std::set<int> seen_findings_;
  std::set<int> seen_tests_;
  std::string split_;
  int64_t task_index_ = 0;
};

}  // namespace clinrl::envs::dx
