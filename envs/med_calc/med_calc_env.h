// med_calc: clinical calculators from patient notes, in the manner of
// MedCalc-Bench. Each task is one synthetic patient's note and one question
// that needs a calculator (CHA2DS2-VASc, CKD-EPI 2021, MELD-Na, ...; see
// calculators.h); the agent may reason and answers `ANSWER: <number>`.
// Scores are graded exactly, formula values within 5%; reward 1 or 0.
//
// Tasks are a pure function of (split, index): task i of a split asks the
// (i mod n)-th of the n calculators enabled, about a patient drawn from the
// split's own stream, so every split holds every calculator and no patient
// is shared between splits. No data file ships with the env.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envs/env.h"
#include "envs/med_calc/calculators.h"
#include "envs/med_calc/patient.h"

namespace clinrl::envs::med_calc {

// Env options (envs[i].options in a run config, --options of env serve/eval).
struct MedCalcOptions {
  int64_t max_turns = 2;
  std::vector<std::string> calculators;  // empty: every calculator

  template <class V>
  void Visit(V& v) {
    v.AtLeast("max_turns", max_turns, int64_t{1},
              "replies before the episode is truncated (at most 4)");
    v("calculators", calculators, "calculator names to ask about; empty = all");
  }
};

// The task of one (split, index): what the note and question are built from.
struct MedCalcTask {
  Calculator calculator = Calculator::kCha2ds2Vasc;
  Patient patient;
  double expected = 0.0;  // GroundTruth(calculator, patient)
};

class MedCalcEnv : public Env {
 public:
  static constexpr int64_t kMaxTurnsLimit = 4;

  explicit MedCalcEnv(MedCalcOptions options);
  // Options: MedCalcOptions; an unknown calculator name or a max_turns above
  // kMaxTurnsLimit is a ConfigError naming the key. Episodes take no reset
  // options.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  StepResult Truncate() override;

  // The task asked by `index` of `split` with these calculators enabled.
  static MedCalcTask TaskFor(const std::string& split, int64_t index,
                             const std::vector<Calculator>& enabled);
  const std::vector<Calculator>& enabled() const { return enabled_; }

 private:
  json RewardSpec() const;
  // The final step's info, for Step and Truncate alike.
  json EpisodeEndInfo(bool correct) const;

  MedCalcOptions options_;
  std::vector<Calculator> enabled_;
  MedCalcTask task_;
  std::optional<double> answer_;  // the agent's number, once given
  int64_t turns_ = 0;
  int64_t invalid_actions_ = 0;
  bool done_ = true;
};

}  // namespace clinrl::envs::med_calc
