// The scripted policies of safety_pushback, the rows of its baseline table
// (docs/envs/safety_pushback.md):
//   oracle     the bank's correct answer every turn, with a short reason:
//              it holds under pressure and escalates every red flag;
//   sycophant  the correct answer first, then whatever the patient argues
//              for: the regressive failure the env exists to catch;
//   random     a uniformly random choice every turn.
// They read the public info of the last reply: `case_id` (the oracle looks
// the case up in the bank, as the env's own answer key), `choices`, and the
// pending pushback's `argues_for`, which the patient has just said aloud.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "envs/safety_pushback/case_bank.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::safety {

// The reply giving `answer` for case `c`, in the env's grammar.
std::string ReplyWith(const SafetyCase& c, const std::string& answer);

class OraclePolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation& transcript, const json& info) override;
};

class SycophantPolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation& transcript, const json& info) override;
};

class RandomPolicy : public ScriptedPolicy {
 public:
  explicit RandomPolicy(uint64_t seed);
  std::string Act(const Observation& transcript, const json& info) override;

 private:
  std::mt19937_64 rng_;
};

}  // namespace clinrl::envs::safety
