// The smallest env: the task names a word and the agent must say it. Other
// text is echoed back, an empty action is invalid. It exists to test and
// benchmark the env runtime (server, client, pool, Python adapter) with an
// env whose own cost is close to nothing.
#pragma once

#include <memory>
#include <string>

#include "envs/env.h"

namespace clinrl::envs {

struct EchoEnvOptions {
  int64_t max_turns = 8;
  int64_t train_tasks = 1000;
  int64_t test_tasks = 100;
};

class EchoEnv : public Env {
 public:
  explicit EchoEnv(EchoEnvOptions options);
  // Options: {"max_turns": int >= 1}; any other key is a ConfigError.
  static std::unique_ptr<Env> Create(const json& options);

  EnvSpec Spec() const override;
  ResetResult Reset(const ResetRequest& request) override;
  StepResult Step(const std::string& action) override;

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
