// The oracle baseline of dx_dialogue: a Bayesian history taker. It reads
// only what an agent sees: info.case (age, sex, chief complaint: the opening
// line), info.turn, info.max_turns, info.action and info.revealed (the
// structured form of the last observation); never info.reward_spec or
// info.answer. Each turn it takes the ASK / EXAM / TEST with the largest
// expected entropy drop minus cost_weight * price; when the mode's
// probability reaches `confidence` or two turns are left, it checks vital
// signs and likely red flags (unless already urgent), gives a DISPOSITION
// (emergency on an observed red flag or when urgent conditions hold 30% of
// the belief) and then the DIAGNOSIS (the mode; in a ranked episode,
// info.diagnosis_format "ranked", the conditions by posterior probability,
// the mode first, up to info.max_differential).
// Options: epsilon (per turn, the probability of a random ASK/EXAM/TEST
// instead or, one time in four, of wrapping up at once: imperfect
// demonstrations), anchor (per episode, the probability of anchoring: the
// history is taken as usual but the diagnosis is the first impression, the
// likeliest condition given the opening line alone), confidence,
// cost_weight, diagnose_with (name | code), knowledge_base.
// In a tools-mode episode (info.action_mode "tools") each action is sent as
// the tool call standing for it (dx_tools.h): the same choices either way.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>

#include "envs/dx_dialogue/diagnostic_posterior.h"
#include "envs/dx_dialogue/knowledge_base.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::dx {

// The policy options, declared for the config schema (envs/env_options.h).
struct OraclePolicyOptions {
  double epsilon = 0.0;
  double anchor = 0.0;
  double confidence = 0.9;
  double cost_weight = 0.001;  // nats of expected entropy drop per dollar
  std::string diagnose_with = "name";
  std::string knowledge_base;

  template <class V>
  void Visit(V& v) {
    v("epsilon", epsilon, "P(a random information action), per turn, 0..1");
    v("anchor", anchor, "P(diagnosing the first impression), 0..1");
    v("confidence", confidence, "mode probability that ends the history");
    v.AtLeast("cost_weight", cost_weight, 0.0, "nats per dollar");
    v.Enum("diagnose_with", diagnose_with, {"name", "code"},
           "what the DIAGNOSIS line gives");
    v("knowledge_base", knowledge_base, "JSON file; empty = built-in");
  }

  // Reads the options on top of `base` and checks the ranges the schema
  // cannot express; errors name `path.<key>`.
  static OraclePolicyOptions FromJson(const json& j, const std::string& path,
                                      const OraclePolicyOptions& base);
};

class OraclePolicy : public ScriptedPolicy {
 public:
  OraclePolicy(uint64_t seed, OraclePolicyOptions options);
  std::string Act(const Observation& transcript, const json& info) override;

 private:
  // The action in the text grammar; Act converts it in tools mode.
  std::string TextAction(const json& info);
  void Observe(const json& info);
  std::string InformationAction();
  std::string RandomInformationAction();
  std::string ChooseDisposition() const;
  std::string SafetyCheck();
  // The DIAGNOSIS line: the mode (or the first impression when anchored),
  // followed in a ranked episode by the next likeliest conditions.
  std::string DiagnosisAction() const;

  OraclePolicyOptions options_;
  std::shared_ptr<const KnowledgeBase> kb_;
  DiagnosticPosterior posterior_;
  std::mt19937_64 rng_;
  bool started_ = false;
  bool disposition_given_ = false;
  bool stopping_ = false;         // an epsilon step chose to diagnose early
  bool anchored_ = false;         // this episode diagnoses its first impression
  int first_impression_ = 0;      // the mode given the opening line alone
  bool posterior_male_ = false;   // the patient's sex, as the belief uses it
  int64_t max_differential_ = 0;  // > 0: answer with a ranked differential
  bool tools_ = false;            // answer with tool calls
  std::set<std::string> done_;    // actions already taken
  std::vector<bool> seen_present_;
  std::vector<int> seen_results_;
};

}  // namespace clinrl::envs::dx
