// Scripted (non-LLM) policies for an env: the oracle upper baseline and the
// random lower baseline, used by `clinrl env eval` and to write SFT
// demonstrations (`clinrl env demos`). They see only what an agent sees: the
// transcript so far and the public info of the last reply (an env may expose
// more in info for an oracle, and says so in its docs).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/registry.h"
#include "envs/env.h"

namespace clinrl::envs {

class ScriptedPolicy {
 public:
  virtual ~ScriptedPolicy() = default;
  // `transcript` is every message so far (reset observation, then each action
  // as an "assistant" message followed by the env's reply); `info` is the
  // info of the last reset or step reply.
  virtual std::string Act(const Observation& transcript, const json& info) = 0;
};

// (seed, options, path) -> policy for one episode. Options are validated
// here, through the config schema (envs/env_options.h): an unknown or bad
// option throws ConfigError naming it under `path` (`policy_options` for
// `clinrl env eval --policy-options`).
using ScriptedPolicyFactory = std::function<std::unique_ptr<ScriptedPolicy>(
    uint64_t seed, const json& options, const std::string& path)>;

// Scripted policies by env, then by policy name.
class ScriptedPolicyRegistry {
 public:
  static ScriptedPolicyRegistry& Global();
  // Throws InternalError when `env` already has a policy named `policy`.
  void Add(const std::string& env, const std::string& policy,
           ScriptedPolicyFactory factory);
  // Throws NotFound listing the policies registered for `env`, ConfigError
  // for options.
  std::unique_ptr<ScriptedPolicy> Create(
      const std::string& env, const std::string& policy, uint64_t seed,
      const json& options = json::object(),
      const std::string& path = "policy_options") const;
  std::vector<std::string> PoliciesFor(const std::string& env) const;  // sorted

 private:
  // One env's policies; its NotFound names the env.
  class PolicyRegistry : public Registry<ScriptedPolicyFactory> {
   public:
    explicit PolicyRegistry(const std::string& env);
  };
  std::mutex add_mutex_;  // makes Add's find-or-create of an env atomic
  Registry<std::shared_ptr<PolicyRegistry>> by_env_{
      "env's scripted policies", "no scripted policies for env '{name}'"};
};

}  // namespace clinrl::envs

#define CLINRL_REGISTER_SCRIPTED_POLICY(env, policy, factory)                  \
  static ::clinrl::StaticRegistration clinrl_scripted_policy_##env##_##policy( \
      [] {                                                                     \
        ::clinrl::envs::ScriptedPolicyRegistry::Global().Add(#env, #policy,    \
                                                             factory);         \
      })
