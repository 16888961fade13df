#include "envs/scripted_policy.h"

namespace clinrl::envs {

ScriptedPolicyRegistry::PolicyRegistry::PolicyRegistry(const std::string& env)
    : Registry(fmt::format("env '{}': scripted policy", env),
               // The env name is a C++ identifier (the macro's), so it holds
               // no braces to confuse the pattern.
               fmt::format("--policy '{{name}}': no such scripted policy for "
                           "env '{}'; available: {{known}}",
                           env)) {}

ScriptedPolicyRegistry& ScriptedPolicyRegistry::Global() {
  static ScriptedPolicyRegistry registry;
  return registry;
}

void ScriptedPolicyRegistry::Add(const std::string& env,
                                 const std::string& policy,
                                 ScriptedPolicyFactory factory) {
  std::lock_guard<std::mutex> lock(add_mutex_);
  if (!by_env_.Has(env))
    by_env_.Add(env, std::make_shared<PolicyRegistry>(env));
  by_env_.Get(env)->Add(policy, std::move(factory));
}

std::vector<std::string> ScriptedPolicyRegistry::PoliciesFor(
    const std::string& env) const {
  const auto* policies = by_env_.Find(env);
  return policies == nullptr ? std::vector<std::string>{}
                             : (*policies)->Names();
}

std::unique_ptr<ScriptedPolicy> ScriptedPolicyRegistry::Create(
    const std::string& env, const std::string& policy, uint64_t seed,
    const json& options, const std::string& path) const {
  const auto* policies = by_env_.Find(env);
  if (policies == nullptr) {
    // An env without policies: the NotFound of an empty registry of that
    // env names it and lists "(none)".
    PolicyRegistry(env).Get(policy);
  }
  return (*policies)->Get(policy)(seed, options, path);
}

}  // namespace clinrl::envs
