// The smallest env: the task names a word and the agent must say it. Other
// text is echoed back, an empty action is invalid. It exists to test and
// benchmark the env runtime (server, client, pool, Python adapter) with an
// env whose own cost is close to nothing.
#pragma once

#include <memory>
#include <string>

#include "envs/env.h"

namespace clinrl::envs {

// The env options, read by the config schema (envs/env_options.h). The task
// counts are fixed: they are not options.
struct EchoEnvOptions {
  int64_t max_turns = 8;
  int64_t train_tasks = 1000;
  int64_t test_tasks = 100;

  template <class V>
  void Visit(V& v) {
    v.AtLeast("max_turns", max_turns, int64_t{1},
              "actions before the episode is truncated");
  }
};

class EchoEnv : public Env {
 public:
  explicit EchoEnv(EchoEnvOptions options);
  // Options: EchoEnvOptions; any other key is a ConfigError naming
  // `path.<key>`. Episodes take no reset options.
  static std::unique_ptr<Env> Create(const json& options,
                                     const std::string& path = "options");

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;
  StepResult Truncate() override;

  // The word of task `index`; public for the oracle policy and tests.
  static std::string WordFor(const std::string& split, int64_t index);

 private:
  EchoEnvOptions options_;
  std::string word_;
  int64_t turns_ = 0;
  int64_t invalid_actions_ = 0;
  bool done_ = true;
};

}  // namespace clinrl::envs
