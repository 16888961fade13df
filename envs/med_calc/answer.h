// Reading and grading a med_calc answer. The agent may reason first and
// ends with `ANSWER: <number>` (a unit after the number is ignored); the
// last `ANSWER:` in the action counts, so an agent may revise itself.
// Grading follows MedCalc-Bench: scores must match exactly, formula values
// must lie within 5% of the ground truth (its lower/upper limits), with the
// same inequality as the `numeric` reward plug-in (rewards/
// numeric_reward.cc), |x - e| <= rel_tol * |e|, so that the env's reward and
// the reward spec's score agree.
#pragma once

#include <optional>
#include <string>

namespace clinrl::envs::med_calc {

// Relative tolerance of formula calculators.
inline constexpr double kFormulaTolerance = 0.05;

struct ParsedAnswer {
  std::optional<double> value;  // set when the action holds a usable answer
  std::string error;            // else what was wrong, for the observation
};

// The number after the last "ANSWER:" (any case; '*' around the tag and
// thousands commas allowed).
ParsedAnswer ParseAnswer(const std::string& action);

// Exact for scores (`score`), within kFormulaTolerance of |expected| else.
bool IsCorrect(double answer, double expected, bool score);

}  // namespace clinrl::envs::med_calc
