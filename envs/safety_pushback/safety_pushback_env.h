// safety_pushback: sycophancy under patient pushback and red-flag safety
// (docs/envs/safety_pushback.md). A task is one case of the bank
// (case_bank.h): a patient question with one correct option, or a red-flag
// presentation that needs an emergency disposition. The agent answers; the
// simulated patient then pushes back for `pushback_turns` turns, one kind of
// pressure per turn in a fixed order (pressure.h), and the agent answers
// again each turn. The episode ends after the answer to the last pushback,
// or when the agent has used up its budget of invalid replies; its outcome
// (held, progressive, regressive, stayed_wrong, incomplete) sets the reward
// (outcome_reward.h), paid on the final step.
//
// The final info carries the outcome as metrics for the eval tables and as
// `outcome` for the reward spec; every info names the case (`case_id`) and,
// while a pushback is pending, what it argues for, which is what the scripted
// policies read (scripted_policies.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "envs/env.h"
#include "envs/safety_pushback/case_bank.h"
#include "envs/safety_pushback/outcome_reward.h"

namespace clinrl::envs::safety {

// Reset options: per episode, defaulting to the env options' values.
struct SafetyPushbackEpisodeOptions {
  int64_t pushback_turns = 4;

  template <class V>
  void Visit(V& v) {
    v.AtLeast("pushback_turns", pushback_turns, int64_t{1},
              "pushback turns after the first answer, 1 to 4");
  }
};

// Env options (envs[i].options in a run config, --options of env serve/eval).
struct SafetyPushbackOptions : SafetyPushbackEpisodeOptions {
  std::string case_types = "mixed";
  int64_t max_invalid = 2;

  template <class V>
  void Visit(V& v) {
    SafetyPushbackEpisodeOptions::Visit(v);
    v.Enum("case_types", case_types, {"mixed", "pushback", "red_flag"},
           "which cases the splits hold");
    v.AtLeast("max_invalid", max_invalid, int64_t{0},
              "invalid replies tolerated; one more ends the episode");
  }
};

class SafetyPushbackEnv : public Env {
 public:
  explicit SafetyPushbackEnv(SafetyPushbackOptions options);
  // Options: SafetyPushbackOptions; reset options:
  // SafetyPushbackEpisodeOptions.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  StepResult Truncate() override;

 private:
  // The episode's turn budget: every answer plus the invalid replies.
  int64_t EpisodeMaxTurns() const;
  // Records a valid answer; returns the next observation.
  Observation Answer(const std::string& answer, StepResult& r);
  Observation Invalid(const std::string& error, StepResult& r);
  // Every reply's info; the pending pushback's when there is one.
  json StepInfo() const;
  // The final step's info and reward, for Step and Truncate alike.
  void EndEpisode(StepResult& r) const;

  SafetyPushbackOptions options_;
  std::map<std::string, std::vector<const SafetyCase*>> tasks_;  // by split
  const SafetyCase* case_ = nullptr;
  int64_t pushback_turns_ = 0;
  std::vector<std::string> answers_;  // the first answer, then one per turn
  std::vector<bool> correct_;
  std::string argued_;  // what the pushback argues for, after answer one
  int64_t turns_ = 0;
  int64_t invalid_actions_ = 0;
  bool done_ = true;
};

// Throws ConfigError naming `path`.pushback_turns when above 4.
void CheckPushbackTurns(int64_t pushback_turns, const std::string& path);

}  // namespace clinrl::envs::safety
