// Envs that misbehave on purpose, for the runtime tests: one that throws and
// one that is slow. They live in a test-local registry so the clinrl binary
// and the conformance suite never see them.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "envs/echo/echo_env.h"
#include "envs/env_registry.h"

namespace clinrl::envs::testing {

// Step("boom") throws std::runtime_error; Step("sleep:N") sleeps N ms; any
// other action plays the echo env.
class MisbehavingEnv : public Env {
 public:
  MisbehavingEnv() : echo_(EchoEnvOptions{}) {}
  EnvSpec Spec() const override {
    EnvSpec s = echo_.Spec();
    s.name = "misbehaving";
    return s;
  }
  ResetResult Reset(const ResetRequest& request) override {
    if (request.options.value("throw_on_reset", false)) {
      throw std::runtime_error("reset exploded");
    }
    return echo_.Reset(request);
  }
  StepResult Step(const std::string& action) override {
    if (action == "boom") throw std::runtime_error("the env exploded");
    if (action.rfind("sleep:", 0) == 0) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::stoi(action.substr(6))));
      StepResult r;
      r.observation = {{"user", action}};
      return r;
    }
    return echo_.Step(action);
  }

 private:
  EchoEnv echo_;
};

inline EnvRegistry& TestRegistry() {
  static EnvRegistry* registry = [] {
    auto* r = new EnvRegistry;
    r->Register("echo", EchoEnv::Create);
    r->Register("misbehaving", [](const json&) -> std::unique_ptr<Env> {
      return std::make_unique<MisbehavingEnv>();
    });
    return r;
  }();
  return *registry;
}

}  // namespace clinrl::envs::testing
