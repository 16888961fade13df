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

// Step("boom") throws std::runtime_error; Step("sleep:N") sleeps N ms; after
// Step("truncate:throw") Truncate throws, after Step("truncate:continue") it
// claims the episode goes on (an env bug); any other action plays the echo
// env.
class MisbehavingEnv : public Env {
 public:
  MisbehavingEnv() : echo_(EchoEnvOptions{}) {}
  EnvSpec Spec() const override {
    EnvSpec s = echo_.Spec();
    s.name = "misbehaving";
    return s;
  }
  // Takes one reset option, throw_on_reset; the rest go to the echo env,
  // which refuses any.
  ResetResult Reset(const ResetRequest& request) override {
    ResetRequest echo_request = request;
    if (echo_request.options.value("throw_on_reset", false)) {
      throw std::runtime_error("reset exploded");
    }
    echo_request.options.erase("throw_on_reset");
    return echo_.Reset(echo_request);
  }
  StepResult Step(const std::string& action) override {
    if (action == "boom") throw std::runtime_error("the env exploded");
    if (action.rfind("truncate:", 0) == 0) truncate_mode_ = action.substr(9);
    if (action.rfind("sleep:", 0) == 0) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::stoi(action.substr(6))));
      StepResult r;
      r.observation = {{"user", action}};
      return r;
    }
    return echo_.Step(action);
  }
  StepResult Truncate() override {
    if (truncate_mode_ == "throw") {
      throw std::runtime_error("truncate exploded");
    }
    if (truncate_mode_ == "continue") return StepResult{};
    return echo_.Truncate();
  }

 private:
  EchoEnv echo_;
  std::string truncate_mode_;
};

inline EnvRegistry& TestRegistry() {
  static EnvRegistry* registry = [] {
    auto* r = new EnvRegistry;
    r->Add("echo", EchoEnv::Create);
    r->Add("misbehaving",
           [](const json&, const std::string&) -> std::unique_ptr<Env> {
             return std::make_unique<MisbehavingEnv>();
           });
    return r;
  }();
  return *registry;
}

}  // namespace clinrl::envs::testing
