// dx_dialogue: a doctor agent interviews a simulated patient, examines,
// orders tests (each with a price) and commits to a diagnosis. The env keeps
// the case, the patient and the running cost; scoring is the reward
// service's, from info.reward_spec (docs/envs/dx_dialogue.md).
#pragma once

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "envs/dx_dialogue/clinical_case.h"
#include "envs/dx_dialogue/diagnostic_posterior.h"
#include "envs/dx_dialogue/dx_action.h"
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
  // The final answer: one diagnosis ("single", the default) or a ranked
  // differential of at most max_differential conditions ("ranked"), scored
  // by the rank of the true condition (docs/envs/dx_dialogue.md).
  std::string diagnosis_format = "single";
  int64_t max_differential = 5;
  // How the agent acts: the text grammar (dx_action.h, "text", the default)
  // or tool calls ("tools", dx_tools.h; the spec then declares the tools).
  std::string action_mode = "text";

  template <class V>
  void Visit(V& v) {
    v.Enum("persona", persona, {"terse", "plain", "talkative", "anxious"},
           "how the patient talks");
    v("noise", noise, "how the patient blurs the facts");
    v("max_turns", max_turns, "actions before truncation, 2..64");
    v.Enum("diagnosis_format", diagnosis_format, {"single", "ranked"},
           "one diagnosis, or a ranked differential");
    v("max_differential", max_differential,
      "most conditions in a ranked differential, 1..10");
    v.Enum("action_mode", action_mode, {"text", "tools"},
           "act by the text grammar or by tool calls");
  }
  bool ranked() const { return diagnosis_format == "ranked"; }
  bool tools() const { return action_mode == "tools"; }

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
// The same with a ranked differential as the answer, for at most
// `max_differential` conditions.
std::string RankedActionFormat(int64_t max_differential);

// The reward of a ranked differential whose true condition is at `rank`
// (1-based; 0 = absent): 1 / rank, 0 when absent. The reward spec reaches it
// as a sum of top-k components (DxDialogueEnv::RewardSpec).
double ReciprocalRank(int64_t rank);

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
  // EXAM and TEST by name: the observation text; target and revealed
  // filled in, or *invalid set with the text saying what was wrong.
  std::string ExamAction(const std::string& argument, json& action_info,
                         json& revealed, bool* invalid);
  std::string TestAction(const std::string& argument, json& action_info,
                         json& revealed, bool* invalid);
  // The step reward of an action that revealed `revealed` (entries as in
  // info.revealed): information gain of the new evidence, or the redundancy
  // penalty; the posterior then takes the evidence. Sets info fields.
  double EvidenceReward(const std::string& type, int exam_system,
                        const json& revealed, json& info);
  // The condition a DIAGNOSIS argument (or one item of a differential)
  // names: sets *code (canonical ICD-10, a code outside the knowledge base
  // included) and *name (empty for such a code), or returns what was wrong.
  std::string ResolveDiagnosis(const std::string& text, std::string* code,
                               std::string* name) const;
  // The DIAGNOSIS action in ranked mode: fills differential_ and rank_, or
  // returns what was wrong with the list.
  std::string ReadDifferential(const std::string& argument);
  // The step's target and text for the recorded differential; the first
  // item is the diagnosis proper (info.diagnosis_icd10).
  std::string RecordDifferential(std::string* given_code,
                                 std::string* given_name,
                                 json& action_info) const;
  // Ranked episodes: metrics rank, reciprocal_rank, top1/top3/top5 and
  // info.differential.
  void AddRankInfo(json& info) const;
  // The action a step's text asks for: the text grammar's reading, or in
  // tools mode the one tool call's (*tool_error says what was wrong).
  DxAction ReadAction(const std::string& text, std::string* tool_error) const;
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
  // The ranked differential given (canonical codes, in order) and the rank
  // of the true condition in it (1-based; 0 = absent or none given).
  std::vector<std::string> differential_;
  int64_t rank_ = 0;
};

}  // namespace clinrl::envs::dx
