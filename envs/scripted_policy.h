// Scripted (non-LLM) policies for an env: the oracle upper baseline and the
// random lower baseline, used by `clinrl env eval` and to write SFT
// demonstrations (`clinrl env demos`). They see only what an agent sees: the
// transcript so far and the public info of the last reply (an env may expose
// more in info for an oracle, and says so in its docs).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// (seed, options) -> policy for one episode.
using ScriptedPolicyFactory = std::function<std::unique_ptr<ScriptedPolicy>(
    uint64_t seed, const json& options)>;

class ScriptedPolicyRegistry {
 public:
  static ScriptedPolicyRegistry& Global();
  void Register(const std::string& env, const std::string& policy,
                ScriptedPolicyFactory factory);
  // Throws NotFound listing the policies registered for `env`.
  std::unique_ptr<ScriptedPolicy> Create(
      const std::string& env, const std::string& policy, uint64_t seed,
      const json& options = json::object()) const;
  std::vector<std::string> PoliciesFor(const std::string& env) const;

 private:
  struct Entry {
    std::string env, policy;
    ScriptedPolicyFactory factory;
  };
  std::vector<Entry> entries_;
};

struct RegisterScriptedPolicy {
  RegisterScriptedPolicy(const char* env, const char* policy,
                         ScriptedPolicyFactory factory) {
    ScriptedPolicyRegistry::Global().Register(env, policy, std::move(factory));
  }
};

}  // namespace clinrl::envs

#define CLINRL_REGISTER_SCRIPTED_POLICY(env, policy, factory) \
  static ::clinrl::envs::RegisterScriptedPolicy               \
      clinrl_scripted_policy_##env##_##policy(#env, #policy, factory)
