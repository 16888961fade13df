// The scripted baselines of med_calc (`clinrl env eval`, `env demos`):
//  - oracle: rebuilds the task's patient from the reset info's `task`
//    (split, task_index, calculator; the env exposes it for this purpose,
//    docs/envs/med_calc.md), computes the calculator and answers with a
//    one-line worked statement, so its demonstrations show the format.
//  - random: a uniformly random value in the calculator's plausible range
//    (whole points for scores, half points for Wells, one decimal for
//    formulas): the chance floor.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "envs/med_calc/calculators.h"
#include "envs/scripted_policy.h"

namespace clinrl::envs::med_calc {

class OraclePolicy : public ScriptedPolicy {
 public:
  std::string Act(const Observation& transcript, const json& info) override;

 private:
  json task_;  // the reset info's `task`, kept for a later turn
};

class RandomPolicy : public ScriptedPolicy {
 public:
  explicit RandomPolicy(uint64_t seed);
  std::string Act(const Observation& transcript, const json& info) override;

 private:
  std::mt19937_64 rng_;
  std::string calculator_;  // from the reset info
};

// The random policy's value for `c` from one draw `u` in [0, 1).
double RandomValue(Calculator c, double u);

}  // namespace clinrl::envs::med_calc
