// vitals_flag: a small clinical env, the C++ walkthrough of docs/first_env.md.
// Each task is one patient's five vital signs with exactly one abnormal
// value; the agent may CHECK a vital to see its value (cost 1 each) and must
// name the abnormal one with ANSWER. Tasks are a pure function of (split,
// index), so no data file ships with the env.
//
// It has no scripted policies on purpose: it shows what a new env gets
// without them (no in-run SFT demonstrations, no random/oracle rows in the
// final table) and that training it GRPO-only still works end to end.
#pragma once

#include <array>
#include <memory>
#include <string>

#include "envs/env.h"

namespace clinrl::envs {

// Env options (envs[i].options in a run config, --options of env serve/eval).
struct VitalsFlagOptions {
  int64_t max_turns = 6;

  template <class V>
  void Visit(V& v) {
    v.AtLeast("max_turns", max_turns, int64_t{1},
              "actions before the episode is truncated");
  }
};

class VitalsFlagEnv : public Env {
 public:
  // The vitals, in the order the prompt lists them; actions name them so.
  static constexpr std::array<const char*, 5> kVitals = {
      "heart_rate", "blood_pressure", "resp_rate", "spo2", "temperature"};

  explicit VitalsFlagEnv(VitalsFlagOptions options);
  // Options: VitalsFlagOptions; episodes take no reset options.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  StepResult Truncate() override;

 private:
  // One patient: the displayed value of each vital and the abnormal one.
  struct Patient {
    int64_t age = 0;
    std::array<std::string, 5> values;
    size_t abnormal = 0;
  };
  static Patient PatientFor(const std::string& split, int64_t index);
  // The final step's info, for Step and Truncate alike.
  json EpisodeEndInfo(bool correct) const;

  VitalsFlagOptions options_;
  Patient patient_;
  std::string answer_;  // the vital the agent named, empty before ANSWER
  int64_t turns_ = 0;
  int64_t cost_ = 0;
  int64_t invalid_actions_ = 0;
  bool done_ = true;
};

}  // namespace clinrl::envs
