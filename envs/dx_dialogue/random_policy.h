// The random baseline of dx_dialogue: uniformly random actions over the
// grammar's vocabulary (questions, exams, tests, dispositions), and a random
// diagnosis at the latest on the last turn (in a ranked episode a random
// list of 1 to info.max_differential distinct conditions). The lower bound
// of `clinrl env eval`. In a tools-mode episode each action is sent as the
// tool call standing for it (dx_tools.h).
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "envs/dx_dialogue/knowledge_base.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::dx {

// The policy options, declared for the config schema (envs/env_options.h).
struct RandomPolicyOptions {
  std::string knowledge_base;  // whose vocabulary to draw from; "" = built-in

  template <class V>
  void Visit(V& v) {
    v("knowledge_base", knowledge_base, "JSON file; empty = built-in");
  }
};

class RandomPolicy : public ScriptedPolicy {
 public:
  RandomPolicy(uint64_t seed, std::shared_ptr<const KnowledgeBase> kb);
  std::string Act(const Observation& transcript, const json& info) override;

 private:
  std::string RandomDiagnosis();
  std::string TextAction(const json& info);

  std::shared_ptr<const KnowledgeBase> kb_;
  std::mt19937_64 rng_;
  int64_t max_differential_ = 0;  // > 0: the episode takes a ranked list
  bool tools_ = false;            // the episode takes tool calls
};

}  // namespace clinrl::envs::dx
