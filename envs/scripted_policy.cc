#include "envs/scripted_policy.h"

#include <algorithm>

#include "core/error.h"

namespace clinrl::envs {

ScriptedPolicyRegistry& ScriptedPolicyRegistry::Global() {
  static ScriptedPolicyRegistry registry;
  return registry;
}

void ScriptedPolicyRegistry::Register(const std::string& env,
                                      const std::string& policy,
                                      ScriptedPolicyFactory factory) {
  for (const auto& e : entries_) {
    CLINRL_CHECK(!(e.env == env && e.policy == policy),
                 "scripted policy '{}' for env '{}' registered twice", policy,
                 env);
  }
  entries_.push_back({env, policy, std::move(factory)});
}

std::vector<std::string> ScriptedPolicyRegistry::PoliciesFor(
    const std::string& env) const {
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (e.env == env) out.push_back(e.policy);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<ScriptedPolicy> ScriptedPolicyRegistry::Create(
    const std::string& env, const std::string& policy, uint64_t seed,
    const json& options) const {
  for (const auto& e : entries_) {
    if (e.env == env && e.policy == policy) return e.factory(seed, options);
  }
  std::string known;
  for (const auto& p : PoliciesFor(env))
    known += (known.empty() ? "" : ", ") + p;
  throw NotFound(fmt::format(
      "--policy '{}': no such scripted policy for env '{}'; available: {}",
      policy, env, known.empty() ? "(none)" : known));
}

}  // namespace clinrl::envs
